"""What this kernel and this sandbox allow, found by calling each interface once.

Never by version: stable kernels carry backports, and seccomp profiles block what the kernel
has. ENOSYS (kernel too old, runc's ENOSYS stub), EPERM (seccomp deny) and EINVAL (a flag
the kernel does not know) all mean "use the next strategy", never an error to the user.
The result is cached for the process and dropped in a forked child, which may install its
own seccomp filter or enter another namespace before it asks again. A process may also lock
itself down after its first question (a service installing its seccomp filter once started):
an EPERM or ENOSYS from an interface found usable makes the strategies probe again
(``recheck``), so that a cached result never turns a block into an answer.
"""

from __future__ import annotations

import _thread
import errno
import os

from ._procfs import mountinfo_paths
from ._tuples import Record
from .kernel import fhandle, mount, openat2, statx
from .kernel._syscall import OFF

AVAILABLE = "available"
MISSING = "missing"  # ENOSYS: the kernel (or an emulator, or runc's stub) lacks it
BLOCKED = "blocked"  # EPERM: a seccomp profile or an LSM denies it
PARTIAL = "partial"  # present, without a feature mountprobe would use


TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


class Interface(Record):
    """One kernel interface as probed here: ``status`` is available, missing, blocked or partial."""

    name: str
    status: str
    detail: str
    errno: Optional[int] = None

    @property
    def usable(self) -> bool:
        return self.status in (AVAILABLE, PARTIAL)


class Capabilities(Record):
    """Everything the strategies need to know about this kernel and sandbox."""

    statx: Interface
    statx_mount_root: bool  # STATX_ATTR_MOUNT_ROOT (5.8)
    statx_mnt_id: bool  # STATX_MNT_ID (5.8)
    statx_unique_id: bool  # STATX_MNT_ID_UNIQUE (6.8); silently absent before
    openat2: Interface
    name_to_handle_at: Interface
    handle_fid: bool  # AT_HANDLE_FID (6.5): works on overlayfs, procfs, nsfs
    listmount: Interface
    statmount: Interface
    statmount_records: bool  # statmount gives every field of a mountinfo line
    procfs: Interface
    statmount_fields: int = 0  # the RECORD_FIELDS this kernel is proved to have


# Fields a statmount reply needs to rebuild a whole mountinfo line: fs subtype and source
# came in 6.13, mount options in 6.11, and only 6.15's supported_mask tells them apart from
# "empty for this mount". Before it, a bit set in a reply proves the kernel has the field
# (then a clear bit means empty): the probe's reply for "/" proves the source and the
# options of most systems on 6.13-6.14 (its source is a device, its options rarely empty).
# The subtype is proved per record: only FUSE filesystems take one (FS_HAS_SUBTYPE). Where
# source or options stay unproved (6.8-6.12), records come from mountinfo.
RECORD_FIELDS = mount.STATMOUNT_FS_SUBTYPE | mount.STATMOUNT_SB_SOURCE | mount.STATMOUNT_MNT_OPTS
_NEEDED = mount.STATMOUNT_SB_SOURCE | mount.STATMOUNT_MNT_OPTS
_NAMES = (
    (mount.STATMOUNT_SB_SOURCE, "SB_SOURCE"),
    (mount.STATMOUNT_MNT_OPTS, "MNT_OPTS"),
    (mount.STATMOUNT_FS_SUBTYPE, "FS_SUBTYPE"),
)


def field_names(bits: int) -> str:
    """The STATMOUNT_* names of ``bits`` (of RECORD_FIELDS)."""
    return ", ".join(name for bit, name in _NAMES if bits & bit)


def _failed(name: str, exc: OSError) -> Interface:
    # EINVAL: present, without a flag the probe asked for; any other errno: not usable.
    if exc.errno in OFF:
        status = MISSING if exc.errno == errno.ENOSYS else BLOCKED
    else:
        status = PARTIAL if exc.errno == errno.EINVAL else MISSING
    return Interface(name, status, f"{errno.errorcode.get(exc.errno or 0, exc.errno)}: {exc.strerror}", exc.errno)


def _probe_statx() -> tuple[Interface, bool, bool, bool, int]:
    flags = statx.AT_NO_AUTOMOUNT | statx.AT_STATX_DONT_SYNC
    try:
        st = statx.statx(statx.AT_FDCWD, b"/", flags, statx.STATX_TYPE | statx.STATX_MNT_ID_UNIQUE)
    except OSError as exc:
        return _failed("statx", exc), False, False, False, 0
    mount_root = bool(st.attributes_mask & statx.STATX_ATTR_MOUNT_ROOT)
    unique = bool(st.mask & statx.STATX_MNT_ID_UNIQUE)
    has_id = unique or bool(st.mask & statx.STATX_MNT_ID)
    missing = [
        label for label, ok in (("MOUNT_ROOT", mount_root), ("MNT_ID", has_id), ("MNT_ID_UNIQUE", unique)) if not ok
    ]
    if missing:
        iface = Interface("statx", PARTIAL, "without " + ", ".join(missing))
    else:
        iface = Interface("statx", AVAILABLE, "MOUNT_ROOT, MNT_ID_UNIQUE")
    return iface, mount_root, has_id, unique, st.mnt_id if unique else 0


def _probe_openat2() -> Interface:
    try:
        fd = openat2.openat2(statx.AT_FDCWD, b"/", os.O_PATH | os.O_CLOEXEC, openat2.RESOLVE_NO_XDEV)
    except OSError as exc:
        return _failed("openat2", exc)
    os.close(fd)
    return Interface("openat2", AVAILABLE, "RESOLVE_NO_XDEV")


def _probe_handle() -> tuple[Interface, bool]:
    try:
        fhandle.name_to_handle_at(statx.AT_FDCWD, b"/", fhandle.AT_HANDLE_FID, 0)
        return Interface("name_to_handle_at", AVAILABLE, "AT_HANDLE_FID"), True
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            return _failed("name_to_handle_at", exc), False
    try:
        fhandle.name_to_handle_at(statx.AT_FDCWD, b"/", 0, 0)
    except OSError as exc:
        return _failed("name_to_handle_at", exc), False
    detail = "without AT_HANDLE_FID (6.5): EOPNOTSUPP on overlayfs, procfs"
    return Interface("name_to_handle_at", PARTIAL, detail), False


def _probe_listmount() -> Interface:
    # n = 0 answers 0 at once. From LSMT_ROOT, EPERM can only be seccomp: the caller's own
    # root is always reachable.
    try:
        mount.listmount(mount.LSMT_ROOT, count=0)
    except OSError as exc:
        return _failed("listmount", exc)
    return Interface("listmount", AVAILABLE, "")


def _probe_statmount(root_id: int) -> tuple[Interface, bool, int]:
    if not root_id:
        try:
            mount.statmount(0, mount.STATMOUNT_MNT_BASIC)
        except OSError as exc:
            if exc.errno in OFF:
                return _failed("statmount", exc), False, 0
        return Interface("statmount", PARTIAL, "no unique mount id from statx to ask about"), False, 0
    try:
        reply = mount.statmount(root_id, mount.STATMOUNT_SUPPORTED_MASK | mount.STATMOUNT_SB_BASIC | RECORD_FIELDS)
    except OSError as exc:
        return _failed("statmount", exc), False, 0
    if not reply.mask & mount.STATMOUNT_SUPPORTED_MASK:
        seen = reply.mask & RECORD_FIELDS
        unproved = RECORD_FIELDS & ~seen
        lacking = _NEEDED & ~seen
        why = f"no supported_mask (< 6.15); never seen set, so not provable: {field_names(unproved)}"
        if lacking:
            return Interface("statmount", PARTIAL, why + ": records come from mountinfo"), False, seen
        if unproved:
            return Interface("statmount", PARTIAL, why + " (FUSE records come from mountinfo)"), True, seen
        return Interface("statmount", PARTIAL, "no supported_mask (< 6.15); every field proved by a reply"), True, seen
    lacking = RECORD_FIELDS & ~reply.supported_mask
    if lacking:
        detail = f"lacks fields 0x{lacking:x}: records come from mountinfo"
        return Interface("statmount", PARTIAL, detail), False, reply.supported_mask & RECORD_FIELDS
    return Interface("statmount", AVAILABLE, f"supported_mask 0x{reply.supported_mask:x}"), True, RECORD_FIELDS


def _probe_procfs() -> Interface:
    for path in mountinfo_paths():
        if os.access(path, os.R_OK):
            return Interface("procfs", AVAILABLE, path)
    return Interface("procfs", MISSING, "no readable mountinfo: is /proc mounted?")


def procfs_now() -> Interface:
    """Whether a mountinfo file can be read now: /proc may have been mounted or unmounted
    since the cached probe."""
    return _probe_procfs()


def _probe() -> Capabilities:
    sx, mount_root, has_id, unique, root_id = _probe_statx()
    handle, fid = _probe_handle()
    listing = _probe_listmount()
    stat, records, fields = _probe_statmount(root_id)
    return Capabilities(
        statx=sx,
        statx_mount_root=mount_root,
        statx_mnt_id=has_id,
        statx_unique_id=unique,
        openat2=_probe_openat2(),
        name_to_handle_at=handle,
        handle_fid=fid,
        listmount=listing,
        statmount=stat,
        statmount_records=records,
        procfs=_probe_procfs(),
        statmount_fields=fields,
    )


_lock = _thread.allocate_lock()  # _thread: importing threading costs a command 4 ms
_cached: Optional[Capabilities] = None


def capabilities() -> Capabilities:
    """The probed capabilities of this process, computed on first use."""
    global _cached
    if _cached is None:
        with _lock:
            if _cached is None:
                _cached = _probe()
    return _cached


def recheck(name: str) -> bool:
    """Probe again, after an EPERM or ENOSYS from ``name`` (a field of ``Capabilities``) that
    the cached probe found usable; True when ``name`` is still usable (then the errno was the
    kernel's answer about the object asked for, not a block)."""
    global _cached
    fresh = _probe()
    _cached = fresh
    iface: Interface = getattr(fresh, name)
    return iface.usable


def forget() -> None:
    """Drop the cached probe; the next question probes again."""
    global _cached
    _cached = None


def _in_child() -> None:
    # A child forked while another thread was probing inherits ``_lock`` held by a thread
    # that does not exist there: a new lock, or its first question waits for ever.
    global _lock
    _lock = _thread.allocate_lock()
    forget()


os.register_at_fork(after_in_child=_in_child)
