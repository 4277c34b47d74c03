"""Work run in a forked child process: its result, or the exception it raised, comes back
pickled over a pipe; a deadline catches a hang; the child is killed and reaped on every path,
so that a test that fails or hangs leaves no process behind (what the child starts dies with
it where the child is the init of a pid namespace: ``_ns.isolated``).

Every fork of the test kit goes through here: ``_ns.isolated`` (a test in its own mount and
pid namespaces), ``_ns.forked`` (a helper process its caller stops), ``_dead.within`` (a query
that may hang), ``_walk.replay_fails`` (a replay in a fresh namespace) and the processes of
test_namespaces that hold a namespace until released. pytest is not imported here: the
benchmarks use the kit too.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import sys
import time
import traceback
from typing import Any, Callable, Generic, List, NamedTuple, Optional, Set, Tuple, TypeVar

T = TypeVar("T")


class Hung(Exception):
    """The child did not report within its deadline; it has been killed."""


class Died(RuntimeError):
    """The child ended without a report."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in the child, set as the cause of that exception
    when the parent raises it (concurrent.futures' way), so that a failure shows where."""

    def __str__(self) -> str:
        return str(self.args[0])


class Report(NamedTuple):
    ok: bool  # value is what the work returned; else the exception it raised
    value: Any
    trace: str  # the child's traceback when not ok


def read_until_closed(fd: int, seconds: float, stuck: Optional[Callable[[], bool]] = None) -> Optional[bytes]:
    """Everything written to pipe ``fd`` until every writer has closed it, or None when that
    has not happened within ``seconds``, or as soon as ``stuck()`` holds (checked every
    10 ms: a sign that the writer never will, however fast that comes)."""
    chunks: List[bytes] = []
    until = time.monotonic() + seconds
    while True:
        left = until - time.monotonic()
        if left <= 0 or (stuck is not None and stuck()):
            return None
        if not select.select([fd], [], [], left if stuck is None else min(left, 0.01))[0]:
            if stuck is None:
                return None
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


# The release end (write end of the hold pipe) of every holding child of this process.
_release_ends: Set[int] = set()


class Child(Generic[T]):
    """``work()`` in a forked child, after ``setup()`` there (a namespace to enter, a seccomp
    filter).

    ``setup`` may fork and leave only the new process to go on (``_ns.isolated`` makes the
    init of a pid namespace that way): the process that runs ``work`` reports; a process that
    ``work`` forks and that comes back here (a test's own fork that raised) does not.
    With ``hold``, the child waits after its report until ``release()`` (or until this
    process dies), so that its namespace can be examined. Without ``report``, nothing comes
    back (an error is printed to stderr) and the caller stops the child by its pid.

    ``grace``: how long a killed child is waited for. A child in an uninterruptible wait (a
    FUSE request its server has read cannot be interrupted, even by SIGKILL) is left after
    that: it dies with the server, at the latest when the test's pid namespace ends."""

    def __init__(
        self,
        work: Callable[[], T],
        setup: Optional[Callable[[], None]] = None,
        *,
        report: bool = True,
        hold: bool = False,
        grace: float = 10.0,
    ) -> None:
        self.grace = grace
        self.status: Optional[int] = None  # the wait status, once reaped
        self._read = self._hold = -1
        read_end, write_end = os.pipe() if report else (-1, -1)
        hold_end = -1
        if hold:
            hold_end, self._hold = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            # The release ends of the other holding children: one inherited here would keep
            # a sibling from seeing its release (the end of its pipe) until this child ends.
            for fd in (read_end, self._hold, *_release_ends):
                if fd >= 0:
                    os.close(fd)
            _in_child(work, setup, write_end, hold_end)
        for fd in (write_end, hold_end):
            if fd >= 0:
                os.close(fd)
        self._read = read_end
        if self._hold >= 0:
            _release_ends.add(self._hold)

    def report(self, deadline: float, stuck: Optional[Callable[[], bool]] = None) -> Report:
        """The child's report; Hung (the child killed) when none came within ``deadline``,
        or once ``stuck()`` holds."""
        data = read_until_closed(self._read, deadline, stuck)
        os.close(self._read)
        self._read = -1
        if data is None:
            self.kill()
            raise Hung(f"no answer within {deadline:g} s")
        if self._hold < 0 or not data:
            self._reap(deadline)
        if not data:
            return Report(False, Died(f"the child ended without a report ({self._how()})"), "")
        try:
            return Report(*pickle.loads(data))
        except Exception as exc:
            return Report(False, Died(f"the child's report cannot be unpickled: {exc!r}"), "")

    def result(self, deadline: float) -> T:
        """What ``work`` returned; the exception it raised, raised here; or Hung."""
        ok, value, trace = self.report(deadline)
        if not ok:
            raise value from RemoteTraceback(trace) if trace else None
        return value  # type: ignore[no-any-return]

    def release(self) -> None:
        """Let a holding child end, and reap it."""
        if self._hold >= 0:
            _release_ends.discard(self._hold)
            os.close(self._hold)
            self._hold = -1
        self._reap(self.grace)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the child and reap it (unless it is stuck, see ``grace``); nothing once
        reaped. (Not its process group: a child that leads a group of its own made the CLI
        queries of test_no_hang's dead FUSE test miss their deadlines.)"""
        if self.status is None and self.pid:
            os.kill(self.pid, signal.SIGKILL)
            self._reap(self.grace)
            self.pid = 0 if self.status is None else self.pid  # stuck: left to its namespace
        _release_ends.discard(self._hold)
        for fd in (self._read, self._hold):
            if fd >= 0:
                os.close(fd)
        self._read = self._hold = -1

    def _reap(self, seconds: float) -> None:
        if self.status is not None or not self.pid:
            return
        try:
            pidfd = os.pidfd_open(self.pid)
            try:
                if select.select([pidfd], [], [], seconds)[0]:
                    self.status = os.waitpid(self.pid, 0)[1]
            finally:
                os.close(pidfd)
        except (ProcessLookupError, ChildProcessError):  # reaped already (SIGCHLD ignored)
            self.status = 0

    def _how(self) -> str:
        if self.status is None:
            return "still running"
        if os.WIFSIGNALED(self.status):
            return f"killed by {signal.Signals(os.WTERMSIG(self.status)).name}"
        return f"exit status {os.waitstatus_to_exitcode(self.status)}"

    def __enter__(self) -> Child[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def run(work: Callable[[], T], deadline: float, setup: Optional[Callable[[], None]] = None) -> T:
    """``work()`` in a forked child (after ``setup()``): its result, or the exception it
    raised, raised here; Hung when it did not finish within ``deadline`` (it is killed)."""
    with Child(work, setup) as child:
        return child.result(deadline)


def _in_child(work: Callable[[], Any], setup: Optional[Callable[[], None]], report: int, hold: int) -> None:
    """The forked child's whole life: it never returns."""
    try:
        reporter = 0
        outcome: Tuple[Any, ...]
        try:
            if setup is not None:
                setup()
            reporter = os.getpid()
            outcome = (True, work(), "")
        except BaseException as exc:
            outcome = (False, exc, traceback.format_exc())
        if reporter and os.getpid() != reporter:
            os._exit(1)  # a fork of the work's, come back here: the work's process reports
        if report >= 0:
            data = _pickled(outcome)
            while data:
                data = data[os.write(report, data) :]
            os.close(report)  # the end of the report, also for a child that holds
        elif not outcome[0]:
            sys.stderr.write(outcome[2])
        if hold >= 0:
            os.read(hold, 1)  # until released: the parent closes its end (or dies)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(0)


def _pickled(outcome: Tuple[Any, ...]) -> bytes:
    try:
        return pickle.dumps(outcome)
    except Exception as exc:
        ok, value, trace = outcome
        what = "result" if ok else f"exception {type(value).__name__}: {value}"
        return pickle.dumps((False, Died(f"the child's {what} cannot be pickled: {exc!r}"), trace))
