"""Kernel calls as the strategies need them: a syscall that is absent (ENOSYS) or blocked
(EPERM from seccomp) becomes ``Unsupported``; every other errno stays an ``OSError``."""

from __future__ import annotations

import errno
import os

from .. import probe
from ..errors import Unsupported
from ..kernel import statx as _statx

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn, Optional

OFF = (errno.ENOSYS, errno.EPERM)

# AT_NO_AUTOMOUNT: never trigger an automount; AT_STATX_DONT_SYNC: never ask a network or
# FUSE server ("mounts are a local concept", systemd mountpoint-util.c). Indexed by follow.
STATX_FLAGS = (
    _statx.AT_NO_AUTOMOUNT | _statx.AT_STATX_DONT_SYNC | _statx.AT_SYMLINK_NOFOLLOW,
    _statx.AT_NO_AUTOMOUNT | _statx.AT_STATX_DONT_SYNC,
)


def unsupported(what: str, exc: OSError) -> NoReturn:
    raise Unsupported(f"{what}: {errno.errorcode.get(exc.errno or 0, '?')} ({exc.strerror})") from None


def refused(name: str, exc: OSError, answers: bool = False) -> None:
    """For an ENOSYS or EPERM from syscall ``name`` (a ``Capabilities`` field): raise
    Unsupported, so that the next strategy answers. The cached probe may predate a seccomp
    filter installed since (a service locking itself down after start-up), so an interface it
    found usable is probed again, which brings ``capabilities()`` up to date. ``answers``: an
    EPERM from ``name`` can also be the kernel's answer about the mount asked for (statmount
    and listmount of one outside this process's root); then this returns when the fresh probe
    finds ``name`` still usable, and the caller takes the EPERM as that answer."""
    if getattr(probe.capabilities(), name).usable and probe.recheck(name) and answers and exc.errno == errno.EPERM:
        return
    unsupported(name, exc)


def statx(path: bytes, follow: bool, mask: int) -> _statx.Statx:
    """statx of ``path`` relative to the cwd, with the inspection flags."""
    try:
        return _statx.statx(_statx.AT_FDCWD, path, STATX_FLAGS[follow], mask)
    except OSError as exc:
        if exc.errno in OFF:
            refused("statx", exc)
        raise


def in_no_table(path: bytes, mnt_id: int) -> FileNotFoundError:
    """The mount holding ``path`` is in no table of this namespace: statmount's ENOENT ("no
    such mount here"), said plainly, for a path that does exist."""
    why = f"its mount ({mnt_id}) is in no mount table of this namespace: another namespace's, or an internal one"
    return FileNotFoundError(errno.ENOENT, why + " (as of pipes and sockets)", os.fsdecode(path))


def with_path(exc: OSError, path: bytes) -> OSError:
    """The same error, naming ``path``."""
    return OSError(exc.errno, exc.strerror, os.fsdecode(path))


def fdinfo_mount_id(fd: int) -> Optional[int]:
    """The legacy mount id of an open descriptor from the ``mnt_id`` line of
    /proc/self/fdinfo (3.15): no syscall a sandbox could block. None without /proc."""
    try:
        with open(b"/proc/self/fdinfo/%d" % fd, "rb") as info:
            for line in info:
                if line.startswith(b"mnt_id:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def fd_mount_id(fd: int) -> Optional[int]:
    """The legacy mount id of an open descriptor (which pins its mount, so the id cannot be
    reused meanwhile): statx with an empty path, else fdinfo; None when neither answers."""
    try:
        st = _statx.statx(fd, b"", _statx.AT_EMPTY_PATH | _statx.AT_STATX_DONT_SYNC, _statx.STATX_MNT_ID)
        if st.mask & _statx.STATX_MNT_ID:
            return st.mnt_id
    except OSError as exc:
        if exc.errno not in OFF:
            raise
    return fdinfo_mount_id(fd)
