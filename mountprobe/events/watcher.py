"""Mount events: ``watch()`` and its ``Watcher``.

A ``Watcher`` keeps a view of the namespace's mounts (id -> Mount) and turns the kernel's
signals into ``Event(action, mount, old)`` records. Two backends, best first:

``fanotify`` (Linux 6.15, and CAP_SYS_ADMIN over the mount namespace): the kernel queues,
in order, one record per change naming the mount by its unique id: ``FAN_MNT_ATTACH`` (a
mount), ``FAN_MNT_DETACH`` (an umount), and both bits in one record for a move within the
namespace (fanotify(7); the kernel's ``selftests/filesystems/mount-notify``). The record
carries only the id: the mount is described (statmount) when the record is read, so it
shows the mount as it is then, not as it was when the record was queued. What is
reported, record by record:

- attach of a new id: ``mount``, with the mount as it is when read (so a mount attached and
  moved before its attach is read is reported at its new place); nothing for a mount that
  is gone by then: a mount attached and detached between two reads is never seen.
- attach+detach (a move) of a mount in the view: exactly one ``move``, ``old`` the mount as
  last seen, ``mount`` as it is now, even when that is the same place (moved away and back,
  or already seen at the new place). Where the mount was detached before the move could be
  read, ``mount`` is ``old`` (its new place was never seen) and its ``umount`` follows.
  A move out of this process's root is an ``umount``; one into it, a ``mount``.
- detach of a mount in the view: ``umount``, with the mount as last seen.

So every mount the watcher has described gives exactly one event per attach, move and
detach of it, none lost and none merged: a mount moved and then unmounted gives a move and
an umount, whatever the timing. fanotify has no remount record: remounts are found by
re-reading the watched mounts' options when mountinfo signals a change (``POLLPRI``), so
two quick remounts of one mount may show as one, and a remount before the mount was first
described is part of its first record. A queue overflow (16,384 records unread) forces a
full resync, counted in ``overflows``, which reports differences as the poll backend does.

``poll`` (any kernel with ``/proc``): ``POLLPRI`` on ``/proc/thread-self/mountinfo``, then a
fresh listing diffed against the last, as ``findmnt --poll`` does. Mounts are matched by
unique id where statmount gives one (6.8), else by legacy id together with device, root,
type and source: the kernel reuses legacy ids and device numbers at once, and a new mount
that agrees with the old one in all of these shows as a remount of it where the options
differ, and not at all where they do not. It reports differences between two listings: a
mount that comes and goes between them is not seen; a mount seen at another place is one
``move`` (however many moves there were); a mount seen with other options, one
``remount``; a mount seen both moved and remounted gives a ``move`` (to the new place, with
the old options) then a ``remount``. Its cost per wake-up is one listing of the namespace.

Neither sees propagation changes (``--make-shared``), which raise no kernel signal.
"""

from __future__ import annotations

import errno
import os
import select
import time
from collections import namedtuple

from .. import _paths
from .._seconds import LONGEST_WAIT, seconds
from ..errors import Unsupported
from ..kernel import fanotify as kf
from ..model import Mount

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Iterator, List, NamedTuple, Optional, Union

    from .._paths import PathArg

    class _EventFields(NamedTuple):
        action: str
        mount: Mount
        old: Optional[Mount]

else:
    _EventFields = namedtuple("Event", "action mount old", module=__name__)

MOUNT, UMOUNT, REMOUNT, MOVE = "mount", "umount", "remount", "move"
_GONE, _HIDDEN = "gone", "hidden"  # why a fanotify event's mount could not be described
ACTIONS = (MOUNT, UMOUNT, REMOUNT, MOVE)
FANOTIFY, POLL = "fanotify", "poll"


class Event(_EventFields):
    """One change: ``action`` is mount, umount, remount or move; ``mount`` is the mount as
    the watcher saw it after the change (for umount: as last seen); ``old`` is it before
    the change (None for mount; for umount the same record as ``mount``). The module docs
    say what each backend reports when changes come faster than they are read."""

    __slots__ = ()


def _key(m: Mount) -> int:
    """The view's key: the unique id where the listing has one for every mount (statmount),
    else the legacy id, which the kernel reuses (see ``_same_mount``)."""
    return m.unique_id if m.unique_id is not None else m.id


def _same_mount(a: Mount, b: Mount) -> bool:
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


def _options_changed(old: Mount, new: Mount) -> bool:
    return old.options != new.options or old.super_options != new.super_options


def _moved(old: Mount, new: Mount) -> List[Event]:
    """A move seen as ``old`` -> ``new``: the move (to ``new``'s place, with ``old``'s
    options), then a remount where the options changed too. Neither backend can tell which
    came first; the place is always reported first."""
    there = new._replace(options=old.options, super_options=old.super_options)
    return [Event(MOVE, there, old)] + ([Event(REMOUNT, new, there)] if there != new else [])


def _change(old: Optional[Mount], new: Mount) -> List[Event]:
    """The events between two records of one mount: mount, move, remount (both, for a
    mount moved and remounted between them), or none."""
    if old is None:
        return [Event(MOUNT, new, None)]
    if old.mountpoint != new.mountpoint or old.parent_id != new.parent_id:
        return _moved(old, new)
    if _options_changed(old, new):
        return [Event(REMOUNT, new, old)]
    return []


def _diff(old: Dict[int, Mount], new: List[Mount]) -> List[Event]:
    """The events that turn listing ``old`` into listing ``new`` (both keyed alike):
    umounts (children first), then moves and remounts, then mounts (parents first)."""
    now = {_key(m): m for m in new}
    gone = [m for k, m in old.items() if k not in now or not _same_mount(m, now[k])]
    events = [Event(UMOUNT, m, m) for m in reversed(gone)]
    changed = []
    for m in new:
        before = old.get(_key(m))
        changed += _change(before if before is not None and _same_mount(before, m) else None, m)
    events += [e for e in changed if e.action != MOUNT] + [e for e in changed if e.action == MOUNT]
    return events


def _mountinfo_fd() -> Optional[int]:
    for path in ("/proc/thread-self/mountinfo", "/proc/self/mountinfo"):
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
    return None


def _fanotify_group() -> int:
    """A non-blocking fanotify group that reports every attach and detach in this thread's
    mount namespace; Unsupported where the kernel or the sandbox refuses."""
    try:
        fd = kf.fanotify_init(kf.FAN_CLASS_NOTIF | kf.FAN_REPORT_MNT | kf.FAN_CLOEXEC | kf.FAN_NONBLOCK, os.O_RDONLY)
    except OSError as exc:  # EINVAL: < 6.15; ENOSYS: no CONFIG_FANOTIFY; EPERM: seccomp
        raise Unsupported(f"fanotify_init(FAN_REPORT_MNT): {errno.errorcode.get(exc.errno or 0, exc.errno)}") from None
    try:
        ns = os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        os.close(fd)
        raise Unsupported(f"no /proc/thread-self/ns/mnt to mark: {exc.strerror}") from None
    try:
        kf.fanotify_mark(fd, kf.FAN_MARK_ADD | kf.FAN_MARK_MNTNS, kf.FAN_MNT_ATTACH | kf.FAN_MNT_DETACH, ns)
    except OSError as exc:  # EPERM: no CAP_SYS_ADMIN over the namespace
        os.close(fd)
        raise Unsupported(f"fanotify_mark(FAN_MARK_MNTNS): {errno.errorcode.get(exc.errno or 0, exc.errno)}") from None
    finally:
        os.close(ns)
    return fd


class Watcher:
    """Mount events of this thread's mount namespace, from ``watch()``.

    Iterate it (blocks), or call ``read(timeout)`` for the events ready within ``timeout``
    seconds. ``fileno()`` becomes readable when events may be ready, for select/epoll or
    ``loop.add_reader(w.fileno(), ...)`` followed by ``w.read(0)``. ``mounts()`` is the view
    the events have built: after the events are read, it equals the namespace's table (of
    mounts at or below ``under``). Close it (or use ``with``) to release its descriptors."""

    def __init__(self, under: Optional[PathArg] = None, backend: Optional[str] = None) -> None:
        if backend not in (None, FANOTIFY, POLL):
            raise ValueError(f"backend must be {FANOTIFY!r}, {POLL!r} or None, not {backend!r}")
        self._under: Optional[bytes] = None
        if under is not None:
            from ..strategies import _resolve

            self._under = _resolve.canonical(_paths.to_bytes(under))
        self._fan: Optional[int] = None
        self._check: Optional[int] = None
        self._bell: Optional[int] = None
        self._epoll = select.epoll()
        self.why = ""  # why the poll backend was chosen, where it was
        self.overflows = 0  # fanotify queue overflows, each followed by a full resync
        try:
            self._open(backend)
        except BaseException:
            self.close()
            raise

    def _open(self, backend: Optional[str]) -> None:
        if backend != POLL:
            try:
                self._fan = self._fanotify()
            except Unsupported as exc:
                if backend == FANOTIFY:
                    raise
                self.why = str(exc)
        # Two opens of mountinfo: the doorbell in the epoll set (any poll of it, an event
        # loop's included, consumes its signal) and the one this watcher polls to know.
        self._check = _mountinfo_fd()
        self._bell = _mountinfo_fd()
        if self._fan is None and self._check is None:
            raise Unsupported(f"no mount events here: {self.why}; and no /proc/self/mountinfo to poll")
        if self._fan is not None:
            self._epoll.register(self._fan, select.EPOLLIN)
        if self._bell is not None:
            self._epoll.register(self._bell, select.EPOLLPRI)
        self.backend = FANOTIFY if self._fan is not None else POLL
        self._view: Dict[int, Mount] = {_key(m): m for m in self._listing()}

    def _fanotify(self) -> int:
        from ..probe import capabilities

        caps = capabilities()
        if not caps.statmount_records or not caps.listmount.usable:
            raise Unsupported(f"statmount cannot describe the mounts fanotify names: {caps.statmount.detail}")
        return _fanotify_group()

    # -- the view ------------------------------------------------------------------------

    def _listing(self) -> List[Mount]:
        """The whole table: by statmount where it gives whole records (unique ids in every
        record, never a torn read), else one mountinfo read keyed by legacy ids only (the
        unique ids it may carry come and go with races in the read)."""
        from ..strategies import statmount

        try:
            return statmount.every_mount()
        except Unsupported:
            if self._fan is not None:
                raise
        from .. import api

        return [m._replace(unique_id=None, parent_unique_id=None) for m in api.list_mounts()]

    def _describe(self, mnt_id: int) -> Union[Mount, str]:
        """The mount's record now, else why not: GONE (detached: its DETACH follows) or
        HIDDEN (attached outside this process's root, which no table here shows)."""
        from ..strategies import statmount

        try:
            return statmount.describe(mnt_id, False)
        except FileNotFoundError:
            return _GONE
        except (PermissionError, Unsupported):
            return _HIDDEN

    def _watched(self, event: Event) -> bool:
        return self._in_scope(event.mount) or (event.old is not None and self._in_scope(event.old))

    def mounts(self) -> List[Mount]:
        """The mounts as the events read so far describe them (at or below ``under``)."""
        return [m for m in self._view.values() if self._in_scope(m)]

    def _in_scope(self, m: Mount) -> bool:
        return self._under is None or _at_or_below(os.fsencode(m.mountpoint), self._under)

    def _resync(self) -> List[Event]:
        fresh = self._listing()
        events = _diff(self._view, fresh)
        self._view = {_key(m): m for m in fresh}
        return events

    def _from_fanotify(self, fd: int) -> List[Event]:
        """One event per attach, move and detach the kernel queued for a mount the watcher
        has described (see the module docs), in the kernel's order."""
        events: List[Event] = []
        while True:
            batch = kf.mount_events(fd)
            if not batch:
                return events
            for mask, mnt_id, _pid in batch:
                if mask & kf.FAN_Q_OVERFLOW or mnt_id is None:
                    self.overflows += 1
                    events += self._resync()  # events were lost: rebuild, never a silent gap
                    continue
                events += self._one(mask, mnt_id)

    def _one(self, mask: int, mnt_id: int) -> List[Event]:
        before = self._view.get(mnt_id)
        if not mask & kf.FAN_MNT_ATTACH:  # a detach
            if before is None:
                return []  # attached and detached before it could be described
            del self._view[mnt_id]
            return [Event(UMOUNT, before, before)]
        now = self._describe(mnt_id)
        if isinstance(now, str):
            if before is None:
                return []  # never seen, and gone (or out of sight) already
            if now == _HIDDEN:  # moved out of this root: it leaves the table as an umount
                del self._view[mnt_id]
                return [Event(UMOUNT, before, before)]
            # Moved, then detached before the move could be read (its DETACH follows): the
            # move is still reported, at the place last seen, which is all there is to know.
            return [Event(MOVE, before, before)] if mask & kf.FAN_MNT_DETACH else []
        self._view[mnt_id] = now
        if before is None or not mask & kf.FAN_MNT_DETACH:
            return _change(before, now)  # a mount (a resync may have seen it already)
        return _moved(before, now)  # even back at the same place: the kernel said it moved

    def _remounts(self) -> List[Event]:
        """fanotify says nothing of remounts: re-read the watched mounts for changed options.
        A changed place is left to the move event the kernel queues for it (a wake-up by
        mountinfo may come before that event is queued): one move, never two."""
        events: List[Event] = []
        for key, before in list(self._view.items()):
            if not self._in_scope(before):
                continue
            now = self._describe(key)
            if isinstance(now, str) or not _options_changed(before, now):
                continue  # detached or moved away: its DETACH or move event says so
            remounted = before._replace(options=now.options, super_options=now.super_options)
            self._view[key] = remounted
            events.append(Event(REMOUNT, remounted, before))
        return events

    # -- reading -------------------------------------------------------------------------

    def _collect(self) -> List[Event]:
        self._epoll.poll(0)  # take the doorbell's signal, so that the epoll set is quiet again
        changed = self._check is not None and bool(_poll_pri(self._check))
        events: List[Event] = []
        if self._fan is not None:
            events += self._from_fanotify(self._fan)
            if changed:
                events += self._remounts()
        elif changed:
            events += self._resync()
        return [e for e in events if self._watched(e)]

    def read(self, timeout: Optional[float] = 0.0) -> List[Event]:
        """The events ready now, or the first ones within ``timeout`` seconds (None: wait as
        long as it takes, as does inf); an empty list when the time passed without one.
        TypeError or ValueError for a timeout that is no number of seconds >= 0."""
        until = time.monotonic() + seconds(timeout, "Watcher.read")
        while True:
            events = self._collect()
            if events:
                return events
            left = until - time.monotonic()
            if left <= 0:
                return []
            self._epoll.poll(min(left, LONGEST_WAIT))

    def __iter__(self) -> Iterator[Event]:
        while True:
            yield from self.read(None)

    def fileno(self) -> int:
        """Readable when events may be ready: then ``read(0)``."""
        return self._epoll.fileno()

    def close(self) -> None:
        for fd in (self._fan, self._check, self._bell):
            if fd is not None:
                os.close(fd)
        self._fan = self._check = self._bell = None
        self._epoll.close()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_epoll", None) is not None and not self._epoll.closed:
            self.close()


def _at_or_below(path: bytes, top: bytes) -> bool:
    return path == top or _paths.is_below(path, top)


def _poll_pri(fd: int, timeout_ms: int = 0) -> list:  # type: ignore[type-arg]
    p = select.poll()
    p.register(fd, select.POLLPRI)
    return p.poll(timeout_ms)


def watch(*, under: Optional[PathArg] = None, backend: Optional[str] = None) -> Watcher:
    """Mount events of this thread's mount namespace: mounts at or below ``under`` (all
    without it), as ``Event(action, mount, old)``. ``backend`` forces "fanotify" or "poll"
    (the default takes fanotify where the kernel and privileges allow); the module docs say
    what each cannot see."""
    return Watcher(under, backend)
