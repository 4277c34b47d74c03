"""fanotify(7) mount events (Linux 6.15): ``FAN_REPORT_MNT`` groups marked with ``FAN_MARK_MNTNS``.

Each event names one mount by its unique id: attached, detached, or both at once (a move).
Remounts and propagation changes raise no event.
"""

from __future__ import annotations

import ctypes
import os
import struct

from ._syscall import missing, number, prototype, raise_errno

FAN_CLASS_NOTIF = 0x0
FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_REPORT_MNT = 0x4000
FAN_MARK_ADD = 0x1
FAN_MARK_MNTNS = 0x110
FAN_MNT_ATTACH = 0x01000000
FAN_MNT_DETACH = 0x02000000
FAN_Q_OVERFLOW = 0x4000
FAN_EVENT_INFO_TYPE_MNT = 7
FANOTIFY_METADATA_VERSION = 3

# struct fanotify_event_metadata: event_len, vers, reserved, metadata_len, mask, fd, pid
_METADATA = struct.Struct("=IBBHQii")
# struct fanotify_event_info_header (info_type, pad, len); struct fanotify_event_info_mnt
# follows it with 4 bytes of padding, then the u64 unique mount id
_INFO_HEADER = struct.Struct("=BBH")
_MNT_ID = struct.Struct("=Q")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

_init = prototype("fanotify_init", ctypes.c_int, ctypes.c_uint, ctypes.c_uint)
_mark = prototype(
    "fanotify_mark", ctypes.c_int, ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p
)
_INIT_NR = number("fanotify_init")
_MARK_NR = number("fanotify_mark")


def fanotify_init(flags: int, event_f_flags: int) -> int:
    """A new fanotify group; its file descriptor."""
    if _init is None:
        missing("fanotify_init")
    fd: int = _init(_INIT_NR, flags, event_f_flags)
    if fd < 0:
        raise_errno()
    return fd


def fanotify_mark(fd: int, flags: int, mask: int, dirfd: int, path: Optional[bytes] = None) -> None:
    """Add, remove or flush marks of group ``fd`` (the mask is a full 64-bit argument)."""
    if _mark is None:
        missing("fanotify_mark")
    if _mark(_MARK_NR, fd, flags, mask, dirfd, path) < 0:
        raise_errno(path)


def mount_events(fd: int, size: int = 1 << 16) -> List[Tuple[int, Optional[int], int]]:
    """The events queued on a non-blocking ``FAN_REPORT_MNT`` group, oldest first, as
    (mask, unique mount id, pid) tuples. An overflow comes as ``FAN_Q_OVERFLOW`` with the id
    None. An empty list when none are queued."""
    try:
        data = os.read(fd, size)
    except BlockingIOError:
        return []
    events: List[Tuple[int, Optional[int], int]] = []
    offset = 0
    while offset + _METADATA.size <= len(data):
        length, _vers, _res, meta_len, mask, _fd, pid = _METADATA.unpack_from(data, offset)
        if length < _METADATA.size:
            break  # a record we cannot step over: never loop on it
        mnt_id = None
        info = offset + meta_len
        while info + _INFO_HEADER.size <= offset + length:
            kind, _pad, info_len = _INFO_HEADER.unpack_from(data, info)
            if kind == FAN_EVENT_INFO_TYPE_MNT and info + 8 + _MNT_ID.size <= offset + length:
                (mnt_id,) = _MNT_ID.unpack_from(data, info + 8)
            if info_len <= 0:
                break
            info += info_len
        events.append((mask, mnt_id, pid))
        offset += length
    return events
