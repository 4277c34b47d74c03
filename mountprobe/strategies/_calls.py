"""Kernel calls as the strategies need them: a syscall that is absent (ENOSYS) or blocked
(EPERM from seccomp) becomes ``Unsupported``; every other errno stays an ``OSError``."""

from __future__ import annotations

import errno
import os

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


def statx(path: bytes, follow: bool, mask: int) -> _statx.Statx:
    """statx of ``path`` relative to the cwd, with the inspection flags."""
    try:
        return _statx.statx(_statx.AT_FDCWD, path, STATX_FLAGS[follow], mask)
    except OSError as exc:
        if exc.errno in OFF:
            unsupported("statx", exc)
        raise


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
