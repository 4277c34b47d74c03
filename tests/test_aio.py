"""mountprobe.aio on a real event loop (asyncio.run) and real mounts in private namespaces:
mounts and umounts made by another process or thread while a task awaits, cancellation,
timeouts, and the descriptors each wait leaves behind (none)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any, Awaitable, Callable, List, Optional, TypeVar

import pytest
from _ns import MNT_DETACH, forked, isolated, tmpfs, umount
from _oracle import by_id, fdinfo_mount_id

import mountprobe
from mountprobe import aio
from mountprobe.errors import Unsupported

T = TypeVar("T")
GUARD = 60.0  # seconds: only to turn a hang into a failure


def open_fds() -> List[str]:
    return sorted(os.listdir("/proc/self/fd"))


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


class Remote:
    """A child process in this mount namespace that runs ``action`` when told to."""

    def __init__(self, action: Callable[[], Any]) -> None:
        self._go, go = os.pipe()

        def work() -> None:
            os.close(go)
            os.read(self._go, 1)
            action()

        self.pid = forked(work)
        os.close(self._go)
        self._write = go

    def go(self) -> None:
        os.write(self._write, b"x")
        os.close(self._write)

    def join(self) -> None:
        _, status = os.waitpid(self.pid, 0)
        assert status == 0


async def started(coroutine: Awaitable[T]) -> asyncio.Future[T]:
    """``coroutine`` as a task that has run up to its first wait for the kernel."""
    task = asyncio.ensure_future(coroutine)
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done(), task
    return task


@isolated
def test_wait_for_mount_returns_the_mount_another_process_makes_while_it_awaits(tmp_path: Path) -> None:
    target = tmp_path / "later" / "data"  # need not exist yet

    def make() -> None:
        target.mkdir(parents=True)
        tmpfs(target, "from-child")

    remote = Remote(make)

    async def main() -> mountprobe.Mount:
        task = await started(aio.wait_for_mount(target, source="from-child", fstype="tmpfs", timeout=None))
        assert threads() == 1  # no thread per wait
        remote.go()
        return await asyncio.wait_for(task, GUARD)

    m = asyncio.run(main())
    remote.join()
    assert m == mountprobe.mount_at(target)
    assert m.id == fdinfo_mount_id(target) and by_id()[m.id].source == "from-child"


@isolated
def test_wait_for_mount_is_woken_by_a_mount_from_another_thread_and_ignores_other_mounts(tmp_path: Path) -> None:
    target, other = tmp_path / "t", tmp_path / "other"
    target.mkdir()
    other.mkdir()
    go = threading.Event()

    def make() -> None:
        go.wait()
        tmpfs(other, "unrelated")  # wakes the wait, which asks again and keeps waiting
        tmpfs(target, "wrong-source")
        tmpfs(target, "right")

    helper = threading.Thread(target=make)
    helper.start()

    async def main() -> mountprobe.Mount:
        task = await started(aio.wait_for_mount(str(target), source="right", timeout=GUARD))
        go.set()
        return await task

    m = asyncio.run(main())
    helper.join()
    assert (m.source, m.mountpoint, m.id) == ("right", str(target), fdinfo_mount_id(target))


@isolated
def test_wait_for_mount_of_a_mount_already_there_returns_at_once(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    tmpfs(tmp_path / "m", "here")
    m = asyncio.run(aio.wait_for_mount(tmp_path / "m", timeout=0))
    assert m == mountprobe.mount_at(tmp_path / "m")


@isolated
def test_wait_for_unmount_of_a_mount_and_of_a_path_returns_when_another_process_unmounts(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        tmpfs(d, d.name)
    tmpfs(b, "b-upper")  # a path waits until nothing at all is mounted there
    ma = mountprobe.mount_at(a)
    assert ma is not None

    def unmount() -> None:
        umount(a, MNT_DETACH)
        umount(b)
        umount(b)

    remote = Remote(unmount)

    async def main() -> List[Optional[mountprobe.Mount]]:
        by_mount = await started(aio.wait_for_unmount(ma, timeout=None))
        by_path = await started(aio.wait_for_unmount(os.fsencode(b), timeout=None))
        remote.go()
        return [await asyncio.wait_for(by_mount, GUARD), await asyncio.wait_for(by_path, GUARD)]

    gone_a, gone_b = asyncio.run(main())
    remote.join()
    assert gone_a == ma and not mountprobe.still_mounted(ma)
    assert gone_b is not None and gone_b.source in ("b", "b-upper")  # as last seen: either
    assert mountprobe.mount_at(b) is None
    assert asyncio.run(aio.wait_for_unmount(b, timeout=0)) is None  # nothing there at the call


@isolated
def test_cancelling_a_wait_removes_its_reader_and_closes_its_descriptors(tmp_path: Path) -> None:
    before = open_fds()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        registered = len(loop._selector.get_map())  # type: ignore[attr-defined]
        tasks: List[asyncio.Future[Any]] = [
            await started(aio.wait_for_mount(tmp_path / "never", timeout=None)),
            await started(aio.wait_for_unmount(tmp_path, timeout=None)),
        ]
        assert len(open_fds()) > len(before)
        assert len(loop._selector.get_map()) == registered + 2  # type: ignore[attr-defined]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with pytest.raises(asyncio.CancelledError):
                await task
        assert len(loop._selector.get_map()) == registered  # type: ignore[attr-defined]

    asyncio.run(main())
    assert open_fds() == before


@isolated
def test_timeout_raises_timeout_error_and_leaves_no_descriptor(tmp_path: Path) -> None:
    before = open_fds()
    with pytest.raises(TimeoutError) as raised:
        asyncio.run(aio.wait_for_mount(tmp_path / "never", timeout=0.05))
    assert "not within 0.05 s" in str(raised.value)
    with pytest.raises(TimeoutError):
        asyncio.run(aio.wait_for_unmount(tmp_path, timeout=0.05))

    async def outer() -> None:  # asyncio.wait_for cancels the wait: the same clean-up
        await asyncio.wait_for(aio.wait_for_mount(tmp_path / "never", timeout=None), 0.05)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(outer())
    assert open_fds() == before


@isolated
def test_wait_for_mount_reports_errors_as_the_blocking_wait_does(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        asyncio.run(aio.wait_for_unmount(tmp_path / "missing", timeout=0))
    with pytest.raises(ValueError):
        asyncio.run(aio.wait_for_mount("", timeout=0))


@pytest.mark.parametrize("backend", ["poll", "fanotify"])
@isolated
def test_async_for_yields_the_events_of_mounts_another_process_makes(tmp_path: Path, backend: str) -> None:
    watched, outside = tmp_path / "w", tmp_path / "outside"
    watched.mkdir()
    outside.mkdir()
    (watched / "x").mkdir()
    before = open_fds()
    try:
        events = aio.watch(under=watched, backend=backend)
    except Unsupported as exc:
        pytest.skip(f"no {backend} backend here: {exc}")

    def churn() -> None:
        tmpfs(outside, "not-watched")
        tmpfs(watched / "x", "seen")

    remote = Remote(churn)

    async def main() -> List[mountprobe.events.Event]:
        got: List[mountprobe.events.Event] = []
        async with events:
            assert events.watcher.backend == backend
            remote.go()
            async for event in events:
                got.append(event)
                if event.action == "mount":
                    remote.join()
                    umount(watched / "x")  # after the event: the poll backend would merge them
                else:
                    break
        return got

    got = asyncio.run(asyncio.wait_for(main(), GUARD))
    x = str(watched / "x")
    assert [(e.action, e.mount.mountpoint, e.mount.source) for e in got] == [
        ("mount", x, "seen"),
        ("umount", x, "seen"),
    ]
    assert open_fds() == before


@isolated
def test_async_read_times_out_with_no_events_and_cancellation_of_async_for_removes_the_reader(tmp_path: Path) -> None:
    before = open_fds()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        registered = len(loop._selector.get_map())  # type: ignore[attr-defined]
        async with aio.watch(under=tmp_path) as events:
            assert await events.read(0.05) == []
            task = await started(events.__anext__())
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert len(loop._selector.get_map()) == registered  # type: ignore[attr-defined]

    asyncio.run(main())
    assert open_fds() == before


@isolated
def test_waits_without_proc_behave_as_the_blocking_ones(tmp_path: Path) -> None:
    tmpfs("/proc", "no-proc")  # covers /proc in this test's namespace (the host's is locked below in a user namespace)
    assert not os.path.exists("/proc/self")
    (tmp_path / "m").mkdir()
    outcomes = []
    for wait in (mountprobe.wait_for_mount, lambda *a, **k: asyncio.run(aio.wait_for_mount(*a, **k))):
        try:
            wait(tmp_path / "m", timeout=0)
        except Exception as exc:
            outcomes.append(type(exc))
    # Without /proc the waits need a fanotify group (6.15), whose mark needs /proc too
    # today: both raise Unsupported; where one works, both time out.
    assert outcomes in ([Unsupported, Unsupported], [TimeoutError, TimeoutError])
    if outcomes[0] is Unsupported:
        return
    remote = Remote(lambda: tmpfs(tmp_path / "m", "no-proc"))

    async def main() -> mountprobe.Mount:
        task = await started(aio.wait_for_mount(tmp_path / "m", source="no-proc", timeout=GUARD))
        remote.go()
        return await task

    assert asyncio.run(main()).source == "no-proc"
    remote.join()
