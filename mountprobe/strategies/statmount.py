"""statx unique mount id -> statmount, and listmount for subtrees (Linux 6.8).

The exact record of one mount in two syscalls, whatever the size of the table, with ids
that are never reused. ``STATMOUNT_PROPAGATE_FROM`` is requested only when the caller asks:
the kernel computes it by walking peer groups, quadratic in slave namespaces (systemd
PR #43318, statmount-based enumeration, never asks for it for that reason).
"""

from __future__ import annotations

import errno
import os
import sys

from .. import _lazy, _paths
from .._paths import is_below
from ..errors import MountprobeError, OutsideRoot, Unsupported
from ..kernel import fhandle
from ..kernel import mount as k
from ..kernel import statx as kx
from ..kernel._syscall import OFF
from ..model import Mount, collector_paused, parents_first
from ..mountinfo import lines_below, read_mountinfo, split_options
from ..probe import capabilities, procfs_now
from . import _calls, _resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional, Tuple, TypeVar

    from ..filters import Needle
    from ..namespaces import Target, Where

    T = TypeVar("T")

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

# MOUNT_ATTR_* -> the words of mountinfo field 6, in show_mnt_opts() order (fs/proc_namespace.c).
_ATTR_WORDS = (
    (k.MOUNT_ATTR_NOSUID, k.MOUNT_ATTR_NOSUID, "nosuid"),
    (k.MOUNT_ATTR_NODEV, k.MOUNT_ATTR_NODEV, "nodev"),
    (k.MOUNT_ATTR_NOEXEC, k.MOUNT_ATTR_NOEXEC, "noexec"),
    (k.MOUNT_ATTR__ATIME, k.MOUNT_ATTR_NOATIME, "noatime"),
    (k.MOUNT_ATTR_NODIRATIME, k.MOUNT_ATTR_NODIRATIME, "nodiratime"),
    (k.MOUNT_ATTR__ATIME, k.MOUNT_ATTR_RELATIME, "relatime"),
    (k.MOUNT_ATTR_NOSYMFOLLOW, k.MOUNT_ATTR_NOSYMFOLLOW, "nosymfollow"),
    (k.MOUNT_ATTR_IDMAP, k.MOUNT_ATTR_IDMAP, "idmapped"),
)
# sb_flags -> the words show_sb_opts() puts after ro/rw in field 11. mountinfo's obsolete
# "mand" has no statmount counterpart.
_SB_WORDS = ((k.MS_SYNCHRONOUS, "sync"), (k.MS_DIRSYNC, "dirsync"), (k.MS_LAZYTIME, "lazytime"))

# Options of every mount seen, decoded once: mounts share a few. Bounded for a long-lived
# agent on a host whose mounts come and go, each with its own options (a tmpfs size=, an
# overlay's layers): emptied when full, and long super options (one per mount) never kept.
_CACHE_MAX = 4096
_CACHE_KEY_MAX = 256
_vfs_cache: Dict[int, Tuple[str, ...]] = {}
_super_cache: Dict[Tuple[int, Optional[bytes]], Tuple[str, ...]] = {}
_new = tuple.__new__


def _vfs_options(attr: int) -> Tuple[str, ...]:
    words = _vfs_cache.get(attr)
    if words is None:
        words = ("ro" if attr & k.MOUNT_ATTR_RDONLY else "rw",) + tuple(
            word for mask, value, word in _ATTR_WORDS if attr & mask == value
        )
        if len(_vfs_cache) >= _CACHE_MAX:
            _vfs_cache.clear()
        _vfs_cache[attr] = words
    return words


def _super_options(sb_flags: int, opts: Optional[bytes]) -> Tuple[str, ...]:
    key = (sb_flags, opts)
    words = _super_cache.get(key)
    if words is None:
        head = ("ro" if sb_flags & k.MS_RDONLY else "rw",) + tuple(w for bit, w in _SB_WORDS if sb_flags & bit)
        words = head + (split_options(opts) if opts else ())
        if opts is None or len(opts) <= _CACHE_KEY_MAX:
            if len(_super_cache) >= _CACHE_MAX:
                _super_cache.clear()
            _super_cache[key] = words
    return words


_ENCODING = sys.getfilesystemencoding()
_ERRORS = sys.getfilesystemencodeerrors()


# Set in every reply that asked for them (do_statmount() in the kernel's fs/namespace.c, since
# 6.8: these are always filled; a string's bit only when the string was written): MNT_POINT is
# missing for mounts outside this root, the other strings when empty.
_ALWAYS = k.STATMOUNT_SB_BASIC | k.STATMOUNT_MNT_BASIC | k.STATMOUNT_MNT_ROOT | k.STATMOUNT_FS_TYPE


_SUBTYPED = (b"fuse", b"fuseblk")  # the filesystems with FS_HAS_SUBTYPE (fs_context.c)


def record(raw: bytes, with_propagate_from: bool) -> Optional[Mount]:
    """The Mount that mountinfo would show for this statmount reply (``RECORD`` fields);
    None for a mount outside this process's root (no mount point in the reply), which
    mountinfo does not show either. Unpacks the plain tuple of ``kernel.mount.reply_fields``
    rather than a ``StatmountReply``: this runs once per mount when a slave namespace is listed."""
    (
        mask, major, minor, _magic, sb_flags, fstype, mnt_id, parent, old, old_parent, attr, prop, peer, master,
        pfrom, root, point, _ns, subtype, source, raw_opts, _supported,
    ) = k.reply_fields(raw)  # fmt: skip
    if mask & _ALWAYS != _ALWAYS:
        raise Unsupported(f"statmount left out fields it always fills (mask 0x{mask:x}): a kernel we do not know")
    if not point:  # 6.12 sets the bit with an empty string for a mount outside the root
        return None
    if subtype is not None:
        fstype += b"." + subtype
    elif fstype in _SUBTYPED and not capabilities().statmount_fields & k.STATMOUNT_FS_SUBTYPE:
        # Before 6.15 a clear bit is no proof that this FUSE mount has no subtype.
        raise Unsupported("statmount's FS_SUBTYPE is not provable on this kernel (< 6.15), and this mount is FUSE")
    vfs = _vfs_cache.get(attr)
    if vfs is None:
        vfs = _vfs_options(attr)
    sup = _super_cache.get((sb_flags, raw_opts))
    if sup is None:
        sup = _super_options(sb_flags, raw_opts)
    return _new(
        Mount,
        (
            old,
            old_parent,
            mnt_id,
            parent,
            major,
            minor,
            root.decode(_ENCODING, _ERRORS),
            point.decode(_ENCODING, _ERRORS),
            vfs,
            fstype.decode(_ENCODING, _ERRORS),
            None if source is None else source.decode(_ENCODING, _ERRORS),
            sup,
            peer if prop & k.MS_SHARED else None,
            master if prop & k.MS_SLAVE else None,
            # statmount reports the dominating group even when it equals the master;
            # mountinfo prints propagate_from only when it differs.
            pfrom if with_propagate_from and pfrom and pfrom != master else None,
            bool(prop & k.MS_UNBINDABLE),
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


def _require_basic() -> None:
    """For the questions that need only what every statmount (6.8) fills: mount ids, mount
    point, root, device, type."""
    caps = capabilities()
    if not caps.statx_unique_id:
        raise Unsupported("statx gives no unique mount id (< 6.8, or statx unavailable)")
    if not caps.statmount.usable:
        raise Unsupported(f"statmount {caps.statmount.status}: {caps.statmount.detail}")


def _statmount_raw(mnt_id: int, param: int) -> bytes:
    try:
        return k.statmount_raw(mnt_id, param)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            _calls.unsupported("statmount", exc)
        _calls.refused("statmount", exc, answers=True)
        raise


def _statmount(mnt_id: int, param: int) -> k.StatmountReply:
    return k.decode_reply(_statmount_raw(mnt_id, param))


def describe(mnt_id: int, with_propagate_from: bool) -> Mount:
    """The record of the mount with unique id ``mnt_id``; FileNotFoundError once it is gone."""
    found = record(_statmount_raw(mnt_id, _param(with_propagate_from)), with_propagate_from)
    if found is None:
        raise OutsideRoot(None, mnt_id)
    return found


def _unique_id(path: bytes, follow: bool) -> kx.Statx:
    try:
        st = _calls.statx(path, follow, kx.STATX_MNT_ID_UNIQUE)
    except PermissionError:
        return _unique_id_from_handle(path, follow)
    # A kernel before 6.8 ignores the unknown bit and fills the legacy id (systemd: -EUNATCH).
    if not st.mask & kx.STATX_MNT_ID_UNIQUE:
        raise Unsupported("statx ignored STATX_MNT_ID_UNIQUE")
    return st


def _unique_id_from_handle(path: bytes, follow: bool) -> kx.Statx:
    """A FUSE filesystem refuses statx with any mask bit to users other than its owner
    (without allow_other; root included), while an empty mask is answered by the VFS alone:
    MOUNT_ROOT and the legacy id. The unique id then comes from name_to_handle_at (6.12)."""
    st = _calls.statx(path, follow, 0)  # still EACCES: the caller may not search a parent
    flags = fhandle.AT_HANDLE_MNT_ID_UNIQUE | fhandle.AT_HANDLE_FID | (fhandle.AT_SYMLINK_FOLLOW if follow else 0)
    try:
        unique = fhandle.name_to_handle_at(kx.AT_FDCWD, path, flags, 0).mount_id
    except OSError as exc:
        if exc.errno in _calls.NO_HANDLE_ID:
            _calls.unsupported("statx refused a mask and name_to_handle_at gives no unique id", exc)
        raise
    return st._replace(mnt_id=unique, mask=st.mask | kx.STATX_MNT_ID_UNIQUE)


def _holder(path: bytes, follow: bool, with_propagate_from: bool, st: Optional[kx.Statx] = None) -> Mount:
    """The record of the mount holding ``path`` (whose statx the caller may have)."""
    param = _param(with_propagate_from)
    st, raw = _of_path(path, follow, st, lambda mnt_id: _statmount_raw(mnt_id, param))
    found = record(raw, with_propagate_from)
    if found is None:
        raise OutsideRoot(path, st.mnt_id)
    return found


def _of_path(path: bytes, follow: bool, st: Optional[kx.Statx], ask: Callable[[int], T]) -> Tuple[kx.Statx, T]:
    """``ask(unique id)`` of the mount holding ``path``, and the statx that named it. The
    mount can go away between statx and statmount: resolve the path once more, then report
    it gone, unless the path still leads to the same mount, which then is in no table here
    (a pipe's ``/proc/self/fd`` link leads to the kernel's internal pipefs mount)."""
    st = st or _unique_id(path, follow)
    try:
        return st, ask(st.mnt_id)
    except FileNotFoundError:
        again = _unique_id(path, follow)
        try:
            return again, ask(again.mnt_id)
        except FileNotFoundError:
            if again.mnt_id == st.mnt_id:
                raise _calls.in_no_table(path, st.mnt_id) from None
            gone = "the mount vanished while being read"
            raise FileNotFoundError(errno.ENOENT, gone, os.fsdecode(path)) from None


def mount_root(path: bytes, where: Where = None) -> str:
    """The mount point of the mount holding ``path``: statx's unique id, then statmount's
    ``MNT_POINT`` alone (6.8), whatever the kernel's other statmount fields."""
    if where is not None:
        return _mount_of_elsewhere(path, True, False, where).mountpoint
    _require_basic()
    st, reply = _of_path(path, True, None, lambda mnt_id: _statmount(mnt_id, k.STATMOUNT_MNT_POINT))
    if not reply.mnt_point:  # no mount point (6.15+), or an empty one (6.12): outside the root
        raise OutsideRoot(path, st.mnt_id)
    return reply.mnt_point.decode(_ENCODING, _ERRORS)


def mount_of(path: bytes, follow: bool, with_propagate_from: bool, where: Where = None) -> Mount:
    """The visible mount that contains ``path``."""
    if where is not None:
        return _mount_of_elsewhere(path, follow, with_propagate_from, where)
    _require()
    return _holder(path, follow, with_propagate_from)


def mount_at(path: bytes, with_propagate_from: bool, where: Where = None) -> Optional[Mount]:
    """The visible mount whose mount point is ``path``, or None."""
    if where is not None:
        return _mount_at_elsewhere(path, with_propagate_from, where)
    _require()
    st = _unique_id(path, True)
    if not st.attributes & kx.STATX_ATTR_MOUNT_ROOT and _resolve.canonical(path) != b"/":
        return None  # in a chroot to a plain directory, "/" is no mount root yet counts
    return _holder(path, True, with_propagate_from, st)


def _subtree(top: int, last: int = 0) -> List[int]:
    try:
        return k.listmount_all(top, last=last)
    except OSError as exc:
        _calls.refused("listmount", exc, answers=True)
        raise


def _listmount(top: int, count: int, flags: int, last: int = 0) -> List[int]:
    try:
        return k.listmount(top, last, count, flags)
    except OSError as exc:
        _calls.refused("listmount", exc, answers=True)
        raise


def _records(ids: List[int], with_propagate_from: bool, keep: Optional[Callable[[Mount], bool]] = None) -> List[Mount]:
    """Records of the mounts ``ids`` that pass ``keep``, skipping those that vanished since
    they were listed (ENOENT: systemd PR #43318 does the same) and those outside this
    process's root (EPERM without CAP_SYS_ADMIN, or no mount point in the reply), which
    mountinfo does not show either."""
    param = _param(with_propagate_from)
    out: List[Mount] = []
    append = out.append
    stat = k.statmount_raw
    checked = False  # whether an EPERM here was found to be the kernel's, not a filter's
    with collector_paused(len(ids) > 256):
        for mnt_id in ids:
            try:
                m = record(stat(mnt_id, param), with_propagate_from)
            except OSError as exc:
                if exc.errno == errno.ENOENT or (exc.errno == errno.EPERM and checked):
                    continue
                if exc.errno in OFF:
                    _calls.refused("statmount", exc, answers=True)  # Unsupported unless the kernel's EPERM
                    checked = True
                    continue
                raise
            if m is not None and (keep is None or keep(m)):
                append(m)
    return out


def _param(with_propagate_from: bool) -> int:
    return RECORD | (k.STATMOUNT_PROPAGATE_FROM if with_propagate_from else 0)


def mounts_under(path: bytes, include_self: bool, with_propagate_from: bool, where: Where = None) -> List[Mount]:
    """Every mount whose mount point is below ``path`` (or at it, with ``include_self``)."""
    if where is not None:
        return _mounts_under_elsewhere(path, include_self, with_propagate_from, where)
    return _under(path, include_self, with_propagate_from, None)


def mounts_under_matching(
    path: bytes, include_self: bool, needle: Needle, with_propagate_from: bool, where: Where = None
) -> List[Mount]:
    """``mounts_under`` of only the mounts ``needle`` keeps: the subtree's ids are sifted by
    the smallest statmount that can decide (``_sifted``) before any record is built."""
    if where is not None:
        return [m for m in _mounts_under_elsewhere(path, include_self, with_propagate_from, where) if needle.keep(m)]
    return _under(path, include_self, with_propagate_from, needle)


def _under(path: bytes, include_self: bool, with_propagate_from: bool, needle: Optional[Needle]) -> List[Mount]:
    _require(listing=True)
    st = _unique_id(path, True)
    top = record(_statmount_raw(st.mnt_id, _param(with_propagate_from)), with_propagate_from)
    if top is None:
        return _below_outside_root(_resolve.canonical(path), include_self, with_propagate_from, needle)
    assert top.unique_id is not None and top.parent_unique_id is not None  # statmount gives both
    point = os.fsencode(top.mountpoint)
    at = point if st.attributes & kx.STATX_ATTR_MOUNT_ROOT else _resolve.canonical(path)
    # Mounts stacked at the same mount point are a chain of parents; a lower one may hold
    # submounts that the upper one hides. List from the bottom of the stack. There is no
    # stack when the parent is the mount holding the directory above (one statx tells).
    bottom, parent = top.unique_id, top.parent_unique_id
    if point != b"/" and _calls.statx(_paths.parent_dir(point), True, kx.STATX_MNT_ID_UNIQUE).mnt_id == parent:
        parent = bottom
    while parent != bottom:
        try:
            below = _statmount(parent, k.STATMOUNT_MNT_BASIC | k.STATMOUNT_MNT_POINT)
        except OSError:
            break  # the parent is outside this root, or gone
        if below.mnt_point != point:
            break
        bottom, parent = below.mnt_id, below.mnt_parent_id
    if at != point:
        # ``path`` is a directory inside its mount, whose subtree may be far larger than the
        # answer (kubelet's /var/lib/kubelet/pods on a mount holding every pod's volumes).
        found = _below_plain(bottom, top.unique_id, at, include_self, with_propagate_from, needle)
    else:
        ids = [i for i in [bottom, *_subtree(bottom)] if i != top.unique_id]
        keep = _keep_below(at, include_self, needle)
        found = _records(ids if needle is None else _sifted(ids, needle), with_propagate_from, keep)
        if keep(top):
            found.append(top)
            # Siblings in the kernel's (creation) order, as mountinfo lists them.
            found.sort(key=_creation)
    return parents_first(found)


def _below_outside_root(
    where: bytes, include_self: bool, with_propagate_from: bool, needle: Optional[Needle]
) -> List[Mount]:
    """``mounts_under`` of a path on the mount that holds the root of a chroot to a plain
    directory (from outside it: statmount gives it no mount point). Every mount this process
    sees lies on that mount, so the answer is every listed mount below ``where``, as the
    prefix filter of mountinfo (which shows them by their paths from the root) gives it."""
    listed = _subtree(k.LSMT_ROOT)
    return parents_first(_below(listed, listed, where, include_self, with_propagate_from, needle))


# Below this many mounts in the subtree the sweep is cheap whatever the table's size, and the
# namespace is not even listed to compare.
_SWEEP_ALWAYS = 256
# About how many lines of mountinfo the kernel formats in the time of one statmount of a mount
# point (scripts/bench_core.py, the plain-directory case, times both).
_LINES_PER_STATMOUNT = 4


def _table_is_cheaper(subtree: int, listed: int) -> bool:
    """Is one mountinfo read of the ``listed`` mounts of the namespace cheaper than one
    statmount per mount of the ``subtree``? Not where slave mounts are sampled: there each
    line costs the kernel a walk of its peer group (see ``list_mounts``)."""
    return subtree * _LINES_PER_STATMOUNT > listed and not _slaves_in_sample()


def _below(
    ids: List[int],
    listed: Optional[List[int]],
    at: bytes,
    include_self: bool,
    with_propagate_from: bool,
    needle: Optional[Needle],
) -> List[Mount]:
    """Records of the mounts ``ids`` whose mount point is below ``at`` (at it, with
    ``include_self``) and that ``needle`` keeps, by the cheaper of one statmount per id and
    one mountinfo read sifted by mount point, as the sizes the kernel gives tell: the same
    answer either way. ``listed``: every mount of the namespace, where the caller has listed
    it."""
    if len(ids) > _SWEEP_ALWAYS:
        if listed is None:
            listed = _subtree(k.LSMT_ROOT)
        if _table_is_cheaper(len(ids), len(listed)):
            members = set(ids)
            found = _below_by_table(
                lambda mnt_id, _parent: mnt_id in members, listed, at, include_self, with_propagate_from, needle
            )
            if found is not None:
                return found
    return _below_by_sweep(ids, at, include_self, with_propagate_from, needle)


def _below_plain(
    bottom: int, top: int, at: bytes, include_self: bool, with_propagate_from: bool, needle: Optional[Needle]
) -> List[Mount]:
    """``_below`` of the tree of ``bottom`` (the stack's ``top`` left out), listing that tree
    only as far as the choice needs: whole where it is small, or until it is large enough
    that one mountinfo read is cheaper. Then the few lines below ``at`` are checked to be in
    the tree by their parents (``_descends``), so that a large tree is never walked whole
    beside the namespace."""
    first = max(1, _SWEEP_ALWAYS + 1)
    subtree = _listmount(bottom, first, 0)
    complete = len(subtree) < first  # a short page is the whole tree
    if not complete or len(subtree) > _SWEEP_ALWAYS:
        listed = _subtree(k.LSMT_ROOT)
        enough = len(listed) // _LINES_PER_STATMOUNT + 1  # a tree this large: the read is cheaper
        while not complete and len(subtree) < enough:
            want = min(16384, enough - len(subtree))
            page = _listmount(bottom, want, 0, subtree[-1])
            subtree += page
            complete = len(page) < want
        if _table_is_cheaper(len(subtree), len(listed)):
            found = _below_by_table(
                lambda mnt_id, parent: _descends(parent, bottom),
                listed,
                at,
                include_self,
                with_propagate_from,
                needle,
            )
            if found is not None:
                return found
        if not complete:
            subtree += _subtree(bottom, subtree[-1])
    ids = [i for i in [bottom, *subtree] if i != top]
    return _below_by_sweep(ids, at, include_self, with_propagate_from, needle)


def _descends(parent: int, bottom: int) -> bool:
    """Is a mount whose parent is ``parent`` in the tree of ``bottom``? Its parents up to
    ``bottom``, one statmount each, or to the namespace's root, its own parent (a mount
    outside this root, or gone: not in the tree of one inside it)."""
    seen = set()
    while parent != bottom:
        if parent in seen:
            return False
        seen.add(parent)
        try:
            parent = _statmount(parent, k.STATMOUNT_MNT_BASIC).mnt_parent_id
        except OSError:
            return False
    return True


def _keep_below(at: bytes, include_self: bool, needle: Optional[Needle] = None) -> Callable[[Mount], bool]:
    """The test of a record: its mount point below ``at`` (or at it, with ``include_self``),
    and kept by ``needle`` if one is given."""
    text = os.fsdecode(at)
    prefix = text if text.endswith("/") else text + "/"
    also = None if needle is None else needle.keep

    def keep(m: Mount) -> bool:
        if not (include_self if m.mountpoint == text else m.mountpoint.startswith(prefix)):
            return False
        return also is None or also(m)

    return keep


def _below_by_sweep(
    ids: List[int], at: bytes, include_self: bool, with_propagate_from: bool, needle: Optional[Needle]
) -> List[Mount]:
    """Sift ``ids`` by mount point with the smallest statmount there is (and by ``needle``),
    then build records."""
    ids = [i for i in ids if _point_below(i, at, include_self)]
    if needle is not None:
        ids = _sifted(ids, needle)
    return _records(ids, with_propagate_from, _keep_below(at, include_self, needle))


def _below_by_table(
    member: Callable[[int, int], bool],
    listed: List[int],
    at: bytes,
    include_self: bool,
    with_propagate_from: bool,
    needle: Optional[Needle],
) -> Optional[List[Mount]]:
    """The answer of ``_below_by_sweep`` from one mountinfo read: its lines are sifted by
    mount point on their raw bytes, and only the few that pass get a statmount, which builds
    the same record the sweep would. Since 6.8 mountinfo lists the namespace in unique-id
    order, as listmount does (commit 2eea9ce4310d): the n-th line shows the n-th ``listed``
    mount when the counts agree, which each statmount confirms (the line's legacy id: a mount
    listed before the read and attached after it was attached all along, and kept its id).
    None where the read cannot be trusted so (a mount came or went, no /proc): then sweep.
    ``member(id, parent's id)`` tells a mount of the tree below the path from a covered
    mount's that the same prefix shows."""
    try:
        data = read_mountinfo()
    except (OSError, MountprobeError):
        return None
    if data.count(b"\n") != len(listed) or (data and data[-1:] != b"\n"):
        return None
    keep = _keep_below(at, include_self)
    param = _param(with_propagate_from)
    found: List[Mount] = []
    for index, legacy in lines_below(data, at, include_self):
        mnt_id = listed[index]
        try:
            m = record(_statmount_raw(mnt_id, param), with_propagate_from)
        except (FileNotFoundError, PermissionError):
            return None
        if m is None or m.id != legacy or not keep(m):
            return None
        # Not a member: not in the tree below the path (a covered mount's).
        if member(mnt_id, m.parent_unique_id or 0) and (needle is None or needle.keep(m)):
            found.append(m)
    return found


def _creation(m: Mount) -> int:
    return m.unique_id or 0


def _point_below(mnt_id: int, where: bytes, include_self: bool) -> bool:
    try:
        point = _statmount(mnt_id, k.STATMOUNT_MNT_POINT).mnt_point
    except (FileNotFoundError, PermissionError):
        return False
    if point is None:
        return False
    return include_self if point == where else is_below(point, where)


SAMPLE = 8


def _slaves_in_sample() -> bool:
    """Are any of the oldest and newest ``SAMPLE`` mounts slaves? mountinfo's cost comes
    from slave mounts (the kernel walks each one's peer group), and slaves come in bulk:
    a container's volume binds, a namespace made with ``--propagation slave``."""
    sample = _listmount(k.LSMT_ROOT, SAMPLE, 0)
    try:
        sample += _listmount(k.LSMT_ROOT, SAMPLE, k.LISTMOUNT_REVERSE)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # LISTMOUNT_REVERSE is 6.11+
            raise
    for mnt_id in sample:
        try:
            if _statmount(mnt_id, k.STATMOUNT_MNT_BASIC).mnt_propagation & k.MS_SLAVE:
                return True
        except (FileNotFoundError, PermissionError):
            continue
    return False


def list_mounts(with_propagate_from: bool, where: Where = None) -> List[Mount]:
    """The whole table, one statmount per mount. Chosen where slave mounts are found, because
    there the kernel's mountinfo costs O(mounts x peers) (``scripts/bench.py``, the slave
    scenarios), and where no mountinfo can be read; elsewhere one mountinfo read is cheaper than
    a syscall per mount."""
    if where is not None:
        return _list_mounts_elsewhere(with_propagate_from, where)
    _require(listing=True)
    # Without /proc (a chroot, early boot, a minimal container) statmount is the only way.
    if not _slaves_in_sample() and procfs_now().usable:
        raise Unsupported(f"no slave mount among the {2 * SAMPLE} sampled: one mountinfo read is cheaper here")
    return _records(_subtree(k.LSMT_ROOT), with_propagate_from)


def list_matching(needle: Needle, with_propagate_from: bool, where: Where = None) -> List[Mount]:
    """``list_mounts`` of only the mounts ``needle`` keeps, where ``list_mounts`` would use
    statmount: each listed mount is first asked the smallest statmount that can decide
    (its superblock device, else its source, type or root), and a record is built only for
    those that pass."""
    if where is not None:
        return [m for m in _list_mounts_elsewhere(with_propagate_from, where) if needle.keep(m)]
    _require(listing=True)
    if not _slaves_in_sample() and procfs_now().usable:
        raise Unsupported(f"no slave mount among the {2 * SAMPLE} sampled: one mountinfo read is cheaper here")
    return _records(_sifted(_subtree(k.LSMT_ROOT), needle), with_propagate_from, needle.keep)


def _sifted(ids: List[int], needle: Needle) -> List[int]:
    """The ids of ``ids`` whose mount may match ``needle``, each decided by one small
    statmount. An id whose call failed is kept: ``_records`` decides what its errno means."""
    if needle.devnos is not None:
        devnos = needle.devnos
        return [i for i, d in zip(ids, k.superblock_devices(ids)) if type(d) is int or d in devnos]
    if needle.text is not None:
        bit, wanted = k.STATMOUNT_SB_SOURCE, needle.text.rstrip(b"/") or b"/"

        def passes(r: k.StatmountReply) -> bool:
            return r.sb_source is not None and (r.sb_source.rstrip(b"/") or b"/") == wanted

    elif needle.fstypes is not None:
        bit = k.STATMOUNT_FS_TYPE
        types = {os.fsencode(t.partition(".")[0]) for t in needle.fstypes}

        def passes(r: k.StatmountReply) -> bool:
            return r.fs_type in types  # the main type only: the record's test sees the subtype

    elif needle.root is not None:
        bit, root = k.STATMOUNT_MNT_ROOT, os.fsencode(needle.root)

        def passes(r: k.StatmountReply) -> bool:
            return r.mnt_root == root

    else:
        return ids
    out: List[int] = []
    for mnt_id in ids:
        try:
            r = k.statmount(mnt_id, bit)
        except OSError:
            out.append(mnt_id)
            continue
        if not r.mask & bit or passes(r):
            out.append(mnt_id)
    return out


def every_mount() -> List[Mount]:
    """The whole table by listmount and statmount, slave mounts or not: the view of a
    watcher whose events name mounts by unique id."""
    _require(listing=True)
    return _records(_subtree(k.LSMT_ROOT), False)


def still_mounted(m: Mount, where: Where = None) -> bool:
    """Is the mount with ``m.unique_id`` still attached? Unique ids are never reused, so a
    new mount at the same place is never mistaken for it."""
    if where is not None:
        return _still_mounted_elsewhere(m, where)
    if m.unique_id is None:
        raise Unsupported("this record has no unique id")
    # MNT_BASIC alone: its fields are filled in every reply since 6.8, so no other field of
    # this kernel's statmount (supported_mask, 6.15) matters to this question.
    _require_basic()
    try:
        _statmount(m.unique_id, k.STATMOUNT_MNT_BASIC)
    except FileNotFoundError:
        return False  # final: also right after a lazy umount, while the fs may live on
    except PermissionError:
        return True  # attached, outside this root
    return True


# -- another mount namespace (``where``), by listmount/statmount with its mnt_ns_fd (6.18)
# or mnt_ns_id (6.11) ------------------------------------------------------------------------


def _reachable(where: Target) -> None:
    if where.by_mountinfo:
        raise Unsupported("listmount/statmount cannot read that namespace here: its mountinfo is read")


def _unique_id_of(where: Target, fd: int) -> kx.Statx:
    try:
        st = where.statx(fd, kx.STATX_MNT_ID_UNIQUE)
    except OSError as exc:
        _calls.refused("statx", exc)
        raise
    if not st.mask & kx.STATX_MNT_ID_UNIQUE:
        raise Unsupported("statx ignored STATX_MNT_ID_UNIQUE")
    return st


def _holder_elsewhere(
    where: Target, fd: int, path: bytes, with_propagate_from: bool, st: Optional[kx.Statx] = None
) -> Optional[Mount]:
    """The record of the mount holding the open ``fd`` in ``where`` (whose statx the caller
    may have); None for one outside the process's root (no mount point in the reply)."""
    st = st or _unique_id_of(where, fd)
    try:
        return record(where.statmount_raw(st.mnt_id, _param(with_propagate_from)), with_propagate_from)
    except FileNotFoundError:
        gone = "the mount vanished while being read"
        raise FileNotFoundError(errno.ENOENT, gone, os.fsdecode(path)) from None


def _outside(path: bytes) -> Unsupported:
    why = "its mount lies outside the process's root: statmount gives no mount point"
    return Unsupported(f"{os.fsdecode(path)}: {why}")


def _mount_of_elsewhere(path: bytes, follow: bool, with_propagate_from: bool, where: Target) -> Mount:
    _reachable(where)
    fd = where.open(path, follow)
    try:
        found = _holder_elsewhere(where, fd, path, with_propagate_from)
    finally:
        os.close(fd)
    if found is None:
        raise _outside(path)
    return found


def _mount_at_elsewhere(path: bytes, with_propagate_from: bool, where: Target) -> Optional[Mount]:
    _reachable(where)
    fd = where.open(path)
    try:
        st = _unique_id_of(where, fd)
        if not st.attributes & kx.STATX_ATTR_MOUNT_ROOT and not where.is_root(fd):
            return None
        found = _holder_elsewhere(where, fd, path, with_propagate_from, st)
    finally:
        os.close(fd)
    if found is None:
        raise _outside(path)
    return found


def _mounts_under_elsewhere(path: bytes, include_self: bool, with_propagate_from: bool, where: Target) -> List[Mount]:
    _reachable(where)
    _lazy.load(f"{__package__}.mountinfo")  # the strategy's table helpers (fork, chroot: see _lazy)
    from .mountinfo import holder_elsewhere, reachable_below

    fd = where.open(path)
    try:
        holder = _holder_elsewhere(where, fd, path, with_propagate_from)
        if holder is None:  # the mount holding a chrooted process's root: its table entry
            holder = holder_elsewhere(where, fd, path, with_propagate_from)
        at = where.name(fd)
    finally:
        os.close(fd)
    return reachable_below(_list_mounts_elsewhere(with_propagate_from, where), holder, at, include_self)


def _records_elsewhere(where: Target, ids: List[int], with_propagate_from: bool) -> List[Mount]:
    found: List[Mount] = []
    for mnt_id in ids:
        try:
            m = record(where.statmount_raw(mnt_id, _param(with_propagate_from)), with_propagate_from)
        except (FileNotFoundError, PermissionError):
            continue  # gone since it was listed, or outside the namespace's root
        if m is not None:
            found.append(m)
    return found


def _list_mounts_elsewhere(with_propagate_from: bool, where: Target) -> List[Mount]:
    _reachable(where)
    return _records_elsewhere(where, where.ids(), with_propagate_from)


def _still_mounted_elsewhere(m: Mount, where: Target) -> bool:
    if m.unique_id is None:
        raise Unsupported("this record has no unique id")
    _reachable(where)
    try:
        where.statmount_raw(m.unique_id, k.STATMOUNT_MNT_BASIC)
    except FileNotFoundError:
        return False
    return True


def differs_from_parent(path: bytes, follow: bool, where: Where = None) -> bool:
    """In another namespace: is the device of the mount at ``path`` other than its parent
    mount's (or has it no parent there)? In the caller's, devcmp answers."""
    if where is None:
        raise Unsupported("statmount: devcmp compares the caller's own paths")
    _reachable(where)
    fd = where.open(path, follow)
    try:
        m = _holder_elsewhere(where, fd, path, False)
    finally:
        os.close(fd)
    if m is None or m.parent_unique_id is None:
        raise _outside(path)
    try:
        parent = record(where.statmount_raw(m.parent_unique_id, _param(False)), False)
    except (FileNotFoundError, PermissionError):
        parent = None
    return parent is None or (parent.major, parent.minor) != (m.major, m.minor)
