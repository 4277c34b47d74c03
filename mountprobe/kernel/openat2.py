"""openat2(2) with ``struct open_how`` (Linux 5.6)."""

from __future__ import annotations

import ctypes
import struct

from ._syscall import missing, number, prototype, raise_errno

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

OPEN_HOW_SIZE_VER0 = 24
_HOW = struct.Struct("=QQQ")

_call = prototype("openat2", ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t)
_NR = number("openat2")


def openat2(dirfd: int, path: bytes, flags: int, resolve: int = 0, mode: int = 0) -> int:
    """Open ``path`` relative to ``dirfd``; return the new fd. O_* flags must come from ``os``."""
    if _call is None:
        missing("openat2")
    fd: int = _call(_NR, dirfd, path, _HOW.pack(flags, mode, resolve), OPEN_HOW_SIZE_VER0)
    if fd < 0:
        raise_errno(path)
    return fd
