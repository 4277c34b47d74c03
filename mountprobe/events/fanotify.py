"""The ``fanotify`` backend: mount marks (Linux 6.15, and CAP_SYS_ADMIN over the namespace).

The kernel queues, in order, one record per change naming the mount by its unique id:
``FAN_MNT_ATTACH`` (a mount), ``FAN_MNT_DETACH`` (an umount), and both bits in one record
for a move within the namespace (fanotify(7); the kernel's
``selftests/filesystems/mount-notify``). The record carries only the id: the mount is
described (statmount) when the record is read, so it shows the mount as it is then, not as
it was when the record was queued. What is reported, record by record:

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
re-reading the watched mounts' options when mountinfo signals a change (``POLLPRI``, the
poll backend's signal), so two quick remounts of one mount may show as one, and a remount
before the mount was first described is part of its first record. A queue overflow
(16,384 records unread) forces a full resync, counted in ``overflows``, which reports
differences as the poll backend does.
"""

from __future__ import annotations

import errno
import os
import select

from ..errors import OutsideRoot, Unsupported
from ..kernel import fanotify as kf
from ..probe import capabilities
from ..strategies.statmount import describe, every_mount
from .backend import MOVE, REMOUNT, UMOUNT, Event, change, moved, options_changed, resync
from .backend import key as unique_key
from .poll import MountinfoSignal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Tuple, Union

    from ..model import Mount
    from .backend import InScope, View

NAME = "fanotify"
_GONE, _HIDDEN = "gone", "hidden"  # why a record's mount could not be described


def group() -> int:
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


def _describe(mnt_id: int) -> Union[Mount, str]:
    """The mount's record now, else why not: GONE (detached: its DETACH follows) or
    HIDDEN (attached outside this process's root, which no table here shows)."""
    try:
        return describe(mnt_id, False)
    except FileNotFoundError:
        return _GONE
    except (PermissionError, OutsideRoot, Unsupported):
        return _HIDDEN


class FanotifyBackend:
    """The records of a fanotify group marked on this thread's mount namespace, and the
    remounts that mountinfo's signal finds (where there is a mountinfo to open)."""

    name = NAME

    @staticmethod
    def key(m: Mount) -> int:
        return unique_key(m)  # every record of a statmount listing has its unique id

    def __init__(self) -> None:
        caps = capabilities()
        if not caps.statmount_records or not caps.listmount.usable:
            raise Unsupported(f"statmount cannot describe the mounts fanotify names: {caps.statmount.detail}")
        self._fd: Optional[int] = group()
        self._mountinfo = MountinfoSignal.open()  # None: no remounts are reported
        self.overflows = 0

    def fds(self) -> List[Tuple[int, int]]:
        assert self._fd is not None
        return [(self._fd, select.EPOLLIN)] + (self._mountinfo.fds() if self._mountinfo is not None else [])

    def listing(self) -> List[Mount]:
        """The whole table by statmount: the records name mounts by unique id, which only
        statmount gives for every mount (mountinfo's may come and go with races in the read)."""
        return every_mount()

    def changes(self, view: View, in_scope: InScope) -> List[Event]:
        remounted = self._mountinfo is not None and self._mountinfo.rang()
        events = self._records(view)
        if remounted:
            events += self._remounts(view, in_scope)
        return events

    def _records(self, view: View) -> List[Event]:
        """One event per attach, move and detach the kernel queued for a mount the watcher
        has described (see the module docs), in the kernel's order."""
        assert self._fd is not None
        events: List[Event] = []
        while True:
            batch = kf.mount_events(self._fd)
            if not batch:
                return events
            for mask, mnt_id, _pid in batch:
                if mask & kf.FAN_Q_OVERFLOW or mnt_id is None:
                    self.overflows += 1
                    events += resync(view, self.listing())  # events were lost: rebuild, never a silent gap
                    continue
                events += _one(view, mask, mnt_id)

    def _remounts(self, view: View, in_scope: InScope) -> List[Event]:
        """fanotify says nothing of remounts: re-read the watched mounts for changed options.
        A changed place is left to the move event the kernel queues for it (a wake-up by
        mountinfo may come before that event is queued): one move, never two."""
        events: List[Event] = []
        for key, before in list(view.items()):
            if not in_scope(before):
                continue
            now = _describe(key)
            if isinstance(now, str) or not options_changed(before, now):
                continue  # detached or moved away: its DETACH or move event says so
            remounted = before._replace(options=now.options, super_options=now.super_options)
            view[key] = remounted
            events.append(Event(REMOUNT, remounted, before))
        return events

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._mountinfo is not None:
            self._mountinfo.close()


def _one(view: View, mask: int, mnt_id: int) -> List[Event]:
    """The events of one record, applied to ``view``."""
    before = view.get(mnt_id)
    if not mask & kf.FAN_MNT_ATTACH:  # a detach
        if before is None:
            return []  # attached and detached before it could be described
        del view[mnt_id]
        return [Event(UMOUNT, before, before)]
    now = _describe(mnt_id)
    if isinstance(now, str):
        if before is None:
            return []  # never seen, and gone (or out of sight) already
        if now == _HIDDEN:  # moved out of this root: it leaves the table as an umount
            del view[mnt_id]
            return [Event(UMOUNT, before, before)]
        # Moved, then detached before the move could be read (its DETACH follows): the
        # move is still reported, at the place last seen, which is all there is to know.
        return [Event(MOVE, before, before)] if mask & kf.FAN_MNT_DETACH else []
    view[mnt_id] = now
    if before is None or not mask & kf.FAN_MNT_DETACH:
        return change(before, now)  # a mount (a resync may have seen it already)
    return moved(before, now)  # even back at the same place: the kernel said it moved
