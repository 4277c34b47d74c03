"""A large mountinfo read on another CPU while this one parses it.

The kernel formats mountinfo a page per read(2) (seq_file), and formatting a line costs it
about what parsing the line costs Python: read, then parse, takes the sum of the two. With a
second CPU the two can overlap. A helper thread copies the whole file into a memfd with
``sendfile(2)``: one call, the GIL released all through it (the kernel loops over the pages
itself), and the parse takes each block as it lands in the memfd.

The helper is a daemon thread, joined before the call returns, working on descriptors of
its own (duplicates, which it closes when the copy ends): the caller may close its own at
any time, even when interrupted, and no descriptor number is ever closed under a copy still
to start. The copy ends by itself: a mount table is finite, and seq_file never blocks.
Whatever is refused (no memfd or sendfile in a sandbox, no thread to be had) makes ``start``
give None, and the caller reads the file as before."""

from __future__ import annotations

import os
import time

from ._lazy import load

TYPE_CHECKING = False
if TYPE_CHECKING:
    from io import FileIO
    from threading import Thread
    from typing import Iterator, List, Optional

# Below this many mounts a thread, a memfd and three descriptors cost about what the overlap
# saves.
MIN_MOUNTS = 1000
_WAIT = 0.0001  # seconds between looks at the memfd while the parse has caught up


def worth_it(mounts: int) -> bool:
    """Is a table of ``mounts`` lines worth a helper thread, and is there a CPU for it?"""
    if mounts < MIN_MOUNTS:
        return False
    try:
        return len(os.sched_getaffinity(0)) > 1
    except OSError:
        return False


class Arrival:
    """The bytes of a mountinfo file as a helper thread copies them into a memfd."""

    __slots__ = ("_helper", "_mem", "_outcome")

    def __init__(self, mem: int, helper: Thread, outcome: List[BaseException]) -> None:
        self._mem, self._helper, self._outcome = mem, helper, outcome

    def blocks(self) -> Iterator[bytes]:
        """Each block of the file as it lands, in order, until the copy has ended."""
        at = 0
        while True:
            ended = not self._helper.is_alive()  # asked before the size: the last block is never missed
            size = os.fstat(self._mem).st_size
            if size > at:
                block = os.pread(self._mem, size - at, at)
                at += len(block)
                yield block
            elif ended:
                return
            else:
                time.sleep(_WAIT)

    def __del__(self) -> None:
        # Dropped unfinished: an exception (a signal handler's) raised between start() and
        # finish(), where no finally can reach. Only this side's descriptor is closed here.
        if self._mem >= 0:
            os.close(self._mem)

    def finish(self) -> Optional[BaseException]:
        """Wait for the helper to end and close this side; what stopped the copy, if it failed
        (the blocks are then a part of the file only). Joined: no thread of mountprobe's
        outlives the call (a fork right after it forks one thread)."""
        try:
            self._helper.join()
        finally:
            mem, self._mem = self._mem, -1
            os.close(mem)
        return self._outcome[0] if self._outcome else None


def start(file: FileIO) -> Optional[Arrival]:
    """Start copying ``file`` (open, at its start) on another thread; None where a memfd, a
    duplicate descriptor or a thread cannot be had."""
    try:
        mem = os.memfd_create("mountinfo", os.MFD_CLOEXEC)
    except (OSError, AttributeError):  # a sandbox's seccomp filter; no memfd_create (Linux < 3.17)
        return None
    theirs: List[int] = []
    try:
        theirs.append(os.dup(mem))  # os.dup gives close-on-exec descriptors (PEP 446)
        theirs.append(os.dup(file.fileno()))
        outcome: List[BaseException] = []
    except BaseException as exc:  # out of descriptors; a signal handler's exception
        for fd in (mem, *theirs):
            os.close(fd)
        if isinstance(exc, OSError):
            return None
        raise
    try:
        helper = load("threading").Thread(target=_copy, args=(theirs[0], theirs[1], outcome), daemon=True)
        helper.start()
        arrival = Arrival(mem, helper, outcome)
    except (ImportError, RuntimeError):  # threading lost (a chroot); "can't start new thread"
        for fd in (mem, *theirs):
            os.close(fd)
        return None
    except BaseException:  # a signal handler's exception once the helper runs: theirs are its own
        os.close(mem)
        raise
    return arrival


def _copy(out: int, source: int, outcome: List[BaseException]) -> None:
    """The helper: the whole of ``source`` into ``out``. sendfile(2) may stop short (a signal
    after some bytes), so it is called until it copies nothing (the end of the file)."""
    try:
        while os.sendfile(out, source, None, 1 << 30):
            pass
    except BaseException as exc:  # EPERM from a filter installed late, EINVAL: the caller reads again
        outcome.append(exc)
    finally:
        os.close(out)
        os.close(source)
