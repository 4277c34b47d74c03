"""Changes made while a process waits: a forked child watches the waiter's main thread in
/proc and makes each change once the waiter sleeps in poll, select or epoll, so that a
test of a wait never depends on how fast the machine is (a sleep before the change would)."""

from __future__ import annotations

import os
import time
from typing import Callable

from _ns import forked

# The syscalls a wait sleeps in (x86_64, aarch64): poll, select, epoll_wait, pselect6,
# ppoll, epoll_pwait, epoll_pwait2.
_WAITING = {
    "x86_64": {7, 23, 232, 270, 271, 281, 441},
    "aarch64": {22, 72, 73, 441},
}[os.uname().machine]


def waiting(pid: int) -> int:
    """0 unless the main thread of ``pid`` sleeps in a wait; else how often it has gone to
    sleep so far (its voluntary context switches), which grows with each new wait."""
    with open(f"/proc/{pid}/task/{pid}/syscall") as f:
        words = f.read().split()
    if not words or words[0] == "running" or int(words[0]) not in _WAITING:
        return 0
    with open(f"/proc/{pid}/task/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1]) or 1
    return 1


def when_waiting(*steps: Callable[[], None], pid: int = 0, deadline: float = 60.0) -> int:
    """Run each of ``steps`` in a forked child once process ``pid`` (this one by default)
    waits, each after it has woken and waits again; the child's pid. The deadline only
    catches a waiter that never waits."""
    waiter = pid or os.getpid()

    def run() -> None:
        last = 0
        for step in steps:
            until = time.monotonic() + deadline
            while True:
                now = waiting(waiter)
                if now > last:
                    break
                if time.monotonic() > until:
                    raise AssertionError(f"process {waiter} never waited")
                time.sleep(0.001)
            step()
            last = now  # the next step comes at a later wait: after the waiter saw this one

    return forked(run)
