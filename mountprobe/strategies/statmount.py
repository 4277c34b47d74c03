"""statx unique mount id -> statmount, and listmount for subtrees (Linux 6.8).

The exact record of one mount in two syscalls, whatever the size of the table, with ids
that are never reused. ``STATMOUNT_PROPAGATE_FROM`` is requested only when the caller asks:
the kernel computes it by walking peer groups, quadratic in slave namespaces (systemd
PR #43318 measured 0.46 s per table there).
"""

from __future__ import annotations

import errno
import os
from typing import Dict, List, Optional, Tuple

from .._paths import is_below
from ..errors import MountprobeError, Unsupported
from ..kernel import mount as k
from ..kernel import statx as kx
from ..model import Mount, parents_first
from ..mountinfo import split_options
from ..probe import capabilities
from . import _calls, _resolve

RECORD = (
    k.STATMOUNT_SB_BASIC
    | k.STATMOUNT_MNT_BASIC
    | k.STATMOUNT_MNT_ROOT
    | k.STATMOUNT_MNT_POINT
    | k.STATMOUNT_FS_TYPE
    | k.STATMOUNT_FS_SUBTYPE
    | k.STATMOUNT_SB_SOURCE
    | k.STATMOUNT_MNT_OPTS
)

MS_UNBINDABLE = 1 << 17
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20

# MOUNT_ATTR_* -> the words of mountinfo field 6, in show_mnt_opts() order.
_ATIME = 0x70
_ATTR_WORDS = (
    (0x2, 0x2, "nosuid"),
    (0x4, 0x4, "nodev"),
    (0x8, 0x8, "noexec"),
    (_ATIME, 0x10, "noatime"),
    (0x80, 0x80, "nodiratime"),
    (_ATIME, 0x00, "relatime"),
    (0x200000, 0x200000, "nosymfollow"),
    (0x100000, 0x100000, "idmapped"),
)
# sb_flags -> the words show_sb_opts() puts after ro/rw in field 11. mountinfo's obsolete
# "mand" has no statmount counterpart.
_SB_WORDS = ((0x10, "sync"), (0x80, "dirsync"), (0x2000000, "lazytime"))

_vfs_cache: Dict[int, Tuple[str, ...]] = {}
_super_cache: Dict[Tuple[int, Optional[bytes]], Tuple[str, ...]] = {}
_new = tuple.__new__
_fsdecode = os.fsdecode


def _vfs_options(attr: int) -> Tuple[str, ...]:
    words = _vfs_cache.get(attr)
    if words is None:
        words = _vfs_cache[attr] = ("ro" if attr & 0x1 else "rw",) + tuple(
            word for mask, value, word in _ATTR_WORDS if attr & mask == value
        )
    return words


def _super_options(sb_flags: int, opts: Optional[bytes]) -> Tuple[str, ...]:
    key = (sb_flags, opts)
    words = _super_cache.get(key)
    if words is None:
        head = ("ro" if sb_flags & 0x1 else "rw",) + tuple(w for bit, w in _SB_WORDS if sb_flags & bit)
        words = _super_cache[key] = head + (split_options(opts) if opts else ())
    return words


def record(r: k.StatmountReply, with_propagate_from: bool) -> Mount:
    """The Mount that mountinfo would show for this reply (strings are unescaped already,
    except ``mnt_opts``, which is escaped like field 11)."""
    if r.mnt_point is None or r.mnt_root is None or r.fs_type is None:
        raise Unsupported(f"statmount reply for mount {r.mnt_id} lacks its mount point (outside this root)")
    prop = r.mnt_propagation
    master = r.mnt_master if prop & MS_SLAVE else None
    fstype = r.fs_type if r.fs_subtype is None else r.fs_type + b"." + r.fs_subtype
    pfrom = None
    # statmount reports the dominating group even when it equals the master; mountinfo
    # prints propagate_from only when it differs.
    if with_propagate_from and r.propagate_from and r.propagate_from != r.mnt_master:
        pfrom = r.propagate_from
    return _new(
        Mount,
        (
            r.mnt_id_old,
            r.mnt_parent_id_old,
            r.mnt_id,
            r.mnt_parent_id,
            r.sb_dev_major,
            r.sb_dev_minor,
            _fsdecode(r.mnt_root),
            _fsdecode(r.mnt_point),
            _vfs_options(r.mnt_attr),
            _fsdecode(fstype),
            None if r.sb_source is None else _fsdecode(r.sb_source),
            _super_options(r.sb_flags, r.mnt_opts),
            r.mnt_peer_group if prop & MS_SHARED else None,
            master,
            pfrom,
            bool(prop & MS_UNBINDABLE),
        ),
    )


def _require(listing: bool = False) -> None:
    caps = capabilities()
    if not caps.statx_unique_id:
        raise Unsupported("statx gives no unique mount id (< 6.8, or statx unavailable)")
    if not caps.statmount_records:
        raise Unsupported(f"statmount {caps.statmount.status}: {caps.statmount.detail}")
    if listing and not caps.listmount.usable:
        raise Unsupported(f"listmount {caps.listmount.status}: {caps.listmount.detail}")


def _statmount(mnt_id: int, param: int) -> k.StatmountReply:
    try:
        return k.statmount(mnt_id, param)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            _calls.unsupported("statmount", exc)
        if exc.errno == errno.EPERM and not capabilities().statmount.usable:
            _calls.unsupported("statmount", exc)
        raise


def describe(mnt_id: int, with_propagate_from: bool) -> Mount:
    """The record of the mount with unique id ``mnt_id``; FileNotFoundError once it is gone."""
    param = RECORD | (k.STATMOUNT_PROPAGATE_FROM if with_propagate_from else 0)
    return record(_statmount(mnt_id, param), with_propagate_from)


def _unique_id(path: bytes, follow: bool) -> kx.Statx:
    st = _calls.statx(path, follow, kx.STATX_MNT_ID_UNIQUE)
    # A kernel before 6.8 ignores the unknown bit and fills the legacy id (systemd: -EUNATCH).
    if not st.mask & kx.STATX_MNT_ID_UNIQUE:
        raise Unsupported("statx ignored STATX_MNT_ID_UNIQUE")
    return st


def _described(path: bytes, follow: bool, with_propagate_from: bool, at: bool) -> Optional[Mount]:
    # A mount can go away between statx and statmount: resolve the path once more.
    for attempt in (0, 1):
        st = _unique_id(path, follow)
        if at and not st.attributes & kx.STATX_ATTR_MOUNT_ROOT and _resolve.canonical(path) != b"/":
            return None
        try:
            return describe(st.mnt_id, with_propagate_from)
        except FileNotFoundError:
            if attempt:
                gone = "the mount vanished while being read"
                raise FileNotFoundError(errno.ENOENT, gone, os.fsdecode(path)) from None
    raise AssertionError("unreachable")


def mount_of(path: bytes, follow: bool, with_propagate_from: bool) -> Mount:
    """The visible mount that contains ``path``."""
    _require()
    found = _described(path, follow, with_propagate_from, at=False)
    assert found is not None
    return found


def mount_at(path: bytes, with_propagate_from: bool) -> Optional[Mount]:
    """The visible mount whose mount point is ``path``, or None."""
    _require()
    return _described(path, True, with_propagate_from, at=True)


def _subtree(top: int) -> List[int]:
    try:
        return k.listmount_all(top)
    except OSError as exc:
        if exc.errno in _calls.OFF and not capabilities().listmount.usable:
            _calls.unsupported("listmount", exc)
        raise


def _records(ids: List[int], with_propagate_from: bool) -> List[Mount]:
    param = RECORD | (k.STATMOUNT_PROPAGATE_FROM if with_propagate_from else 0)
    out: List[Mount] = []
    append = out.append
    stat = k.statmount
    for mnt_id in ids:
        try:
            r = stat(mnt_id, param)
        except OSError as exc:
            # ENOENT: unmounted since listmount (systemd PR #43318 treats it as vanished).
            # EPERM: not reachable from this root without CAP_SYS_ADMIN; mountinfo skips
            # those too.
            if exc.errno in (errno.ENOENT, errno.EPERM):
                continue
            raise
        if r.mnt_point is None:
            continue  # outside this process's root: mountinfo does not show it either
        append(record(r, with_propagate_from))
    return out


def mounts_under(path: bytes, include_self: bool, with_propagate_from: bool) -> List[Mount]:
    """Every mount whose mount point is below ``path`` (or at it, with ``include_self``)."""
    _require(listing=True)
    st = _unique_id(path, True)
    top = _statmount(st.mnt_id, k.STATMOUNT_MNT_BASIC | k.STATMOUNT_MNT_POINT)
    if top.mnt_point is None:
        raise MountprobeError(f"{os.fsdecode(path)}: its mount lies outside this process's root")
    where = top.mnt_point if st.attributes & kx.STATX_ATTR_MOUNT_ROOT else _resolve.canonical(path)
    # Mounts stacked at the same mount point are a chain of parents; a lower one may hold
    # submounts that the upper one hides. List from the bottom of the stack.
    bottom = top
    while bottom.mnt_parent_id != bottom.mnt_id:
        try:
            below = _statmount(bottom.mnt_parent_id, k.STATMOUNT_MNT_BASIC | k.STATMOUNT_MNT_POINT)
        except OSError:
            break  # the parent is outside this root, or gone
        if below.mnt_point != top.mnt_point:
            break
        bottom = below
    ids = _subtree(bottom.mnt_id)
    ids.insert(0, bottom.mnt_id)
    found = [
        m
        for m in _records(ids, with_propagate_from)
        if is_below(os.fsencode(m.mountpoint), where) or (include_self and os.fsencode(m.mountpoint) == where)
    ]
    return parents_first(found)


def _slave_namespace() -> bool:
    root = _unique_id(b"/", True)
    return bool(_statmount(root.mnt_id, k.STATMOUNT_MNT_BASIC).mnt_propagation & MS_SLAVE)


def list_mounts(with_propagate_from: bool) -> List[Mount]:
    """The whole table, one statmount per mount. Chosen only in a slave namespace (every
    container), where the kernel's mountinfo costs O(mounts x peers); elsewhere one
    mountinfo read is cheaper than a syscall per mount (KERNEL.md 5.3)."""
    _require(listing=True)
    if not _slave_namespace():
        raise Unsupported("the root mount is not a slave: one mountinfo read is cheaper here")
    return _records(_subtree(k.LSMT_ROOT), with_propagate_from)


def still_mounted(m: Mount) -> bool:
    """Is the mount with ``m.unique_id`` still attached? Unique ids are never reused, so a
    new mount at the same place is never mistaken for it."""
    if m.unique_id is None:
        raise Unsupported("this record has no unique id")
    _require()
    try:
        _statmount(m.unique_id, k.STATMOUNT_MNT_BASIC)
    except FileNotFoundError:
        return False  # final: also right after a lazy umount, while the fs may live on
    except PermissionError:
        return True  # attached, outside this root
    return True
