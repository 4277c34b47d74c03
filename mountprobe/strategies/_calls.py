"""Kernel calls as the strategies need them: a syscall that is absent (ENOSYS) or blocked
(EPERM from seccomp) becomes ``Unsupported``; every other errno stays an ``OSError``."""

from __future__ import annotations

import errno
import os

from ..errors import Unsupported
from ..kernel import statx as _statx

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

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
