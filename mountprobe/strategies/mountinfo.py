"""The last resort: a filtered read of ``/proc/thread-self/mountinfo``.

For kernels without statx MOUNT_ROOT (< 5.8) or statmount (< 6.8), and sandboxes whose
seccomp profile blocks them. Paths are canonicalised first, because the table holds only
resolved paths (moby/sys PR #14); the filter runs while the text is parsed.
"""

from __future__ import annotations

import os
from operator import itemgetter

from .. import _overlap
from .. import mountinfo as mi
from .._procfs import mountinfo_paths
from ..errors import MountprobeError, OutsideRoot, ProcUnavailable, Unsupported
from ..kernel import mount as km
from ..kernel import statx as kx
from ..kernel._syscall import OFF
from ..model import Mount, collector_paused, identity, parents_first
from ..probe import capabilities
from . import _calls, _resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from io import FileIO
    from typing import AnyStr, Dict, List, Optional, Set, Tuple

    from ..filters import Needle
    from ..namespaces import Target, Where

_new = tuple.__new__
_ID, _PARENT_UNIQUE_ID = itemgetter(0), itemgetter(3)  # Mount fields, read for a whole table


def _plain(m: Mount, with_propagate_from: bool) -> Mount:
    # propagate_from is filled only on request, whatever the source, so that a record
    # never depends on which strategy built it.
    return m if with_propagate_from or m.propagate_from is None else m._replace(propagate_from=None)


def _source_mount() -> tuple[str, Optional[int]]:
    """The mountinfo file that a read takes (the first that opens) and the legacy id of the
    mount holding it: a file bound over it is a mount of its own, and the table read through
    it must hold that mount."""
    for name in mountinfo_paths():
        try:
            fd = os.open(name, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            return name, _calls.fd_mount_id(fd)
        finally:
            os.close(fd)
    return "mountinfo", None


def _broken(source: str, what: str) -> MountprobeError:
    return MountprobeError(
        f"{source}: a broken mount table (a file bound over it, or a sandbox's stand-in): it lacks {what}, "
        "which the kernel names; not answering from it"
    )


def _root_id() -> Optional[int]:
    return _calls.legacy_mount_id(b"/", True)


def _lists(table: List[Mount], mnt_id: int) -> bool:
    """Does ``table`` hold a line of mount ``mnt_id``? A scan in C that stops at the line:
    the mounts asked for ("/", the one holding /proc) come first in a table, and building a set
    of every id would cost a pass over the whole table on every read of it."""
    return mnt_id in map(_ID, table)


def _unsound(table: List[Mount], root: Optional[int], also: Optional[bytes] = None) -> Optional[MountprobeError]:
    """The error to raise when ``table`` lacks a mount the kernel names: the one holding the
    mountinfo file, the one holding "/" (``root``) and, if given, the one holding the path
    ``also``. In a chroot to a plain directory mountinfo omits the mount holding "/"
    (its mount point lies outside the root), but the mounts inside name it as their parent."""
    source, file_mount = _source_mount()
    if file_mount is not None and not _lists(table, file_mount):
        return _broken(source, f"mount {file_mount}, which holds that file")
    if root is not None and not _lists(table, root) and not any(m.parent_id == root for m in table):
        return _broken(source, f"mount {root}, which holds /")
    if also is not None:
        try:
            here = _calls.legacy_mount_id(also, False)
        except OSError:  # the path is gone: no mount to name
            here = None
        if here is not None and here != root and not _lists(table, here):
            return _broken(source, f"mount {here}, which holds {os.fsdecode(also)}")
    return None


def _line_of(data: bytes, mnt_id: int, path: bytes) -> tuple[Optional[Mount], bytes]:
    """The line of mount ``mnt_id``, which the kernel named for ``path``, and the table it
    came from (read again once when missing: attached after the read). None for the mount
    holding the root of a chroot to a plain directory, which no table here shows.
    MountprobeError for a broken table, and for a mount in no table of this namespace
    (another namespace's, or an internal one: pipes)."""
    found = mi.find_by_id(data, mnt_id)
    if found is not None:
        return found, data
    data = mi.read_mountinfo()
    found = mi.find_by_id(data, mnt_id)
    if found is not None:
        return found, data
    table = mi.parse_mountinfo(data)
    root = _root_id()
    error = _unsound(table, root)
    if error is not None:
        raise error
    if mnt_id == root:
        return None, data
    raise _calls.in_no_table(path, mnt_id)


def _visible_at(where: bytes, follow: bool) -> Optional[Mount]:
    """The mount whose root the canonical ``where`` is, or None: the mount holding it, when
    its mount point is ``where``; else the topmost line at ``where`` (no id to be had)."""
    unique = _unique_id(where, follow)
    data = mi.read_mountinfo()
    mnt_id = _calls.legacy_mount_id(where, follow)
    if mnt_id is None:
        return mi.topmost(mi.find_at(data, where))
    holder, _ = _line_of(data, mnt_id, where)
    if holder is None:  # the mount holding a plain-directory chroot: its root lies above "/"
        if where == b"/":
            raise OutsideRoot(where, mnt_id)
        return None
    return _tagged(holder, unique) if os.fsencode(holder.mountpoint) == where else None


def is_mountpoint(path: bytes, follow: bool, where: Where = None) -> bool:
    """True when the canonical ``path`` is the root of the mount that holds it (or is ``/``)."""
    if where is not None:
        return _is_mountpoint_elsewhere(path, follow, where)
    at = _resolve.resolved(path, follow)
    if at == b"/":
        return True
    return _visible_at(at, False) is not None


def mount_of(path: bytes, follow: bool, with_propagate_from: bool, where: Where = None) -> Mount:
    """The visible mount that contains ``path``: by its mount id where a syscall or fdinfo
    gives one, else the topmost entry at the longest mount point above the canonical path."""
    if where is not None:
        return _mount_of_elsewhere(path, follow, with_propagate_from, where)
    mnt_id = _calls.legacy_mount_id(path, follow)
    if mnt_id is None:
        at = _resolve.canonical(path, follow)
        found = mi.longest_prefix(mi.read_mountinfo(), at)
        if found is None:
            raise MountprobeError(f"{os.fsdecode(path)}: no mount in this process's mountinfo holds it")
    else:
        unique = _unique_id(path, follow)
        found, _ = _line_of(mi.read_mountinfo(), mnt_id, path)
        if found is None:
            raise OutsideRoot(path, mnt_id)
        found = _tagged(found, unique)
    return _plain(found, with_propagate_from)


def _unique_id(path: bytes, follow: bool) -> Optional[int]:
    """The unique id of the mount holding ``path`` (statx, 6.8), asked before the table is
    read; None where there is none, or statmount cannot confirm it after the read."""
    caps = capabilities()
    if not (caps.statx_unique_id and caps.statmount.usable):
        return None
    try:
        st = _calls.statx(path, follow, kx.STATX_MNT_ID_UNIQUE)
    except (OSError, Unsupported):
        return None
    return st.mnt_id if st.mask & kx.STATX_MNT_ID_UNIQUE else None


def _tagged(m: Mount, unique: Optional[int]) -> Mount:
    """``m`` with the unique ids of its mount and parent where statmount, after the read,
    still finds mount ``unique`` (seen before the read) with ``m``'s legacy ids: attached
    for the whole read, it kept its legacy id (freed only with the mount), so the line with
    that id is this very mount. Then ``still_mounted`` needs no table on 6.8-6.14 either."""
    if unique is None:
        return m
    return _with_proved_id(m, unique) or m


def _with_proved_id(m: Mount, unique: int) -> Optional[Mount]:
    """``m`` with unique ids, if statmount of ``unique`` names ``m``'s legacy ids; else None."""
    try:
        r = km.statmount(unique, km.STATMOUNT_MNT_BASIC)
    except OSError:
        return None
    if (r.mnt_id_old, r.mnt_parent_id_old) != (m.id, m.parent_id):
        return None
    return _new(Mount, (m.id, m.parent_id, r.mnt_id, r.mnt_parent_id) + m[4:])


def mount_root(path: bytes, where: Where = None) -> str:
    """The mount point of the mount holding ``path``, from its record."""
    return mount_of(path, True, False, where).mountpoint


def mount_at(path: bytes, with_propagate_from: bool, where: Where = None) -> Optional[Mount]:
    """The visible mount whose mount point is the canonical ``path``, or None."""
    if where is not None:
        return _mount_at_elsewhere(path, with_propagate_from, where)
    at = _resolve.canonical(path)
    if at != b"/" and _no_mount_root(at):  # "/" of a chroot to a plain directory is one
        return None
    found = _visible_at(at, True)
    return None if found is None else _plain(found, with_propagate_from)


def _no_mount_root(path: bytes) -> bool:
    """Does statx say (5.8: ``STATX_ATTR_MOUNT_ROOT``) that nothing is mounted at ``path``?
    Then no table is read for it: a mount at a path is the root of a mount there."""
    try:
        st = _calls.statx(path, True, 0)
    except (OSError, Unsupported):  # blocked, or gone: the table decides
        return False
    return bool(st.attributes_mask & kx.STATX_ATTR_MOUNT_ROOT) and not st.attributes & kx.STATX_ATTR_MOUNT_ROOT


def mounts_under(path: bytes, include_self: bool, with_propagate_from: bool, where: Where = None) -> List[Mount]:
    """The mounts reachable below ``path``, as listmount gives them: the tree below the
    bottom of the stack holding ``path``, filtered by mount point component-wise (``/a`` is
    not below ``/ab``). Not a bare prefix filter: a mount hidden under the mount holding
    ``path`` (attached to the mount beneath before it was covered) is not reachable."""
    if where is not None:
        return _mounts_under_elsewhere(path, include_self, with_propagate_from, where)
    at = _resolve.canonical(path)
    mnt_id = _calls.legacy_mount_id(at, True)
    data = mi.read_mountinfo()
    if mnt_id is None:
        holder = mi.longest_prefix(data, at)
        if holder is None:
            raise MountprobeError(f"{os.fsdecode(path)}: no mount in this process's mountinfo holds it")
        table = mi.parse_mountinfo(data)
        found = reachable_below(table, holder, at, include_self)
    else:
        holder, data = _line_of(data, mnt_id, at)
        table = mi.parse_mountinfo(data)
        if holder is None:  # the mount holding a plain-directory chroot: everything here lies on it
            found = _reachable_from(table, mnt_id, at, include_self)
        else:
            found = reachable_below(table, holder, at, include_self)
    return [_plain(m, with_propagate_from) for m in found]


def mounts_under_matching(
    path: bytes, include_self: bool, needle: Needle, with_propagate_from: bool, where: Where = None
) -> List[Mount]:
    """``mounts_under`` of only the mounts ``needle`` keeps, from one read. Which lines are
    reachable below ``path`` is decided on their raw ids, parents and mount points
    (``mountinfo.skeleton``), which may match on their raw bytes (``mountinfo.sift``), and
    records are built only for the lines that pass both."""
    if where is not None:
        return [m for m in _mounts_under_elsewhere(path, include_self, with_propagate_from, where) if needle.keep(m)]
    at = _resolve.canonical(path)
    mnt_id = _calls.legacy_mount_id(at, True)
    if mnt_id is None:  # no legacy id here (no name_to_handle_at): rare; the whole table
        return [m for m in mounts_under(path, include_self, with_propagate_from) if needle.keep(m)]
    top, data = _line_of(mi.read_mountinfo(), mnt_id, at)
    if top is None:  # the mount holding a plain-directory chroot: rare; the whole table
        return [m for m in mounts_under(path, include_self, with_propagate_from) if needle.keep(m)]
    lines = data.split(b"\n")
    point = mi.escape(os.fsencode(top.mountpoint))
    below = _tree_below(mi.skeleton(lines), top.id, top.parent_id, point, mi.escape(at), include_self)
    raw = needle.raw()
    if any(condition is not None for condition in raw):
        below &= set(mi.sift(data, *raw)[1])
    table = mi.parse_mountinfo(b"\n".join([lines[i] for i in sorted(below)]))
    return [_plain(m, with_propagate_from) for m in parents_first([m for m in table if needle.keep(m)])]


def reachable_below(table: List[Mount], holder: Mount, where: bytes, include_self: bool) -> List[Mount]:
    """The mounts of ``table`` reachable below the canonical ``where``, held by ``holder``:
    the tree under the bottom of the stack at ``holder``'s mount point, filtered by mount
    point component-wise, parents first."""
    nodes = [(m.id, m.parent_id, m.mountpoint) for m in table]
    kept = _tree_below(nodes, holder.id, holder.parent_id, holder.mountpoint, os.fsdecode(where), include_self)
    return parents_first([m for i, m in enumerate(table) if i in kept])


def _reachable_from(table: List[Mount], bottom: int, where: bytes, include_self: bool) -> List[Mount]:
    """The mounts of ``table`` in the tree of mount ``bottom`` at or below ``where``."""
    nodes = [(m.id, m.parent_id, m.mountpoint) for m in table]
    kept = _tree_from(nodes, bottom, os.fsdecode(where), include_self)
    return parents_first([m for i, m in enumerate(table) if i in kept])


def _tree_below(
    nodes: List[Tuple[int, int, AnyStr]], top: int, parent: int, point: AnyStr, where: AnyStr, include_self: bool
) -> Set[int]:
    """The indices of ``nodes`` (legacy id, parent's id, mount point: decoded, or raw and
    escaped, like ``point`` and ``where``) reachable below ``where`` from mount ``top``: the
    tree under the bottom of the stack at ``top``'s mount point ``point``, filtered by mount
    point component-wise."""
    by_id = {n[0]: n for n in nodes}
    bottom = top
    while parent in by_id and parent != bottom:
        below = by_id[parent]
        if below[2] != point:
            break
        bottom, parent = below[0], below[1]
    return _tree_from(nodes, bottom, where, include_self)


def _tree_from(nodes: List[Tuple[int, int, AnyStr]], bottom: int, where: AnyStr, include_self: bool) -> Set[int]:
    """The indices of ``nodes`` in the tree of mount ``bottom`` at or below ``where``."""
    reachable = {bottom}
    grown = True  # one pass adds parents before children; a moved mount may need another
    while grown:
        before = len(reachable)
        reachable.update(n[0] for n in nodes if n[1] in reachable)
        grown = len(reachable) != before
    slash = where[:1]  # canonical: it starts with a slash, of its own type (str or bytes)
    prefix = where if where.endswith(slash) else where + slash
    return {
        i
        for i, (mnt_id, _, point) in enumerate(nodes)
        if mnt_id in reachable and (include_self if point == where else point.startswith(prefix))
    }


def _listed_ids() -> Optional[List[int]]:
    caps = capabilities()
    if not (caps.listmount.usable and caps.statmount.usable):
        return None
    try:
        return km.listmount_all(km.LSMT_ROOT)
    except OSError:
        return None


def _order_holds(table: List[Mount], ids: List[int]) -> bool:
    """Do the first, middle and last lines have the legacy ids statmount gives for the ids at
    the same places? A guard on the kernel's order (unique ids, commit 2eea9ce4310d)."""
    try:
        for i in {0, len(table) // 2, len(table) - 1}:
            r = km.statmount(ids[i], km.STATMOUNT_MNT_BASIC)
            if (r.mnt_id_old, r.mnt_parent_id_old) != (table[i].id, table[i].parent_id):
                return False
    except OSError:
        return False
    return True


def _fill_parents(table: List[Mount]) -> List[Mount]:
    """Ask statmount for the parents the parse could not link: one listed after its child
    (a moved mount) or outside the table (the hidden rootfs above "/", or outside a chroot)."""
    for i in [i for i, above in enumerate(map(_PARENT_UNIQUE_ID, table)) if above is None and table[i][2] is not None]:
        try:
            r = km.statmount(table[i].unique_id or 0, km.STATMOUNT_MNT_BASIC)
        except OSError:
            continue
        if r.mnt_parent_id_old == table[i].parent_id:
            table[i] = table[i]._replace(parent_unique_id=r.mnt_parent_id)
    return table


def _proved(ids: List[int], table: List[Mount]) -> Dict[int, Tuple[int, int, int]]:
    """legacy id -> (unique id, parent's unique id, parent's legacy id), from statmount after
    the read, of the mounts ``ids`` listed before it. A mount leaves a namespace only by
    umount, for good, so each one still attached was attached for the whole read, and kept its
    legacy id all along (an id is freed only with its mount): no other mount had that id
    meanwhile, and the line with that id shows this very mount."""
    try:
        replies = km.mount_ids(ids)
    except OSError:
        return {}
    proved = {r[2]: (r[0], r[1], r[3]) for r in replies if type(r) is tuple}
    proved.update(_attached_during(ids, [m for m in table if m.id not in proved]))
    return proved


def _attached_during(before: List[int], unproved: List[Mount]) -> Dict[int, Tuple[int, int, int]]:
    """The same, for the records ``unproved`` of mounts attached during the read (listed
    after it, not before): the new id whose statmount names the record's legacy ids, device,
    root and mount point (all filled since 6.8). Without it a watcher's listing would give
    such a mount no unique id, and the next listing one. A mount unmounted during the read
    whose legacy id, device, root and place a new one took at once is mistaken for it: the
    blind spot of legacy identity (``still_mounted``)."""
    after = _listed_ids() if unproved else None
    if not after:
        return {}
    waiting = {m.id: m for m in unproved}
    listed = set(before)
    found: Dict[int, Tuple[int, int, int]] = {}
    for mnt_id in after:
        if mnt_id in listed:
            continue
        try:
            r = km.statmount(mnt_id, km.STATMOUNT_MNT_BASIC | km.STATMOUNT_MNT_ROOT | km.STATMOUNT_MNT_POINT)
        except OSError:
            continue
        m = waiting.get(r.mnt_id_old)
        if (
            m is not None
            and (r.mnt_parent_id_old, r.sb_dev_major, r.sb_dev_minor) == (m.parent_id, m.major, m.minor)
            and r.mnt_root is not None
            and r.mnt_point is not None
            and (os.fsdecode(r.mnt_root), os.fsdecode(r.mnt_point)) == (m.root, m.mountpoint)
        ):
            found[m.id] = (r.mnt_id, r.mnt_parent_id, r.mnt_parent_id_old)
    return found


def _with_unique_ids(table: List[Mount], proved: Dict[int, Tuple[int, int, int]]) -> List[Mount]:
    """``table`` with the unique ids of the mounts ``proved`` (None for the others), and of the
    parents: the parent's own line where proved, else (a parent outside the table: outside
    the root, or the namespace's hidden rootfs) the one statmount names, when its legacy id
    is the line's."""
    out: List[Mount] = []
    append = out.append
    get = proved.get
    for m in table:
        mine = get(m.id)
        above = get(m.parent_id)
        if mine is None:  # attached during the read; its parent may be proved
            append(_new(Mount, (m.id, m.parent_id, None, None if above is None else above[0]) + m[4:]))
            continue
        parent = above[0] if above is not None else mine[1] if mine[2] == m.parent_id else None
        append(_new(Mount, (m.id, m.parent_id, mine[0], parent) + m[4:]))
    return out


def list_mounts(with_propagate_from: bool, where: Where = None) -> List[Mount]:
    """The whole table from one read, checked to hold the mounts the kernel names for "/" and
    for the file itself, with unique ids proved for each line or not given.

    Since Linux 6.8 listmount and mountinfo both walk the namespace in unique-id order
    (commit 2eea9ce4310d). When no mount came or went between the open and the end of the
    read (the namespace's event count, polled on the open file; where it cannot be polled,
    listmount giving the same ids after the read as before: ids are never reused, and a mount
    leaves a namespace only by umount, for good), every listed mount was shown (stable mounts
    are never missed) and the n-th line is the n-th id, if the counts agree. Otherwise a tree made earlier
    (``open_tree``, ``fsmount``) may have been attached by ``move_mount`` in the middle of the
    order while another went: each id then comes from statmount, per line (``_proved``), at
    one syscall per mount."""
    if where is not None:
        return _list_mounts_elsewhere(with_propagate_from, where)
    try:
        file, name = mi.open_mountinfo()
    except ProcUnavailable as exc:
        # The statmount strategy declined: say why, since that is what a reader can change.
        caps = capabilities()
        why = f"statmount {caps.statmount.status} ({caps.statmount.detail}), listmount {caps.listmount.status}"
        raise ProcUnavailable(f"{exc}; nor can statmount list the mounts here: {why}") from None
    with file:
        # Listed after the open: a namespace unchanged since the open (the kernel's event
        # count, asked after the read) had these mounts all through the read.
        before = _listed_ids()
        parsed = _parsed_while_read(file, before) if before and _overlap.worth_it(len(before)) else None
        data = mi._read(file, name, False) if parsed is None else parsed[1]
        changed = mi.changed_since_open(file) if before else None
    if parsed is not None:
        table = parsed[0]
    else:
        table = mi.parse_with_unique_ids(data, before) if before else mi.parse_mountinfo(data)
    root = _root_id()
    error = _unsound(table, root)
    if error is not None:
        data = mi.read_mountinfo()
        before = None  # listed before the first read only
        table = mi.parse_mountinfo(data)
        error = _unsound(table, root)
        if error is not None:
            raise error
    if before:
        same = not changed if changed is not None else _listed_ids() == before
        if len(table) == len(before) and same and _order_holds(table, before):
            table = _fill_parents(table)
        else:
            with collector_paused(len(table) > 256):
                table = _with_unique_ids(table, _proved(before, table))
    if with_propagate_from or b"propagate_from:" not in data:
        return table
    return [_plain(m, False) for m in table]


def _parsed_while_read(file: FileIO, ids: List[int]) -> Optional[Tuple[List[Mount], bytes]]:
    """The table of ``file`` parsed as another CPU reads it (``_overlap``): the records with
    ``ids`` (as ``parse_with_unique_ids``) and the text; None where that cannot be had or the
    copy failed, with ``file`` back at its start."""
    arrival = _overlap.start(file)
    if arrival is None:
        return None
    try:
        parsed = mi.parse_arriving(arrival.blocks(), ids)
    finally:
        failed = arrival.finish()
    if failed is not None:
        file.seek(0)
        return None
    return parsed


def list_matching(needle: Needle, with_propagate_from: bool, where: Where = None) -> List[Mount]:
    """``list_mounts`` of only the mounts ``needle`` keeps, from one read: its lines are
    sifted on their raw bytes (``mountinfo.sift``) and records built for those alone. Checked
    as the whole table is, with the unique id of each record proved by its own statmount
    (``_own_unique_ids``; every id of the table, as ``list_mounts`` does, only when a mount
    came or went during the read)."""
    if where is not None:
        return [m for m in _list_mounts_elsewhere(with_propagate_from, where) if needle.keep(m)]
    before = _listed_ids()
    try:
        data = mi.read_mountinfo()
    except mi.ProcUnavailable as exc:
        caps = capabilities()
        why = f"statmount {caps.statmount.status} ({caps.statmount.detail}), listmount {caps.listmount.status}"
        raise mi.ProcUnavailable(f"{exc}; nor can statmount list the mounts here: {why}") from None
    root = _root_id()
    error = _unsound(mi.parse_mountinfo(data), root) if _unsound_raw(data, root) else None
    if error is not None:
        data = mi.read_mountinfo()
        before = None  # listed before the first read only
        error = _unsound(mi.parse_mountinfo(data), root) if _unsound_raw(data, root) else None
        if error is not None:
            raise error
    raw = needle.raw()
    if any(condition is not None for condition in raw):
        kept, lines = mi.sift(data, *raw)
    else:  # only the exact test can decide (a tag without a udev link, a btrfs device)
        kept, lines = data, list(range(data.count(b"\n")))
    table = mi.parse_mountinfo(kept)
    # The n-th id listed before the read for the n-th line, where each line parsed.
    ids = [before[i] if i < len(before) else 0 for i in lines] if before and len(table) == len(lines) else []
    chosen = [(m, unique) for m, unique in zip(table, ids or [0] * len(table)) if needle.keep(m)]
    found = [m for m, _ in chosen]
    if before and found:
        own = _own_unique_ids(found, [unique for _, unique in chosen]) if ids else None
        found = own if own is not None else _with_unique_ids(found, _proved(before, found))
    if with_propagate_from or b"propagate_from:" not in kept:
        return found
    return [_plain(m, False) for m in found]


def _unsound_raw(data: bytes, root: Optional[int]) -> bool:
    """Might ``data`` be a broken table (``_unsound``)? Decided on the two lines it must hold,
    found by their first field in the raw bytes; the whole table is parsed only when one is
    missing (a chroot, a stand-in file)."""
    _, file_mount = _source_mount()
    for mnt_id in (file_mount, root):
        key = b"%d " % mnt_id if mnt_id is not None else b""
        if key and not data.startswith(key) and b"\n" + key not in data:
            return True
    return False


def _own_unique_ids(table: List[Mount], ids: List[int]) -> Optional[List[Mount]]:
    """``table`` with the unique id listed before the read at each record's place (``ids``)
    and its parent's, each proved by that id's statmount naming the record's legacy ids;
    None when one is not (a mount came or went: the caller proves every id of the table).
    The proof: a mount listed before the read and attached after it was attached all along,
    and kept its legacy id (freed only at umount), so no other mount had that id meanwhile
    and the line with it shows this very mount."""
    out: List[Mount] = []
    for m, unique in zip(table, ids):
        tagged = _with_proved_id(m, unique)
        if tagged is None:
            return None
        out.append(tagged)
    return out


def still_mounted(m: Mount, where: Where = None) -> bool:
    """Is an entry with the same legacy id, parent, device, root, mount point, type, source
    and super options in the table? Legacy ids and anonymous device numbers are both reused
    at once: an identical re-mount at the same place is indistinguishable here (the
    statmount strategy, by unique id, has no such blind spot). A False answer needs a table
    that holds the mounts the kernel names (for "/", the file, and ``m``'s mount point)."""
    if where is not None:
        return _still_mounted_elsewhere(m, where)
    root = _root_id()
    error: Optional[MountprobeError] = None
    for _ in range(2):  # a mount attached at the mount point after the read: read again
        data = mi.read_mountinfo()
        found = mi.find_by_id(data, m.id)
        if found is not None and identity(found) == identity(m):
            return True
        error = _unsound(mi.parse_mountinfo(data), root, os.fsencode(m.mountpoint))
        if error is None:
            return False
    assert error is not None
    raise error


# -- another mount namespace (``where``), read through its mountinfo -----------------------


def holder_elsewhere(where: Target, fd: int, path: bytes, with_propagate_from: bool) -> Mount:
    """The entry of ``where``'s table for the mount holding the open ``fd``, by legacy id."""
    legacy = _calls.fd_mount_id(fd)
    for m in where.table():
        if m.id == legacy:
            return _plain(m, with_propagate_from)
    raise MountprobeError(f"{os.fsdecode(path)}: its mount is not in the namespace's table")


def _mount_root_elsewhere(where: Target, fd: int, path: bytes) -> bool:
    """Is the open ``fd`` a mount point in ``where``: its root, a mount root by statx, or
    (statx absent or blocked) the mount point of the entry holding it."""
    if where.is_root(fd):
        return True
    try:
        return bool(where.statx(fd, 0).attributes & kx.STATX_ATTR_MOUNT_ROOT)
    except OSError as exc:
        if exc.errno not in OFF:
            raise
    return os.fsencode(holder_elsewhere(where, fd, path, False).mountpoint) == where.name(fd)


def _is_mountpoint_elsewhere(path: bytes, follow: bool, where: Target) -> bool:
    fd = where.open(path, follow)
    try:
        return _mount_root_elsewhere(where, fd, path)
    finally:
        os.close(fd)


def _mount_of_elsewhere(path: bytes, follow: bool, with_propagate_from: bool, where: Target) -> Mount:
    fd = where.open(path, follow)
    try:
        return holder_elsewhere(where, fd, path, with_propagate_from)
    finally:
        os.close(fd)


def _mount_at_elsewhere(path: bytes, with_propagate_from: bool, where: Target) -> Optional[Mount]:
    fd = where.open(path)
    try:
        if not _mount_root_elsewhere(where, fd, path):
            return None
        return holder_elsewhere(where, fd, path, with_propagate_from)
    finally:
        os.close(fd)


def _mounts_under_elsewhere(path: bytes, include_self: bool, with_propagate_from: bool, where: Target) -> List[Mount]:
    fd = where.open(path)
    try:
        holder = holder_elsewhere(where, fd, path, with_propagate_from)
        at = where.name(fd)
    finally:
        os.close(fd)
    return reachable_below(_list_mounts_elsewhere(with_propagate_from, where), holder, at, include_self)


def _list_mounts_elsewhere(with_propagate_from: bool, where: Target) -> List[Mount]:
    table = where.table()
    return table if with_propagate_from else [m._replace(propagate_from=None) for m in table]


def _still_mounted_elsewhere(m: Mount, where: Target) -> bool:
    same = identity(m)
    return any(identity(t) == same for t in where.table())


def differs_from_parent(path: bytes, follow: bool, where: Where = None) -> bool:
    """In another namespace: is the device of the mount at ``path`` other than its parent
    mount's (or has it no parent there)? In the caller's, devcmp answers."""
    if where is None:
        raise Unsupported("mountinfo: devcmp compares the caller's own paths")
    fd = where.open(path, follow)
    try:
        m = holder_elsewhere(where, fd, path, False)
    finally:
        os.close(fd)
    parent = next((p for p in where.table() if p.id == m.parent_id and p.id != m.id), None)
    return parent is None or (parent.major, parent.minor) != (m.major, m.minor)
