"""name_to_handle_at mount ids (Linux 2.6.39): a path is a mount point when its mount id
differs from its parent directory's (systemd's chain before statx, PR #16677).

Filesystems without export operations (procfs, sysfs, nsfs, overlayfs by default) answer
EOPNOTSUPP before writing the id; ``AT_HANDLE_FID`` (6.5) gets the id from them too. Without
it, systemd's truth table: exactly one side unsupported means a mount point.
"""

from __future__ import annotations

import errno
import os

from ..errors import Unsupported
from ..kernel import fhandle as k
from ..probe import capabilities
from . import _calls, _resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from ..namespaces import Where


def _mount_id(dirfd: int, name: bytes, flags: int) -> Optional[int]:
    """The legacy mount id of ``name`` (None: EOPNOTSUPP). A 0-byte handle makes the kernel
    answer EOVERFLOW after writing the id: one syscall, no handle built."""
    try:
        return k.name_to_handle_at(dirfd, name, flags, 0).mount_id
    except OSError as exc:
        if exc.errno == errno.EOPNOTSUPP:
            return None
        # EINVAL with AT_HANDLE_FID: a flag the kernel does not know (< 6.5), which the cached
        # probe may not have seen (a filter installed since).
        _calls.refused("name_to_handle_at", exc, flag_unknown=bool(flags & k.AT_HANDLE_FID))
        raise


def is_mountpoint(path: bytes, follow: bool, where: Where = None) -> bool:
    """True when the mount id of ``path`` differs from its parent directory's."""
    if where is not None:
        raise Unsupported("name_to_handle_at: resolves parents in the caller's namespace only")
    caps = capabilities()
    if not caps.name_to_handle_at.usable:
        raise Unsupported(f"name_to_handle_at {caps.name_to_handle_at.status}")
    parent, leaf = _resolve.split_leaf(path, follow)
    if not leaf:
        return True
    flags = k.AT_HANDLE_FID if caps.handle_fid else 0
    dirfd = os.open(parent, os.O_PATH | os.O_CLOEXEC | os.O_DIRECTORY)
    try:
        child = _mount_id(dirfd, leaf, flags)
        above = _mount_id(dirfd, b"", flags | k.AT_EMPTY_PATH)
    except OSError as exc:
        raise _calls.with_path(exc, path) from None
    finally:
        os.close(dirfd)
    if child is None and above is None:
        raise Unsupported("name_to_handle_at: EOPNOTSUPP for both the path and its parent")
    return child != above
