"""``Mount``: one mount as the kernel sees it, whatever interface described it."""

from __future__ import annotations

import gc
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
    """Pause the cyclic garbage collector while thousands of records are built. They hold no
    cycles, yet every 700 new containers trigger a scan of the growing young generation, so
    that a large table is scanned again and again (``scripts/bench_parse.py`` parses one). The
    collector is re-enabled only if it was on. ``active=False`` does nothing. (A class, not
    contextlib, which no command imports otherwise: start-up, ``scripts/bench_startup.py``.)"""

    def __init__(self, active: bool = True) -> None:
        self._active = active
        self._paused = False

    def __enter__(self) -> None:
        self._paused = self._active and gc.isenabled()
        if self._paused:
            gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._paused:
            gc.enable()
