"""One module per technique. Each answers the questions it can and raises
``mountprobe.errors.Unsupported`` (with the reason) when it cannot here, so that
``mountprobe.api`` asks the next one. Real errors (a missing path, a permission
denied) are raised as the standard ``OSError`` subclasses and end the chain.

| module      | technique                                       | why it exists                          |
|-------------|-------------------------------------------------|----------------------------------------|
| statmount   | statx unique id -> statmount / listmount (6.8)  | exact records, no table read           |
| statx       | statx STATX_ATTR_MOUNT_ROOT (5.8)               | one syscall answers "is it a mount";   |
|             | a walk up the path by STATX_MNT_ID (5.8)        | mount_root without the table, < 6.8    |
| attrs       | statx + statmount's always-filled fields (6.8)  | is_mounted without a record            |
| openat2     | openat2 RESOLVE_NO_XDEV -> EXDEV (5.6)          | 5.6-5.7, or statx blocked              |
| handle      | name_to_handle_at mount ids, child vs parent    | statx and openat2 both blocked or old  |
| devcmp      | device of the mount vs its parent directory     | the bind=False question                |
| mountinfo   | filtered /proc/thread-self/mountinfo            | last resort: old kernels, sandboxes    |
"""
