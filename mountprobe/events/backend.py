"""What a backend of the ``Watcher`` is, and what every backend shares: the ``Event``
record and the events between two records of one mount or two listings.

A backend turns one kind of kernel signal into events, as libmount's ``monitor_fanotify.c``
and ``monitor_mountinfo.c`` do behind one ``struct monitor_opers``. The watcher owns the
view (``key(mount)`` -> Mount), the epoll set and the scope (``under``); a backend has

- ``name``: ``"fanotify"`` or ``"poll"``, the watcher's ``backend``;
- ``fds()``: the (descriptor, epoll events) pairs that become ready when it may have
  changes to report, for the watcher's epoll set;
- ``key(mount)``: the view's key of a record: ``key`` (the unique id) for fanotify, whose
  listings come from statmount; ``legacy_key`` for poll, whose mountinfo listings may lack
  the unique id of a mount attached during the read;
- ``listing()``: the whole table now;
- ``changes(view, in_scope)``: what the kernel reported since the last call, applied to
  ``view`` in place and returned as events in order; ``in_scope`` says which mounts the
  caller watches, so that a backend can skip work for the others (never report them
  differently);
- ``overflows``: how often records were lost, each time followed by a resync;
- ``close()``: releases its descriptors (again: nothing).
"""

from __future__ import annotations

from .._tuples import Record
from ..model import Mount

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional, Protocol, Tuple

    View = Dict[int, Mount]
    InScope = Callable[[Mount], bool]

    class Backend(Protocol):
        name: str
        overflows: int

        @staticmethod
        def key(m: Mount) -> int: ...
        def fds(self) -> List[Tuple[int, int]]: ...
        def listing(self) -> List[Mount]: ...
        def changes(self, view: View, in_scope: InScope) -> List[Event]: ...
        def close(self) -> None: ...


MOUNT, UMOUNT, REMOUNT, MOVE = "mount", "umount", "remount", "move"
ACTIONS = (MOUNT, UMOUNT, REMOUNT, MOVE)


class Event(Record):
    """One change: ``action`` is mount, umount, remount or move; ``mount`` is the mount as
    the watcher saw it after the change (for umount: as last seen); ``old`` is it before
    the change (None for mount; for umount the same record as ``mount``). The docs of
    ``mountprobe.events.fanotify`` and ``mountprobe.events.poll`` say what each backend
    reports when changes come faster than they are read."""

    action: str
    mount: Mount
    old: Optional[Mount]


def key(m: Mount) -> int:
    """The view's key: the unique id where the listing has one for every mount (statmount),
    else the legacy id, which the kernel reuses (see ``same_mount``)."""
    return m.unique_id if m.unique_id is not None else m.id


def legacy_key(m: Mount) -> int:
    """The key of a view of mountinfo listings: the legacy id, unique within one listing.
    Not the unique id, which a record lacks for a mount attached during the read (6.8 to
    6.14) and has in the next listing: keyed by it, that mount would leave and come back.
    ``same_mount`` still compares unique ids where both records carry one."""
    return m.id


def same_mount(a: Mount, b: Mount) -> bool:
    """Is ``b`` (with ``a``'s key) still the mount ``a`` was? Only in doubt for legacy ids:
    the kernel hands out the lowest free one again at once, as it does anonymous device
    numbers, so "umount tmpfs 'first', mount tmpfs 'second' at the same place" (issue 15)
    gives a new mount with the old one's id, device, root and type. Its source tells it
    apart, which no remount or move changes; a new mount that agrees in all of these shows
    as a remount where its options differ, and is not seen where they do not (a kernel
    before 6.8 gives nothing else that is the mount itself)."""
    if a.unique_id is not None and b.unique_id is not None:
        return a.unique_id == b.unique_id
    return (a.major, a.minor, a.root, a.fstype, a.source) == (b.major, b.minor, b.root, b.fstype, b.source)


def options_changed(old: Mount, new: Mount) -> bool:
    return old.options != new.options or old.super_options != new.super_options


def moved(old: Mount, new: Mount) -> List[Event]:
    """A move seen as ``old`` -> ``new``: the move (to ``new``'s place, with ``old``'s
    options), then a remount where the options changed too. Neither backend can tell which
    came first; the place is always reported first."""
    there = new._replace(options=old.options, super_options=old.super_options)
    return [Event(MOVE, there, old)] + ([Event(REMOUNT, new, there)] if there != new else [])


def change(old: Optional[Mount], new: Mount) -> List[Event]:
    """The events between two records of one mount: mount, move, remount (both, for a
    mount moved and remounted between them), or none."""
    if old is None:
        return [Event(MOUNT, new, None)]
    if old.mountpoint != new.mountpoint or old.parent_id != new.parent_id:
        return moved(old, new)
    if options_changed(old, new):
        return [Event(REMOUNT, new, old)]
    return []


def diff(old: View, new: List[Mount], key: Callable[[Mount], int] = key) -> List[Event]:
    """The events that turn listing ``old`` into listing ``new`` (both keyed alike):
    umounts (children first), then moves and remounts, then mounts (parents first)."""
    now = {key(m): m for m in new}
    gone = [m for k, m in old.items() if k not in now or not same_mount(m, now[k])]
    events = [Event(UMOUNT, m, m) for m in reversed(gone)]
    changed = []
    for m in new:
        before = old.get(key(m))
        changed += change(before if before is not None and same_mount(before, m) else None, m)
    events += [e for e in changed if e.action != MOUNT] + [e for e in changed if e.action == MOUNT]
    return events


def resync(view: View, fresh: List[Mount], key: Callable[[Mount], int] = key) -> List[Event]:
    """Make ``view`` (keyed by ``key``) the listing ``fresh``; the differences, as events."""
    events = diff(view, fresh, key)
    view.clear()
    view.update((key(m), m) for m in fresh)
    return events
