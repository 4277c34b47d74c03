"""asyncio forms of the waits and the watcher: ``await aio.wait_for_mount(...)``,
``await aio.wait_for_unmount(...)`` and ``async for event in aio.watch(...)``.

The same kernel signals as the blocking ones (``mountprobe.events``), on the running event
loop: a wait registers one descriptor with ``loop.add_reader`` (an epoll set holding
``/proc/thread-self/mountinfo`` for ``POLLPRI``, which the kernel raises on every change
of the namespace; without ``/proc``, a ``Watcher``, whose fanotify group serves the same)
and asks its one question again each time it becomes readable. No thread, no sleep loop.
Cancelling the awaiting task removes the reader and closes the descriptors; so does a
timeout, and so does leaving ``async with aio.watch()``.

The mount namespace is that of the thread running the loop.
"""

from __future__ import annotations

import asyncio
import os
import select

from . import _paths
from . import events as _events
from .errors import MountprobeError, timed_out
from .events import waits as _waits
from .events.poll import open_mountinfo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, List, Optional, Tuple, Union

    from ._paths import PathArg
    from .events import Event, Watcher
    from .model import Mount

    _Check = Callable[[], Tuple[bool, Optional[Mount]]]

__all__ = ["AsyncWatcher", "wait_for_mount", "wait_for_unmount", "watch"]


class _Bell:
    """Descriptors that become readable on any mount change in this thread's namespace.
    asyncio's selectors wait for input only, and mountinfo is always readable for input:
    its ``POLLPRI`` is relayed by an epoll set, readable while the kernel has a change to
    report. Without ``/proc``: a Watcher, whose fanotify group serves the same (Linux 6.15,
    CAP_SYS_ADMIN over the namespace)."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._mountinfo: Optional[int] = None
        self._watcher: Optional[Watcher] = None
        try:
            self._mountinfo = open_mountinfo()
            if self._mountinfo is not None:
                self._epoll.register(self._mountinfo, select.EPOLLPRI)
            else:
                self._watcher = _events.watch(backend=_events.FANOTIFY)
        except BaseException:
            self.close()
            raise

    def fileno(self) -> int:
        return self._epoll.fileno() if self._watcher is None else self._watcher.fileno()

    def drain(self) -> None:
        """Take what woke the loop, so that the descriptor is quiet again."""
        if self._watcher is not None:
            self._watcher.read(0)
        else:
            self._epoll.poll(0)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        if self._mountinfo is not None:
            os.close(self._mountinfo)
            self._mountinfo = None
        self._epoll.close()


class _Reader:
    """``fd`` registered with the loop for as long as this lives, remembering that it was
    readable until ``wait`` is called. It stays registered between waits on purpose: each
    readiness check of the epoll set consumes the change that made it readable (the
    mountinfo file reports each change once), and registering (epoll_ctl ADD) checks once
    before the loop's own check, which would then find nothing and never wake."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self._loop = loop
        self._fd = fd
        self._rang = False
        self._waiter: Optional[asyncio.Future[None]] = None
        loop.add_reader(fd, self._ring)

    def _ring(self) -> None:
        self._rang = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, deadline: Optional[float]) -> None:
        """Return once ``fd`` was readable since the last wait, or at ``deadline`` (the loop's clock)."""
        if not self._rang:
            self._waiter = self._loop.create_future()
            timer = None if deadline is None else self._loop.call_at(deadline, self._ring)
            try:
                await self._waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        self._rang = False

    def close(self) -> None:
        self._loop.remove_reader(self._fd)


async def _wait(check: _Check, timeout: Optional[float], what: str) -> Optional[Mount]:
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    bell = _Bell()  # before the first check: a change after it rings
    try:
        reader = _Reader(loop, bell.fileno())
        try:
            while True:
                done, found = check()
                if done:
                    return found
                if deadline is not None and loop.time() >= deadline:
                    raise timed_out(what, timeout)
                await reader.wait(deadline)
                bell.drain()
        finally:
            reader.close()
    finally:
        bell.close()


async def wait_for_mount(
    path: PathArg, *, source: Optional[PathArg] = None, fstype: Optional[str] = None, timeout: Optional[float]
) -> Mount:
    """``mountprobe.wait_for_mount`` for asyncio: the same parameters and answer. Return the
    mount once one matching ``source`` and ``fstype`` (as ``is_mounted`` matches them) is
    visible at ``path``, which need not exist yet. ``TimeoutError`` after ``timeout``
    seconds (None: no limit); ``asyncio.wait_for`` and task cancellation work too."""

    check, what = _waits.mount_check(path, source, fstype)
    found = await _wait(check, timeout, what)
    if found is None:  # unmounted between the check and mount_at, as the blocking wait says
        raise MountprobeError(f"{os.fsdecode(_paths.to_bytes(path))}: mounted, then gone before it could be read")
    return found


async def wait_for_unmount(path_or_mount: Union[PathArg, Mount], *, timeout: Optional[float]) -> Optional[Mount]:
    """``mountprobe.wait_for_unmount`` for asyncio: the same parameters and answer. Given a
    ``Mount``: until that very mount is detached. Given a path: until nothing is mounted at
    it (None when nothing was at the call). ``TimeoutError`` after ``timeout`` seconds."""
    check, what = _waits.unmount_check(path_or_mount)
    return await _wait(check, timeout, what)


class AsyncWatcher:
    """``async for event in aio.watch(...)``: the events of a ``mountprobe.Watcher``, read
    when its descriptor is readable on the running loop. ``async with`` (or ``close()``)
    releases the descriptors; ``watcher`` is the blocking ``Watcher`` underneath (for
    ``backend``, ``why``, ``overflows`` and ``mounts()``)."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self._ready: List[Event] = []
        self._reader: Optional[_Reader] = None

    def _wake(self) -> _Reader:
        if self._reader is None:  # on the first wait: the loop that runs the watcher
            self._reader = _Reader(asyncio.get_running_loop(), self.watcher.fileno())
        return self._reader

    def __aiter__(self) -> AsyncWatcher:
        return self

    async def __anext__(self) -> Event:
        # The reader is registered before the first read, so that a change made between that
        # read and the wait rings it (registering after the read could consume it unseen).
        reader = self._wake()
        while not self._ready:
            self._ready = self.watcher.read(0)
            if not self._ready:
                await reader.wait(None)
        return self._ready.pop(0)

    async def read(self, timeout: Optional[float] = 0.0) -> List[Event]:
        """``Watcher.read`` without blocking the loop: the events ready now, or the first
        ones within ``timeout`` seconds (None: as long as it takes); [] when none came."""
        if self._ready:
            ready, self._ready = self._ready, []
            return ready
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        reader = self._wake()  # before the first read, as in __anext__
        while True:
            found = self.watcher.read(0)
            if found or (deadline is not None and loop.time() >= deadline):
                return found
            await reader.wait(deadline)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.watcher.close()

    async def __aenter__(self) -> AsyncWatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def watch(*, under: Optional[PathArg] = None, backend: Optional[str] = None) -> AsyncWatcher:
    """``mountprobe.watch`` for asyncio: the same parameters and events, iterated with
    ``async for``. The view is taken at the call, so every change after it is an event."""
    return AsyncWatcher(_events.watch(under=under, backend=backend))
