"""The ``poll`` backend (any kernel with ``/proc``), and mountinfo's change signal.

``POLLPRI`` on ``/proc/thread-self/mountinfo`` (raised on every change of the namespace's
table: ``mounts_poll()`` in the kernel's ``fs/proc_namespace.c``), then a fresh listing
diffed against the last, as ``findmnt --poll`` does. Mounts are matched by unique id where
statmount gives one (6.8), else by legacy id together with device, root, type and source:
the kernel reuses legacy ids and device numbers at once, and a new mount that agrees with
the old one in all of these shows as a remount of it where the options differ, and not at
all where they do not. It reports differences between two listings: a mount that comes and
goes between them is not seen; a mount seen at another place is one ``move`` (however many
moves there were); a mount seen with other options, one ``remount``; a mount seen both
moved and remounted gives a ``move`` (to the new place, with the old options) then a
``remount``. Its cost per wake-up is one listing of the namespace.
"""

from __future__ import annotations

import os
import select

from .._procfs import mountinfo_paths
from ..errors import Unsupported
from ..strategies.statmount import every_mount
from .backend import legacy_key, resync, same_mount

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

    from ..model import Mount
    from .backend import Event, InScope, View

NAME = "poll"


def _as_seen(old: Optional[Mount], new: Mount) -> Mount:
    """``new`` in the form the watcher first saw ``old``, the same mount, in: with or without
    unique ids. A mountinfo read proves no id for a mount that went during it (6.8 to 6.14),
    nor for one attached during it that cannot be paired after (``listing``). Each mount
    keeps one key and one form in the events, from its mount to its umount."""
    if old is None or (old.unique_id is None) == (new.unique_id is None) or not same_mount(old, new):
        return new
    if old.unique_id is None:
        return new._replace(unique_id=None, parent_unique_id=None)
    parent = old.parent_unique_id if old.parent_id == new.parent_id else None
    return new._replace(unique_id=old.unique_id, parent_unique_id=parent)


def open_mountinfo() -> Optional[int]:
    """This thread's mountinfo, open for its ``POLLPRI`` (the files ``read_mountinfo``
    tries, in its order); None where there is none."""
    for path in mountinfo_paths():
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
    return None


def poll_pri(fd: int, timeout_ms: int = 0) -> List[Tuple[int, int]]:
    """Wait up to ``timeout_ms`` for ``POLLPRI`` on ``fd``; each poll of mountinfo that
    reports a change consumes it."""
    p = select.poll()
    p.register(fd, select.POLLPRI)
    return p.poll(timeout_ms)


class MountinfoSignal:
    """Has the namespace's table changed since the last ``rang()``? Two opens of mountinfo:
    the doorbell in the watcher's epoll set (any poll of it, an event loop's included,
    consumes its signal) and the one polled here to know."""

    def __init__(self, check: int, bell: int) -> None:
        self._check: Optional[int] = check
        self._bell: Optional[int] = bell

    @classmethod
    def open(cls) -> Optional[MountinfoSignal]:
        """The signal; None where no mountinfo can be opened (no ``/proc``)."""
        check = open_mountinfo()
        if check is None:
            return None
        bell = open_mountinfo()
        if bell is None:
            os.close(check)
            return None
        return cls(check, bell)

    def fds(self) -> List[Tuple[int, int]]:
        return [] if self._bell is None else [(self._bell, select.EPOLLPRI)]

    def rang(self) -> bool:
        return self._check is not None and bool(poll_pri(self._check))

    def close(self) -> None:
        for fd in (self._check, self._bell):
            if fd is not None:
                os.close(fd)
        self._check = self._bell = None


class PollBackend:
    """Each signal of mountinfo: a fresh listing, diffed against the view."""

    name = NAME

    @staticmethod
    def key(m: Mount) -> int:
        return legacy_key(m)

    def __init__(self) -> None:
        signal = MountinfoSignal.open()
        if signal is None:
            raise Unsupported("no /proc/self/mountinfo to poll")
        self._mountinfo = signal
        self.overflows = 0  # no queue to overflow: each listing is whole

    def fds(self) -> List[Tuple[int, int]]:
        return self._mountinfo.fds()

    def listing(self) -> List[Mount]:
        """The whole table: by statmount where it gives whole records (unique ids in every
        record, never a torn read), else one mountinfo read, whose records carry the unique
        ids ``list_mounts`` proves (6.8), as every other record does."""
        try:
            return every_mount()
        except Unsupported:
            pass
        from .. import api  # only here: the watch command on statmount needs no chain

        for _ in range(10):
            table = api.list_mounts()
            # mountinfo is no snapshot: a mount moved and unmounted during the read, and a new
            # one given its freed legacy id, are listed twice under one id. Such a torn
            # listing would diff into events that never happened: read again.
            if len({m.id for m in table}) == len(table):
                break
        # A record without its own unique id carries none of its parent's either: one form.
        return [
            m if m.unique_id is not None or m.parent_unique_id is None else m._replace(parent_unique_id=None)
            for m in table
        ]

    def changes(self, view: View, in_scope: InScope) -> List[Event]:
        if not self._mountinfo.rang():
            return []
        return resync(view, [_as_seen(view.get(m.id), m) for m in self.listing()], legacy_key)

    def close(self) -> None:
        self._mountinfo.close()
