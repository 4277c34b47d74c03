"""How fast this machine is, measured once per session, and the deadlines of the tests derived
from it. A deadline in a test only turns a hang into a failure (a hang is forever), so it
is a generous multiple of what the same work takes here, never a figure that assumes a fast
machine: a real kernel under qemu TCG, or a host shared by many builds, is many times slower
than a developer's laptop, and its speed changes while the suite runs.

``pace()`` measures (the median of a few tries each): one command, ``python -m mountprobe
is-mountpoint`` (an interpreter start that imports mountprobe: what every command and
``with_timeout`` costs), one query in a forked child (what
``_dead.within`` costs) and one query in this process. ``hang_deadline(starts, forks,
queries)`` is ``FACTOR`` times what that much work took, and never less than ``floor``.
conftest.py measures at the start of the session, in pytest's own process, so that forked
tests inherit the figures instead of measuring again.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from typing import Callable, List, NamedTuple

FACTOR = 20.0  # how much slower than at the measurement the machine may get before a hang is called
FLOOR = 10.0  # seconds: the least any deadline gives, for a machine whose load jumps after the measurement
TRIES = 3
QUERIES = 50  # in-process queries timed together (one is too short for the clock to tell)
HERE = os.path.dirname(os.path.abspath(__file__))


class Pace(NamedTuple):
    start: float  # seconds for `python -m mountprobe is-mountpoint DIR`
    fork: float  # seconds for a forked child of pytest's process to ask one question and report
    query: float  # seconds for one query in this process


def _median(run: Callable[[], None]) -> float:
    times: List[float] = []
    for _ in range(TRIES):
        started = time.monotonic()
        run()
        times.append(time.monotonic() - started)
    return sorted(times)[len(times) // 2]


def _start() -> None:
    # From the directory above tests/, as the commands run: a checkout's package, or the
    # installed one for a copy of tests/ alone (the unprivileged CI run).
    command = [sys.executable, "-m", "mountprobe", "is-mountpoint", HERE]
    subprocess.run(command, cwd=os.path.dirname(HERE), capture_output=True, check=False)


def _forked_query() -> None:
    from mountprobe import mount_of, probe

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            probe.forget()  # as a query of `within` after its setup: the chain is probed afresh
            os.write(write_end, b"P" if mount_of(HERE) is not None else b"F")
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        os.read(read_end, 1)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


def _queries() -> None:
    from mountprobe import mount_of

    for _ in range(QUERIES):
        mount_of(HERE)


@functools.cache
def pace() -> Pace:
    """This machine's figures, measured at the first call."""
    from mountprobe import mount_of

    mount_of(HERE)  # the chain is probed once, outside the timed queries
    return Pace(_median(_start), _median(_forked_query), _median(_queries) / QUERIES)


def hang_deadline(starts: float = 0, forks: float = 0, queries: float = 0, floor: float = FLOOR) -> float:
    """Seconds after which work of ``starts`` interpreter starts, ``forks`` queries in forked
    children and ``queries`` queries in-process has hung: ``FACTOR`` times what it takes
    here, at least ``floor``."""
    p = pace()
    return max(floor, FACTOR * (starts * p.start + forks * p.fork + queries * p.query))


def describe() -> str:
    p = pace()
    return (
        f"machine pace: interpreter start {p.start * 1e3:.0f} ms, forked query {p.fork * 1e3:.1f} ms, "
        f"query {p.query * 1e6:.0f} us; a hang is called after {FACTOR:.0f}x that, at least {FLOOR:.0f} s"
    )
