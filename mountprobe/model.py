"""``Mount``: one mount as the kernel sees it, whatever interface described it."""

from __future__ import annotations

import _thread
import gc
import os
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, NamedTuple, Optional, Set, Tuple

    class _MountFields(NamedTuple):
        id: int
        parent_id: int
        unique_id: Optional[int]
        parent_unique_id: Optional[int]
        major: int
        minor: int
        root: str
        mountpoint: str
        options: Tuple[str, ...]
        fstype: str
        source: Optional[str]
        super_options: Tuple[str, ...]
        shared: Optional[int]
        master: Optional[int]
        propagate_from: Optional[int]
        unbindable: bool

    class _AnswerFields(NamedTuple):
        question: str
        strategy: str
        declined: Tuple[Tuple[str, str], ...]  # (strategy, why it could not answer), in order

else:  # the same classes from collections: typing (and the re it imports) would weigh on
    # every command's start-up (scripts/bench_startup.py, tests/test_startup_imports.py)
    _MountFields = namedtuple(
        "Mount",
        "id parent_id unique_id parent_unique_id major minor root mountpoint options fstype source "
        "super_options shared master propagate_from unbindable",
        module=__name__,
    )
    _AnswerFields = namedtuple("Answer", "question strategy declined", module=__name__)


class Mount(_MountFields):
    """One mount, with the fields of a ``/proc/self/mountinfo`` line plus unique ids.

    A named tuple rather than a frozen dataclass: ``list_mounts`` builds tens of thousands of
    these, and a named tuple is far cheaper to build than a frozen dataclass
    (``scripts/bench_record.py`` times both).
    """

    __slots__ = ()

    @property
    def read_only(self) -> bool:
        """True when this mount is read-only (per-mount ``ro``; the superblock may be ``rw``)."""
        return "ro" in self.options

    @property
    def propagation(self) -> str:
        """findmnt's PROPAGATION: ``shared`` or ``private``, then ``,slave`` and ``,unbindable``."""
        text = "private" if self.shared is None else "shared"
        if self.master is not None:
            text += ",slave"
        if self.unbindable:
            text += ",unbindable"
        return text

    @property
    def devno(self) -> str:
        """The superblock's device as ``MAJ:MIN`` (findmnt ``MAJ:MIN``)."""
        return f"{self.major}:{self.minor}"


class Answer(_AnswerFields):
    """How the last question of this thread was answered (``mountprobe.last_answer()``)."""

    __slots__ = ()


def identity(m: Mount) -> Tuple[object, ...]:
    """What tells a mount from another where no unique ids do (before 6.8): its legacy id and
    parent's, device, root, mount point, type, source and super options. Legacy ids and
    anonymous device numbers are both reused at once, so an identical re-mount at the same
    place is indistinguishable; per-mount options and propagation are left out, since a
    remount or a change of propagation keeps the mount."""
    return (m.id, m.parent_id, m.major, m.minor, m.root, m.mountpoint, m.fstype, m.source, m.super_options)


def parents_first(mounts: List[Mount]) -> List[Mount]:
    """``mounts`` in their given (kernel, creation) order, except that a mount listed before
    its parent waits until the parent has been placed. Since Linux 6.8 the kernel lists by
    creation, so a mount moved under a newer one comes before its parent."""
    listed = {m.id for m in mounts}
    placed: Set[int] = set()
    for m in mounts:  # usually the order holds already: check that first
        if m.parent_id in listed and m.parent_id not in placed:
            break
        placed.add(m.id)
    else:
        return mounts
    placed.clear()
    waiting: Dict[int, List[Mount]] = {}
    out: List[Mount] = []
    for m in mounts:
        if m.parent_id in listed and m.parent_id not in placed and m.parent_id != m.id:
            waiting.setdefault(m.parent_id, []).append(m)
            continue
        ready = [m]
        while ready:
            m = ready.pop()
            out.append(m)
            placed.add(m.id)
            ready.extend(reversed(waiting.pop(m.id, ())))
    for stuck in waiting.values():  # a parent cycle, only in a corrupt table
        out.extend(stuck)
    return out


class collector_paused:
    """Pause the cyclic garbage collector's automatic runs while thousands of records are
    built. They hold no cycles, yet every few hundred new containers trigger a scan of the
    growing young generation, which doubles the parse of a large table. ``active=False``
    does nothing. (A class, not contextlib, which no command imports otherwise: start-up,
    ``scripts/bench_startup.py``.)

    The pause raises the generation-0 threshold rather than calling ``gc.disable()``, so the
    application's own ``gc.disable()``/``gc.enable()`` made meanwhile, in any thread, stand:
    the enabled flag is never touched (issue 15: ending a pause with ``gc.enable()`` undid
    them). Pauses overlap across threads: the first saves the thresholds, the last restores
    them, unless the application set others meanwhile."""

    __slots__ = ("_active", "_counted")

    def __init__(self, active: bool = True) -> None:
        self._active = active
        self._counted: Optional[int] = None  # the fork generation it was counted in

    def __enter__(self) -> None:
        if not self._active:
            return
        with _pause_lock:
            if not _pause_depth[0]:
                saved = gc.get_threshold()
                _pause_saved[:] = [saved, (_NEVER,) + saved[1:]]
                gc.set_threshold(*_pause_saved[1])
            _pause_depth[0] += 1
            self._counted = _pause_depth[1]

    def __exit__(self, *exc: object) -> None:
        if self._counted is not None:
            with _pause_lock:
                if self._counted == _pause_depth[1]:  # else a fork ended it (see below)
                    _pause_depth[0] -= 1
                    if not _pause_depth[0]:
                        _resume()
            self._counted = None


_NEVER = 0x7FFFFFFF  # the largest threshold gc.set_threshold() takes (a C int)
_pause_lock = _thread.allocate_lock()
_pause_depth = [0, 0]  # pauses in progress in every thread; forks since import
_pause_saved: List[Tuple[int, ...]] = []  # the thresholds before the first, and those it set


def _resume() -> None:
    saved, ours = _pause_saved
    del _pause_saved[:]
    if gc.get_threshold() == ours:  # else the application chose others meanwhile: keep them
        gc.set_threshold(*saved)


def _after_fork_in_child() -> None:
    """The threads inside a pause do not exist in a child: end their pauses (the forking
    thread's own ends early, and its end is then not counted), and replace the lock that one
    of them may have held at the fork."""
    global _pause_lock
    _pause_lock = _thread.allocate_lock()
    _pause_depth[1] += 1
    if _pause_depth[0]:
        _pause_depth[0] = 0
        _resume()


os.register_at_fork(after_in_child=_after_fork_in_child)
