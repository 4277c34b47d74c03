"""Mount events: ``watch()`` and its ``Watcher``.

A ``Watcher`` keeps a view of the namespace's mounts (id -> Mount), turns what its backend
reads from the kernel into ``Event(action, mount, old)`` records and keeps those of the
mounts at or below ``under``. Two backends (``backend`` says what one does), best first:
``fanotify`` (``events/fanotify.py``: mount marks, Linux 6.15 and CAP_SYS_ADMIN over the
namespace; one record per attach, move and detach) and ``poll`` (``events/poll.py``: any
kernel with ``/proc``; mountinfo's ``POLLPRI``, then a listing diffed against the last).
Their docs say what each reports when changes come faster than they are read.

Neither sees propagation changes (``--make-shared``), which raise no kernel signal.
"""

from __future__ import annotations

import os
import select
import time

from .. import _paths
from .._seconds import LONGEST_WAIT, seconds
from ..errors import Unsupported
from ..strategies._resolve import canonical
from .fanotify import FanotifyBackend
from .poll import PollBackend

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Iterator, List, Optional

    from .._paths import PathArg
    from ..model import Mount
    from .backend import Backend, Event

FANOTIFY, POLL = FanotifyBackend.name, PollBackend.name


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
            self._under = canonical(_paths.to_bytes(under))
        self._epoll = select.epoll()
        self.why = ""  # why the poll backend was chosen, where it was
        try:
            self._backend: Backend = self._choose(backend)
            for fd, mask in self._backend.fds():
                self._epoll.register(fd, mask)
            self.backend = self._backend.name
            self._view: Dict[int, Mount] = {self._backend.key(m): m for m in self._backend.listing()}
        except BaseException:
            self.close()
            raise

    def _choose(self, backend: Optional[str]) -> Backend:
        if backend != POLL:
            try:
                return FanotifyBackend()
            except Unsupported as exc:
                if backend == FANOTIFY:
                    raise
                self.why = str(exc)
        try:
            return PollBackend()
        except Unsupported as exc:
            raise Unsupported(f"no mount events here: {self.why}; and {exc}") from None

    @property
    def overflows(self) -> int:
        """fanotify queue overflows, each followed by a full resync."""
        return self._backend.overflows

    # -- the view ------------------------------------------------------------------------

    def mounts(self) -> List[Mount]:
        """The mounts as the events read so far describe them (at or below ``under``)."""
        return [m for m in self._view.values() if self._in_scope(m)]

    def _in_scope(self, m: Mount) -> bool:
        return self._under is None or _at_or_below(os.fsencode(m.mountpoint), self._under)

    def _watched(self, event: Event) -> bool:
        return self._in_scope(event.mount) or (event.old is not None and self._in_scope(event.old))

    # -- reading -------------------------------------------------------------------------

    def _collect(self) -> List[Event]:
        self._epoll.poll(0)  # take the doorbell's signal, so that the epoll set is quiet again
        return [e for e in self._backend.changes(self._view, self._in_scope) if self._watched(e)]

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
        backend: Optional[Backend] = getattr(self, "_backend", None)  # None: __init__ failed before
        if backend is not None:
            backend.close()
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


def watch(*, under: Optional[PathArg] = None, backend: Optional[str] = None) -> Watcher:
    """Mount events of this thread's mount namespace: mounts at or below ``under`` (all
    without it), as ``Event(action, mount, old)``. ``backend`` forces "fanotify" or "poll"
    (the default takes fanotify where the kernel and privileges allow); the docs of
    ``mountprobe.events.fanotify`` and ``mountprobe.events.poll`` say what each cannot see."""
    return Watcher(under, backend)
