"""The last resort: a filtered read of ``/proc/thread-self/mountinfo``.

For kernels without statx MOUNT_ROOT (< 5.8) or statmount (< 6.8), and sandboxes whose
seccomp profile blocks them. Paths are canonicalised first, because the table holds only
resolved paths (moby/sys PR #14); the filter runs while the text is parsed.
"""

from __future__ import annotations

import errno
import os

from .. import mountinfo as mi
from ..errors import MountprobeError, Unsupported
from ..kernel import fhandle
from ..kernel import mount as km
from ..kernel import statx as kx
from ..model import Mount, parents_first
from ..probe import capabilities
from . import _calls, _resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional


def _plain(m: Mount, with_propagate_from: bool) -> Mount:
    # propagate_from is filled only on request, whatever the source, so that a record
    # never depends on which strategy built it.
    return m if with_propagate_from or m.propagate_from is None else m._replace(propagate_from=None)


def _legacy_id(path: bytes, follow: bool) -> Optional[int]:
    """The legacy id of the mount holding ``path``: from statx or name_to_handle_at where
    allowed, else from the ``mnt_id`` line of /proc/self/fdinfo (3.15) for an O_PATH fd.
    A mount point string is not enough: a mount covered by a later one over its parent
    keeps its line, while its path now leads to a plain directory."""
    caps = capabilities()
    if caps.statx_mnt_id:
        try:
            st = _calls.statx(path, follow, 0)  # the legacy id comes with any mask
        except Unsupported:
            pass
        else:
            if st.mask & kx.STATX_MNT_ID:
                return st.mnt_id
    if caps.name_to_handle_at.usable:
        flags = (fhandle.AT_HANDLE_FID if caps.handle_fid else 0) | (fhandle.AT_SYMLINK_FOLLOW if follow else 0)
        try:
            return fhandle.name_to_handle_at(kx.AT_FDCWD, path, flags, 0).mount_id
        except OSError as exc:
            if exc.errno not in _calls.OFF + (errno.EOPNOTSUPP,):
                raise
    return _fdinfo_id(path, follow)


def _fdinfo_id(path: bytes, follow: bool) -> Optional[int]:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
    except OSError as exc:
        raise _calls.with_path(exc, path) from None
    try:
        return _calls.fdinfo_mount_id(fd)
    finally:
        os.close(fd)


def _visible_at(where: bytes, follow: bool) -> Optional[Mount]:
    """The mount whose root the canonical ``where`` is, or None: the mount holding it, when
    its mount point is ``where``; else the topmost line at ``where`` (no id to be had)."""
    data = mi.read_mountinfo()
    mnt_id = _legacy_id(where, follow)
    if mnt_id is None:
        return mi.topmost(mi.find_at(data, where))
    holder = mi.find_by_id(data, mnt_id)
    if holder is None:  # attached after the read: read again
        holder = mi.find_by_id(mi.read_mountinfo(), mnt_id)
    return holder if holder is not None and os.fsencode(holder.mountpoint) == where else None


def is_mountpoint(path: bytes, follow: bool) -> bool:
    """True when the canonical ``path`` is the root of the mount that holds it (or is ``/``)."""
    where = _resolve.resolved(path, follow)
    if where == b"/":
        return True
    return _visible_at(where, False) is not None


def mount_of(path: bytes, follow: bool, with_propagate_from: bool) -> Mount:
    """The visible mount that contains ``path``: by its mount id where a syscall or fdinfo
    gives one, else the topmost entry at the longest mount point above the canonical path."""
    mnt_id = _legacy_id(path, follow)
    if mnt_id is None:
        where = _resolve.canonical(path, follow)
        found = mi.longest_prefix(mi.read_mountinfo(), where)
    else:
        found = mi.find_by_id(mi.read_mountinfo(), mnt_id)
    if found is None:
        raise MountprobeError(f"{os.fsdecode(path)}: its mount is not in this process's mountinfo")
    return _plain(found, with_propagate_from)


def mount_at(path: bytes, with_propagate_from: bool) -> Optional[Mount]:
    """The visible mount whose mount point is the canonical ``path``, or None."""
    found = _visible_at(_resolve.canonical(path), True)
    return None if found is None else _plain(found, with_propagate_from)


def mounts_under(path: bytes, include_self: bool, with_propagate_from: bool) -> List[Mount]:
    """The mounts reachable below ``path``, as listmount gives them: the tree below the
    bottom of the stack holding ``path``, filtered by mount point component-wise (``/a`` is
    not below ``/ab``). Not a bare prefix filter: a mount hidden under the mount holding
    ``path`` (attached to the mount beneath before it was covered) is not reachable."""
    where = _resolve.canonical(path)
    mnt_id = _legacy_id(where, True)
    data = mi.read_mountinfo()
    table = mi.parse_mountinfo(data)
    by_id = {m.id: m for m in table}
    holder = by_id.get(mnt_id) if mnt_id is not None else None
    holder = holder or mi.longest_prefix(data, where)
    if holder is None:
        raise MountprobeError(f"{os.fsdecode(path)}: its mount is not in this process's mountinfo")
    return [_plain(m, with_propagate_from) for m in reachable_below(table, holder, where, include_self)]


def reachable_below(table: List[Mount], holder: Mount, where: bytes, include_self: bool) -> List[Mount]:
    """The mounts of ``table`` reachable below the canonical ``where``, held by ``holder``:
    the tree under the bottom of the stack at ``holder``'s mount point, filtered by mount
    point component-wise, parents first."""
    by_id = {m.id: m for m in table}
    bottom = holder
    while bottom.parent_id in by_id and bottom.parent_id != bottom.id:
        below = by_id[bottom.parent_id]
        if below.mountpoint != holder.mountpoint:
            break
        bottom = below
    reachable = {bottom.id}
    grown = True  # one pass adds parents before children; a moved mount may need another
    while grown:
        before = len(reachable)
        reachable.update(m.id for m in table if m.parent_id in reachable)
        grown = len(reachable) != before
    text = os.fsdecode(where)
    prefix = text if text.endswith("/") else text + "/"
    found = [
        m
        for m in table
        if m.id in reachable and (include_self if m.mountpoint == text else m.mountpoint.startswith(prefix))
    ]
    return parents_first(found)


def _all_ids() -> Optional[List[int]]:
    caps = capabilities()
    if not (caps.listmount.usable and caps.statmount.usable):
        return None
    try:
        return km.listmount_all(km.LSMT_ROOT)
    except OSError:
        return None


def _unique_ids_hold(table: List[Mount], ids: List[int]) -> bool:
    """Do the ids given by position belong to these lines? Same count, and the first,
    middle and last agree with statmount on their legacy ids."""
    if len(ids) != len(table):
        return False
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
    (a moved mount) or outside the table (the hidden rootfs above "/")."""
    for i in [i for i, m in enumerate(table) if m.parent_unique_id is None and m.unique_id is not None]:
        try:
            parent = km.statmount(table[i].unique_id or 0, km.STATMOUNT_MNT_BASIC).mnt_parent_id
        except OSError:
            continue
        table[i] = table[i]._replace(parent_unique_id=parent)
    return table


def list_mounts(with_propagate_from: bool) -> List[Mount]:
    """The whole table from one read. Unique ids come from listmount where that is provably
    right: since Linux 6.8 listmount and mountinfo both walk the namespace in unique-id order
    (commit 2eea9ce4310d), so the n-th line is the n-th id. A mount attached during the read
    has a higher id than all, so it shows at the end and fails the check of the last line;
    one detached changes the count. Otherwise the ids stay None."""
    ids = _all_ids()
    data = mi.read_mountinfo()
    if ids is None:
        table = mi.parse_mountinfo(data)
    else:
        table = mi.parse_with_unique_ids(data, ids)
        if _unique_ids_hold(table, ids):
            table = _fill_parents(table)
        else:
            table = [m._replace(unique_id=None, parent_unique_id=None) for m in table]
    if with_propagate_from or b"propagate_from:" not in data:
        return table
    return [_plain(m, False) for m in table]


def still_mounted(m: Mount) -> bool:
    """Is an entry with the same legacy id, parent, device, root, mount point, type, source
    and super options in the table? Legacy ids and anonymous device numbers are both reused
    at once: an identical re-mount at the same place is indistinguishable here (the
    statmount strategy, by unique id, has no such blind spot)."""
    found = mi.find_by_id(mi.read_mountinfo(), m.id)
    return found is not None and _identity(found) == _identity(m)


def _identity(m: Mount) -> tuple:  # type: ignore[type-arg]
    return (m.parent_id, m.major, m.minor, m.root, m.mountpoint, m.fstype, m.source, m.super_options)
