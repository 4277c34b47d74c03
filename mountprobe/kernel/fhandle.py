"""name_to_handle_at(2): file handles and the mount id that comes with them (Linux 2.6.39)."""

from __future__ import annotations

import ctypes
import errno
import struct

from .._tuples import Record
from ._syscall import missing, number, prototype, raise_errno

AT_HANDLE_MNT_ID_UNIQUE = 0x001  # 6.12: mount_id points to a u64 unique id
AT_HANDLE_FID = 0x200  # 6.5: a handle for identification only, works without export ops
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000
MAX_HANDLE_SZ = 128  # never ask for more: old kernels answer EINVAL

_HEADER = struct.Struct("=Ii")


TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


class FileHandle(Record):
    """What the kernel wrote. ``data`` is None when the buffer was too small (EOVERFLOW): the
    kernel still writes the mount id then, and ``size`` is the size it needs."""

    mount_id: int
    size: int
    type: int
    data: Optional[bytes]


_call = prototype(
    "name_to_handle_at",
    ctypes.c_long,
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_int,
)
_NR = number("name_to_handle_at")


def name_to_handle_at(dirfd: int, path: bytes, flags: int, size: int = MAX_HANDLE_SZ) -> FileHandle:
    """Call name_to_handle_at(2) with a ``size``-byte handle buffer (0 asks for the mount id only)."""
    if _call is None:
        missing("name_to_handle_at")
    buf = ctypes.create_string_buffer(_HEADER.size + size)
    _HEADER.pack_into(buf, 0, size, 0)
    mount_id = ctypes.c_uint64(0)
    if _call(_NR, dirfd, path, ctypes.addressof(buf), ctypes.addressof(mount_id), flags) < 0:
        if ctypes.get_errno() != errno.EOVERFLOW:
            raise_errno(path)
        needed, _ = _HEADER.unpack_from(buf)
        return tuple.__new__(FileHandle, (_mount_id(mount_id.value, flags), needed, 0, None))
    used, kind = _HEADER.unpack_from(buf)
    return tuple.__new__(
        FileHandle, (_mount_id(mount_id.value, flags), used, kind, buf.raw[_HEADER.size : _HEADER.size + used])
    )


def _mount_id(value: int, flags: int) -> int:
    # Without AT_HANDLE_MNT_ID_UNIQUE the kernel writes a 32-bit int into the low bytes.
    return value if flags & AT_HANDLE_MNT_ID_UNIQUE else value & 0xFFFFFFFF
