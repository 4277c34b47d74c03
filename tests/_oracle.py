"""The kernel's own answers, read without mountprobe: the mount id in
``/proc/self/fdinfo``, a minimal independent reader of the live mountinfo, and unique ids
from ``name_to_handle_at(AT_HANDLE_MNT_ID_UNIQUE)`` (a different syscall from mountprobe's)."""

from __future__ import annotations

import ctypes
import os
from typing import Any, Dict, List, Optional

import mountprobe

# The mountinfo fields of Mount: everything but the unique ids (not in mountinfo) and
# propagate_from (filled only on request).
FIELDS = [f for f in mountprobe.Mount._fields if f not in ("unique_id", "parent_unique_id", "propagate_from")]


class Entry(Dict[str, Any]):
    """One mountinfo line as this reader decoded it, keyed (and reachable as attributes) by
    the Mount field names."""

    def __getattr__(self, name: str) -> Any:
        return self[name]


def _unescape(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i : i + 1] == b"\\" and len(raw) >= i + 4 and all(48 <= c <= 55 for c in raw[i + 1 : i + 4]):
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def _split_quoted(raw: bytes) -> List[bytes]:
    items, current, quoted = [], bytearray(), False
    for c in raw:
        if c == ord('"'):
            quoted = not quoted
        if c == ord(",") and not quoted:
            items.append(bytes(current))
            current = bytearray()
        else:
            current.append(c)
    items.append(bytes(current))
    return [i for i in items if i]


def table(data: Optional[bytes] = None) -> List[Entry]:
    """The live mountinfo of this thread (or ``data``), parsed by the simplest correct reader."""
    if data is None:
        with open("/proc/thread-self/mountinfo", "rb") as file:
            data = file.read()
    out = []
    for line in data.split(b"\n"):
        if not line:
            continue
        f = line.split(b" ")
        sep = f.index(b"-", 6)
        tags = {t.partition(b":")[0]: t.partition(b":")[2] for t in f[6:sep]}
        major, minor = f[2].split(b":")
        values = (
            int(f[0]),
            int(f[1]),
            int(major),
            int(minor),
            os.fsdecode(_unescape(f[3])),
            os.fsdecode(_unescape(f[4])),
            tuple(f[5].decode().split(",")),
            os.fsdecode(_unescape(f[sep + 1])),
            os.fsdecode(_unescape(f[sep + 2])) or None,
            tuple(os.fsdecode(_unescape(i)) for i in _split_quoted(b" ".join(f[sep + 3 :]))),
            int(tags[b"shared"]) if b"shared" in tags else None,
            int(tags[b"master"]) if b"master" in tags else None,
            b"unbindable" in tags,
        )
        out.append(Entry(zip(FIELDS, values)))
    return out


def by_id() -> Dict[int, Entry]:
    return {e.id: e for e in table()}


def fdinfo_mount_id(path: os.PathLike[str] | str | bytes, follow: bool = True) -> int:
    """The legacy id of the mount holding ``path``, as /proc/self/fdinfo reports it (3.15)."""
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("mnt_id:"):
                    return int(line.split()[1])
    finally:
        os.close(fd)
    raise AssertionError("no mnt_id in fdinfo")


_libc = ctypes.CDLL(None, use_errno=True)
# name_to_handle_at(2) differs per architecture; an architecture not listed here still imports
# this module, and only unique_id() skips there.
_NAME_TO_HANDLE_AT = {"x86_64": 303, "aarch64": 264}.get(os.uname().machine)


def unique_id(path: os.PathLike[str] | str | bytes) -> int:
    """The unique id of the mount holding ``path`` via name_to_handle_at (6.12 flag)."""
    if _NAME_TO_HANDLE_AT is None:
        import pytest

        pytest.skip(f"the number of name_to_handle_at on {os.uname().machine} is not in tests/_oracle.py")
    handle = ctypes.create_string_buffer(8 + 128)
    ctypes.memmove(handle, (128).to_bytes(4, "little"), 4)
    mnt = ctypes.c_uint64()
    flags = 0x001 | 0x200 | 0x400  # AT_HANDLE_MNT_ID_UNIQUE | AT_HANDLE_FID | AT_SYMLINK_FOLLOW
    r = _libc.syscall(
        ctypes.c_long(_NAME_TO_HANDLE_AT), ctypes.c_int(-100), os.fsencode(path), handle, ctypes.byref(mnt), flags
    )
    if r != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return mnt.value


def visible_at(path: str) -> Optional[Entry]:
    """The entry at ``path`` (canonical) that no other entry at ``path`` has as parent."""
    stack = [e for e in table() if e.mountpoint == path]
    parents = {e.parent_id for e in stack}
    tops = [e for e in stack if e.id not in parents]
    return tops[-1] if tops else None


def assert_is_kernel_entry(m: mountprobe.Mount) -> None:
    """Every mountinfo field of ``m`` equals the kernel's line for its id."""
    assert {f: getattr(m, f) for f in FIELDS} == by_id()[m.id]
    if m.unique_id is not None:
        assert m.unique_id > 2**31


_LISTMOUNT = 458  # the same number on x86_64 and aarch64


def all_unique_ids() -> set[int]:
    """Every unique mount id of this namespace from a raw listmount(2) (6.8), paged."""
    ids: set[int] = set()
    last = 0
    buf = (ctypes.c_uint64 * 4096)()
    while True:
        # struct mnt_id_req: size, spare, mnt_id (LSMT_ROOT), param (the last id seen)
        req = (ctypes.c_uint32 * 2)(24, 0), ctypes.c_uint64(2**64 - 1), ctypes.c_uint64(last)
        raw = bytes(req[0]) + bytes(req[1]) + bytes(req[2])
        n = _libc.syscall(ctypes.c_long(_LISTMOUNT), raw, buf, ctypes.c_size_t(4096), ctypes.c_uint(0))
        if n < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        ids.update(buf[:n])
        if n < 4096:
            return ids
        last = buf[n - 1]


def without_unique_ids(value: Any) -> Any:
    """``value`` (a Mount, or a list of them and other answers) without unique ids, which
    only the statmount strategies give: for comparing answers across strategies."""
    if isinstance(value, mountprobe.Mount):
        return value._replace(unique_id=None, parent_unique_id=None)
    if isinstance(value, list):
        return [without_unique_ids(v) for v in value]
    return value


_STATMOUNT = 457  # the same number on x86_64 and aarch64


def legacy_ids(unique: int) -> tuple[int, int]:
    """(mnt_id_old, mnt_parent_id_old) of the mount with unique id ``unique``, from a raw
    statmount(STATMOUNT_MNT_BASIC) (6.8); FileNotFoundError once it is gone."""
    req = (24).to_bytes(4, "little") + bytes(4) + unique.to_bytes(8, "little") + (0x2).to_bytes(8, "little")
    reply = ctypes.create_string_buffer(4096)
    r = _libc.syscall(ctypes.c_long(_STATMOUNT), req, reply, ctypes.c_size_t(4096), ctypes.c_uint(0))
    if r != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    # struct statmount: mnt_id_old and mnt_parent_id_old are the u32s at offsets 56 and 60
    return int.from_bytes(reply.raw[56:60], "little"), int.from_bytes(reply.raw[60:64], "little")
