"""statx(2): file status with mount ids and the MOUNT_ROOT attribute (Linux 4.11; ids 5.8; unique ids 6.8)."""

from __future__ import annotations

import ctypes
import struct
from _thread import _local

from .._tuples import Record
from ._syscall import missing, number, prototype, raise_errno

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_STATX_DONT_SYNC = 0x4000

STATX_TYPE = 0x1
STATX_MODE = 0x2
STATX_INO = 0x100
STATX_MNT_ID = 0x1000
STATX_MNT_ID_UNIQUE = 0x4000

STATX_ATTR_AUTOMOUNT = 0x1000
STATX_ATTR_MOUNT_ROOT = 0x2000

_SIZE = 256
# stx_mask, stx_attributes, stx_mode, stx_ino, stx_attributes_mask, stx_rdev_major,
# stx_rdev_minor, stx_dev_major, stx_dev_minor, stx_mnt_id (struct statx in linux/stat.h)
_LAYOUT = struct.Struct("=I4xQ12xH2xQ16xQ64xIIIIQ")


class Statx(Record):
    """The fields of ``struct statx`` that mount inspection uses; check ``mask`` before trusting any."""

    mask: int
    attributes: int
    mode: int
    ino: int
    attributes_mask: int
    rdev_major: int
    rdev_minor: int
    dev_major: int
    dev_minor: int
    mnt_id: int


_call = prototype("statx", ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p)
_NR = number("statx")
_tls = _local()


def _buffer() -> ctypes.Array[ctypes.c_char]:
    # The GIL is released during the call, so each thread needs its own buffer.
    try:
        buf: ctypes.Array[ctypes.c_char] = _tls.buf
    except AttributeError:
        buf = _tls.buf = ctypes.create_string_buffer(_SIZE)
    return buf


def statx(dirfd: int, path: bytes, flags: int, mask: int) -> Statx:
    """Call statx(2); raise OSError with the kernel's errno on failure."""
    if _call is None:
        missing("statx")
    buf = _buffer()
    if _call(_NR, dirfd, path, flags, mask, ctypes.addressof(buf)) < 0:
        raise_errno(path)
    return tuple.__new__(Statx, _LAYOUT.unpack_from(buf))
