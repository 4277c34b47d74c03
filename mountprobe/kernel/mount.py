"""listmount(2) and statmount(2) (Linux 6.8), with ``struct mnt_id_req`` and ``struct statmount``.

Layouts are those of the current uapi ``linux/mount.h`` (not the statmount(2) man page,
whose synopsis misplaces ``supported_mask``).
"""

from __future__ import annotations

import ctypes
import errno
import struct
from _thread import _local

from .._tuples import Record
from ._syscall import missing, number, prototype, raise_errno, untyped

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

# mnt_attr: MOUNT_ATTR_* of uapi linux/mount.h (the per-mount flags of mount_setattr, 5.12).
MOUNT_ATTR_RDONLY = 0x00000001
MOUNT_ATTR_NOSUID = 0x00000002
MOUNT_ATTR_NODEV = 0x00000004
MOUNT_ATTR_NOEXEC = 0x00000008
MOUNT_ATTR__ATIME = 0x00000070  # the atime mode: one of the three values below
MOUNT_ATTR_RELATIME = 0x00000000
MOUNT_ATTR_NOATIME = 0x00000010
MOUNT_ATTR_STRICTATIME = 0x00000020
MOUNT_ATTR_NODIRATIME = 0x00000080
MOUNT_ATTR_IDMAP = 0x00100000
MOUNT_ATTR_NOSYMFOLLOW = 0x00200000

# sb_flags (SB_* = MS_* of uapi linux/mount.h) and mnt_propagation (MS_* propagation types).
MS_RDONLY = 1
MS_SYNCHRONOUS = 1 << 4
MS_DIRSYNC = 1 << 7
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_LAZYTIME = 1 << 25

# struct mnt_id_req: size, spare/mnt_ns_fd, mnt_id, param, mnt_ns_id. Always the
# 32-byte VER1 with unused fields zero: 6.8 accepts it (copy_struct_from_user).
_REQ = struct.Struct("=IIQQQ")
MNT_ID_REQ_SIZE_VER1 = 32

# struct statmount, bytes 0..168: size, mnt_opts, mask, sb_dev_major, sb_dev_minor,
# sb_magic, sb_flags, fs_type, mnt_id, mnt_parent_id, mnt_id_old, mnt_parent_id_old,
# mnt_attr, mnt_propagation, mnt_peer_group, mnt_master, propagate_from, mnt_root,
# mnt_point, mnt_ns_id, fs_subtype, sb_source, opt_num, opt_array, opt_sec_num,
# opt_sec_array, supported_mask
REPLY = struct.Struct("=IIQIIQIIQQIIQQQQQIIQIIIIIIQ")
STRINGS = 512  # string offsets count from here; offset 0 is the empty string
_INITIAL = 4096
_new = tuple.__new__


TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Tuple


class StatmountReply(Record):
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
_LNR = number("listmount")
_SNR = number("statmount")


def listmount(
    mnt_id: int, last: int = 0, count: int = 512, flags: int = 0, ns_id: int = 0, ns_fd: int = 0
) -> List[int]:
    """Up to ``count`` unique ids of the mounts below ``mnt_id`` (its whole subtree, itself
    excluded; LSMT_ROOT lists from the caller's root, root included), ids above ``last``."""
    if _listmount is None:
        missing("listmount")
    req = _REQ.pack(MNT_ID_REQ_SIZE_VER1, ns_fd, mnt_id, last, ns_id)
    ids = _id_array(count) if count else None
    n = _listmount(_LNR, req, ids, count, flags)
    if n < 0:
        raise_errno()
    return ids[:n] if ids is not None else []


_ids_tls = _local()


def _id_array(count: int) -> ctypes.Array[ctypes.c_uint64]:
    """A per-thread array of at least ``count`` u64 for listmount's reply, kept between calls."""
    ids: Optional[ctypes.Array[ctypes.c_uint64]] = getattr(_ids_tls, "ids", None)
    if ids is None or len(ids) < count:
        ids = _ids_tls.ids = (ctypes.c_uint64 * max(count, 512))()
    return ids


def listmount_all(mnt_id: int, ns_id: int = 0, ns_fd: int = 0, last: int = 0) -> List[int]:
    """Every unique id below ``mnt_id`` (after ``last``): a small first page (most subtrees
    are small, and every call costs a walk of the namespace), then large ones. Ids only
    grow, so a mount that exists for the whole walk is listed exactly once (it is no
    snapshot across pages)."""
    ids: List[int] = []
    batch = 256
    while True:
        page = listmount(mnt_id, last, batch, 0, ns_id, ns_fd)
        ids.extend(page)
        if len(page) < batch:
            return ids
        last, batch = page[-1], 16384


class _Buffers(_local):
    """Per-thread request and reply buffers (the GIL is released during the call), with the
    call's arguments boxed once and kept in one tuple: each attribute read of a
    thread-local object costs as much as the tuple."""

    def __init__(self) -> None:
        self.req = ctypes.create_string_buffer(MNT_ID_REQ_SIZE_VER1)
        self.resize(_INITIAL)

    def resize(self, size: int) -> None:
        self.reply = ctypes.create_string_buffer(size)
        self.size = size
        self.call = (
            self.req,
            ctypes.c_void_p(ctypes.addressof(self.req)),
            self.reply,
            ctypes.c_void_p(ctypes.addressof(self.reply)),
            ctypes.addressof(self.reply),
            ctypes.c_size_t(size),
        )


_tls = _Buffers()
_USED = struct.Struct("=I")
_statmount_boxed = untyped("statmount", ctypes.c_long)
_SNR_ARG = ctypes.c_long(_SNR or 0)
_NO_FLAGS = ctypes.c_uint(0)


def statmount_raw(mnt_id: int, param: int, ns_id: int = 0, ns_fd: int = 0) -> bytes:
    """The bytes the kernel wrote for statmount(``mnt_id``, ``param``): the 512-byte struct and
    its string area. The buffer grows on EOVERFLOW (the kernel gives no size hint)."""
    if _statmount_boxed is None:
        missing("statmount")
    req, req_arg, reply, reply_arg, reply_addr, size_arg = _tls.call
    _REQ.pack_into(req, 0, MNT_ID_REQ_SIZE_VER1, ns_fd, mnt_id, param, ns_id)
    while _statmount_boxed(_SNR_ARG, req_arg, reply_arg, size_arg, _NO_FLAGS) != 0:
        if ctypes.get_errno() != errno.EOVERFLOW:
            raise_errno()
        _tls.resize(_tls.size * 2)
        req, req_arg, reply, reply_arg, reply_addr, size_arg = _tls.call
    return ctypes.string_at(reply_addr, _USED.unpack_from(reply)[0])


_DEV = struct.Struct("=II")  # sb_dev_major, sb_dev_minor at offset 16 of struct statmount
_IDS = struct.Struct("=QQII")  # mnt_id, mnt_parent_id, mnt_id_old, mnt_parent_id_old at offset 40


def _fixed_fields(
    ids: List[int], param: int, layout: struct.Struct, offset: int, ns_id: int, ns_fd: int
) -> List[object]:
    """statmount(``param``) of each id in turn: the fixed-size fields ``layout`` at ``offset``
    of the reply, or the errno (an int) of a call that failed. Read in place from the reply
    buffer: this runs once per mount of a whole table."""
    if _statmount_boxed is None:
        missing("statmount")
    req, req_arg, reply, reply_arg, _addr, size_arg = _tls.call
    _REQ.pack_into(req, 0, MNT_ID_REQ_SIZE_VER1, ns_fd, 0, param, ns_id)
    put_id = struct.Struct("=Q").pack_into
    fields = layout.unpack_from
    call, nr, flags, get_errno = _statmount_boxed, _SNR_ARG, _NO_FLAGS, ctypes.get_errno
    out: List[object] = []
    append = out.append
    for mnt_id in ids:
        put_id(req, 8, mnt_id)
        if call(nr, req_arg, reply_arg, size_arg, flags) == 0:
            append(fields(reply, offset))
        else:
            append(get_errno())
    return out


def superblock_devices(ids: List[int], ns_id: int = 0, ns_fd: int = 0) -> List[object]:
    """statmount(``STATMOUNT_SB_BASIC``) of each id: its superblock's (major, minor), or the
    errno (an int) of a call that failed."""
    return _fixed_fields(ids, STATMOUNT_SB_BASIC, _DEV, 16, ns_id, ns_fd)


def mount_ids(ids: List[int], ns_id: int = 0, ns_fd: int = 0) -> List[object]:
    """statmount(``STATMOUNT_MNT_BASIC``) of each id: (unique id, parent unique id, legacy
    id, parent legacy id), or the errno (an int) of a call that failed."""
    return _fixed_fields(ids, STATMOUNT_MNT_BASIC, _IDS, 40, ns_id, ns_fd)


def reply_fields(raw: bytes) -> Tuple[Any, ...]:
    """The fields of a statmount reply as a plain tuple, in ``StatmountReply`` order; strings
    (raw bytes) whose mask bit is clear are None. The one decoder of ``struct statmount``: a
    plain tuple, because a whole table is decoded at once and the caller unpacks it."""
    if len(raw) < REPLY.size:
        raw = raw.ljust(REPLY.size, b"\0")
    (
        _size, opts, mask, major, minor, magic, sb_flags, fs_type, mnt_id, parent, old, old_parent,
        attr, prop, peer, master, pfrom, root, point, ns_id, subtype, source, _n, _a, _sn, _sa, supported,
    ) = REPLY.unpack_from(raw)  # fmt: skip
    find = raw.index
    s = STRINGS
    return (
        mask, major, minor, magic, sb_flags,
        raw[s + fs_type : find(b"\0", s + fs_type)] if mask & STATMOUNT_FS_TYPE else None,
        mnt_id, parent, old, old_parent, attr, prop, peer, master, pfrom,
        raw[s + root : find(b"\0", s + root)] if mask & STATMOUNT_MNT_ROOT else None,
        raw[s + point : find(b"\0", s + point)] if mask & STATMOUNT_MNT_POINT else None,
        ns_id,
        raw[s + subtype : find(b"\0", s + subtype)] if mask & STATMOUNT_FS_SUBTYPE else None,
        raw[s + source : find(b"\0", s + source)] if mask & STATMOUNT_SB_SOURCE else None,
        raw[s + opts : find(b"\0", s + opts)] if mask & STATMOUNT_MNT_OPTS else None,
        supported,
    )  # fmt: skip


def decode_reply(raw: bytes) -> StatmountReply:
    """A statmount reply as a ``StatmountReply``."""
    return _new(StatmountReply, reply_fields(raw))


def statmount(mnt_id: int, param: int, ns_id: int = 0, ns_fd: int = 0) -> StatmountReply:
    """statmount(2) of ``mnt_id`` asking for the ``STATMOUNT_*`` bits in ``param``."""
    return decode_reply(statmount_raw(mnt_id, param, ns_id, ns_fd))
