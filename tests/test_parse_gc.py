"""The parser's pause of the cyclic garbage collector leaves the application's collector
settings as they were (issue 15, fault 17: the end of a pause called ``gc.enable()``, undoing
a ``gc.disable()`` that another thread made meanwhile, and the first of two overlapping
pauses to end switched the collector back on under the second).

Whether the collector runs is observed, not assumed: ``gc.callbacks`` sees every automatic
collection, and allocating many containers with the collector on always starts one."""

from __future__ import annotations

import gc
import os
import threading
from typing import Callable, Iterator, List, Optional

import pytest
from _ns import isolated

from mountprobe import mountinfo
from mountprobe.model import collector_paused

pytestmark = pytest.mark.host_only  # asks no kernel: not run in the real-kernel guests

CONTAINERS = 50_000  # far above any generation-0 threshold: the collector runs if it can


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    was, threshold = gc.isenabled(), gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    (gc.enable if was else gc.disable)()


def collections_during(work: Callable[[], object]) -> int:
    started: List[int] = []

    def seen(phase: str, info: object) -> None:
        if phase == "start":
            started.append(1)

    gc.callbacks.append(seen)
    try:
        work()
    finally:
        gc.callbacks.remove(seen)
    return len(started)


def allocate() -> object:
    return [[i] for i in range(CONTAINERS)]


class Parser(threading.Thread):
    """A thread parsing a table, held inside the parse (its collector pause) until released."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.inside, self.release = threading.Event(), threading.Event()
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        def keep(fields: List[str]) -> bool:
            self.inside.set()
            assert self.release.wait(60), "never released"
            return True

        try:
            found = mountinfo._entries(b"20 1 0:19 / /m rw - tmpfs tmpfs rw\n", False, keep)
            assert len(found) == 1
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Parser:
        self.start()
        assert self.inside.wait(60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.join(60)
        assert not self.is_alive() and self.error is None, self.error


def test_a_gc_disable_made_while_another_thread_parses_is_kept() -> None:
    gc.enable()
    with Parser():
        assert collections_during(allocate) == 0  # paused while it parses
        gc.disable()  # the application's own choice, made meanwhile
    assert gc.isenabled() is False
    assert collections_during(allocate) == 0


def test_a_gc_enable_made_while_another_thread_parses_is_kept() -> None:
    gc.disable()
    with Parser():
        gc.enable()
    assert gc.isenabled() is True
    assert collections_during(allocate) > 0


def test_the_collector_stays_paused_until_the_last_of_two_overlapping_parses_ends() -> None:
    gc.enable()
    threshold = gc.get_threshold()
    first, second = Parser(), Parser()
    with first, second:
        first.__exit__()  # the first to start ends first
        assert collections_during(allocate) == 0
    assert collections_during(allocate) > 0
    assert gc.isenabled() is True and gc.get_threshold() == threshold


def test_thresholds_set_by_the_application_during_a_parse_are_kept() -> None:
    gc.enable()
    with Parser():
        gc.set_threshold(5000, 20, 30)
    assert gc.get_threshold() == (5000, 20, 30)


def test_a_disabled_collector_stays_disabled_and_inactive_pauses_do_nothing() -> None:
    gc.disable()
    threshold = gc.get_threshold()
    with collector_paused(), collector_paused(active=False):
        pass
    assert gc.isenabled() is False and gc.get_threshold() == threshold
    gc.enable()
    with collector_paused(active=False):
        assert collections_during(allocate) > 0


@isolated
def test_a_child_forked_while_another_thread_parses_has_its_collector_back() -> None:
    gc.enable()
    threshold = gc.get_threshold()
    with Parser():
        pid = os.fork()
        if pid == 0:
            ok = gc.isenabled() and gc.get_threshold() == threshold and collections_during(allocate) > 0
            with collector_paused():  # and the pause itself still works there
                ok = ok and collections_during(allocate) == 0
            os._exit(0 if ok and gc.get_threshold() == threshold else 1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@isolated
def test_a_child_forked_inside_a_pause_counts_later_pauses_right() -> None:
    gc.enable()
    threshold = gc.get_threshold()
    pause = collector_paused()
    pause.__enter__()
    pid = os.fork()
    if pid == 0:
        ok = gc.get_threshold() == threshold  # the fork ended the pause
        later = collector_paused()
        later.__enter__()
        pause.__exit__()  # the pause from before the fork ends: the later one still holds
        ok = ok and collections_during(allocate) == 0
        later.__exit__()
        ok = ok and gc.get_threshold() == threshold and collections_during(allocate) > 0
        os._exit(0 if ok else 1)
    pause.__exit__()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert gc.get_threshold() == threshold
