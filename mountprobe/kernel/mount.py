"""listmount(2) and statmount(2) (Linux 6.8), with ``struct mnt_id_req`` and ``struct statmount``.

Layouts are those of the current uapi ``linux/mount.h`` (not the statmount(2) man page,
whose synopsis misplaces ``supported_mask``).
"""

from __future__ import annotations

import ctypes
import errno
import struct
import threading
from typing import List, NamedTuple, Optional, Tuple

from ._syscall import missing, number, prototype, raise_errno

LSMT_ROOT = 0xFFFFFFFFFFFFFFFF
LISTMOUNT_REVERSE = 1
MNT_UNIQUE_ID_OFFSET = 1 << 31  # unique ids start above every legacy id

STATMOUNT_SB_BASIC = 0x0001
STATMOUNT_MNT_BASIC = 0x0002
STATMOUNT_PROPAGATE_FROM = 0x0004
STATMOUNT_MNT_ROOT = 0x0008
STATMOUNT_MNT_POINT = 0x0010
STATMOUNT_FS_TYPE = 0x0020
STATMOUNT_MNT_NS_ID = 0x0040
STATMOUNT_MNT_OPTS = 0x0080
STATMOUNT_FS_SUBTYPE = 0x0100
STATMOUNT_SB_SOURCE = 0x0200
STATMOUNT_OPT_ARRAY = 0x0400
STATMOUNT_OPT_SEC_ARRAY = 0x0800
STATMOUNT_SUPPORTED_MASK = 0x1000

# struct mnt_id_req: size, spare/mnt_ns_fd, mnt_id, param, mnt_ns_id. Always the
# 32-byte VER1 with unused fields zero: 6.8 accepts it (copy_struct_from_user).
_REQ = struct.Struct("=IIQQQ")
MNT_ID_REQ_SIZE_VER1 = 32

# struct statmount, bytes 0..168: size, mnt_opts, mask, sb_dev_major, sb_dev_minor,
# sb_magic, sb_flags, fs_type, mnt_id, mnt_parent_id, mnt_id_old, mnt_parent_id_old,
# mnt_attr, mnt_propagation, mnt_peer_group, mnt_master, propagate_from, mnt_root,
# mnt_point, mnt_ns_id, fs_subtype, sb_source, opt_num, opt_array, opt_sec_num,
# opt_sec_array, supported_mask
_REPLY = struct.Struct("=IIQIIQIIQQIIQQQQQIIQIIIIIIQ")
_STR = 512  # string offsets count from here; offset 0 is the empty string
_INITIAL = 4096


class StatmountReply(NamedTuple):
    """A statmount reply. Strings are raw bytes (``mnt_opts`` still mountinfo-escaped);
    a string whose bit is clear in ``mask`` is None. Check ``mask`` before trusting a number."""

    mask: int
    sb_dev_major: int
    sb_dev_minor: int
    sb_magic: int
    sb_flags: int
    fs_type: Optional[bytes]
    mnt_id: int
    mnt_parent_id: int
    mnt_id_old: int
    mnt_parent_id_old: int
    mnt_attr: int
    mnt_propagation: int
    mnt_peer_group: int
    mnt_master: int
    propagate_from: int
    mnt_root: Optional[bytes]
    mnt_point: Optional[bytes]
    mnt_ns_id: int
    fs_subtype: Optional[bytes]
    sb_source: Optional[bytes]
    mnt_opts: Optional[bytes]
    supported_mask: int


_listmount = prototype("listmount", ctypes.c_long, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint)
_statmount = prototype("statmount", ctypes.c_long, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint)
_LNR = number("listmount")
_SNR = number("statmount")
_tls = threading.local()


def listmount(
    mnt_id: int, last: int = 0, count: int = 512, flags: int = 0, ns_id: int = 0, ns_fd: int = 0
) -> List[int]:
    """Up to ``count`` unique ids of the mounts below ``mnt_id`` (its whole subtree, itself
    excluded; LSMT_ROOT lists from the caller's root, root included), ids above ``last``."""
    if _listmount is None:
        missing("listmount")
    req = _REQ.pack(MNT_ID_REQ_SIZE_VER1, ns_fd, mnt_id, last, ns_id)
    ids = (ctypes.c_uint64 * count)() if count else None
    n = _listmount(_LNR, req, ids, count, flags)
    if n < 0:
        raise_errno()
    return ids[:n] if ids is not None else []


def listmount_all(mnt_id: int, batch: int = 4096, ns_id: int = 0, ns_fd: int = 0) -> List[int]:
    """Every unique id below ``mnt_id``, paged ``batch`` at a time. Ids only grow, so a mount
    that exists for the whole walk is listed exactly once (not a snapshot across pages)."""
    ids: List[int] = []
    last = 0
    while True:
        page = listmount(mnt_id, last, batch, 0, ns_id, ns_fd)
        ids.extend(page)
        if len(page) < batch:
            return ids
        last = page[-1]


def _buffer(size: int) -> ctypes.Array[ctypes.c_char]:
    buf: Optional[ctypes.Array[ctypes.c_char]] = getattr(_tls, "buf", None)
    if buf is None or len(buf) < size:
        buf = _tls.buf = ctypes.create_string_buffer(size)
    return buf


def statmount_raw(mnt_id: int, param: int, ns_id: int = 0, ns_fd: int = 0) -> bytes:
    """The bytes the kernel wrote for statmount(``mnt_id``, ``param``): the 512-byte struct and
    its string area. The buffer grows on EOVERFLOW (the kernel gives no size hint)."""
    if _statmount is None:
        missing("statmount")
    req = _REQ.pack(MNT_ID_REQ_SIZE_VER1, ns_fd, mnt_id, param, ns_id)
    size = getattr(_tls, "size", _INITIAL)
    while True:
        buf = _buffer(size)
        if _statmount(_SNR, req, ctypes.addressof(buf), size, 0) == 0:
            used = struct.unpack_from("=I", buf)[0]
            return ctypes.string_at(buf, used)
        if ctypes.get_errno() != errno.EOVERFLOW:
            raise_errno()
        size *= 2
        _tls.size = size


def _string(raw: bytes, offset: int) -> bytes:
    start = _STR + offset
    return raw[start : raw.index(b"\0", start)]


_STRINGS: Tuple[Tuple[int, int], ...] = (
    (5, STATMOUNT_FS_TYPE),
    (15, STATMOUNT_MNT_ROOT),
    (16, STATMOUNT_MNT_POINT),
    (18, STATMOUNT_FS_SUBTYPE),
    (19, STATMOUNT_SB_SOURCE),
    (20, STATMOUNT_MNT_OPTS),
)


def decode_reply(raw: bytes) -> StatmountReply:
    """Split a statmount reply into its fields; strings whose mask bit is clear become None."""
    raw = raw.ljust(_REPLY.size, b"\0")
    v = list(_REPLY.unpack_from(raw))
    mask = v[2]
    fields = [
        mask, v[3], v[4], v[5], v[6], v[7],
        v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15], v[16],
        v[17], v[18], v[19], v[20], v[21], v[1], v[26],
    ]  # fmt: skip
    for index, bit in _STRINGS:
        fields[index] = _string(raw, fields[index]) if mask & bit else None
    return StatmountReply(*fields)


def statmount(mnt_id: int, param: int, ns_id: int = 0, ns_fd: int = 0) -> StatmountReply:
    """statmount(2) of ``mnt_id`` asking for the ``STATMOUNT_*`` bits in ``param``."""
    return decode_reply(statmount_raw(mnt_id, param, ns_id, ns_fd))
