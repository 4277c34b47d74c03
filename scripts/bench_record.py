#!/usr/bin/env python3
"""Which record type for ``Mount``: building one, as ``list_mounts`` does tens of thousands of
times, timed side by side for a NamedTuple and frozen dataclasses (with and without slots).

    python scripts/bench_record.py
"""

from __future__ import annotations

import dataclasses
import os
import sys
import timeit
from typing import Any, Callable, Dict, Optional, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mountprobe.model import Mount

FIELDS = (1, 2, 3, 4, 0, 40, "/", "/mnt/x", ("rw", "relatime"), "tmpfs", "tmpfs", ("rw",), None, None, None, False)


@dataclasses.dataclass(frozen=True)
class FrozenMount:
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


SlottedMount: Any = (
    dataclasses.dataclass(frozen=True, slots=True)(
        type("SlottedMount", (), {"__annotations__": FrozenMount.__annotations__})
    )
    if sys.version_info >= (3, 10)
    else None
)


def main() -> None:
    new = tuple.__new__
    head, tail = FIELDS[:8], FIELDS[8:]
    candidates: Dict[str, Callable[[], object]] = {
        "NamedTuple, tuple.__new__ (what the parsers do)": lambda: new(Mount, head + tail),
        "NamedTuple, Mount(*fields)": lambda: Mount(*FIELDS),
        "frozen dataclass": lambda: FrozenMount(*FIELDS),
    }
    if SlottedMount is not None:
        candidates["frozen dataclass with slots"] = lambda: SlottedMount(*FIELDS)
    base = None
    for name, build in candidates.items():
        seconds = min(timeit.repeat(build, number=100_000, repeat=5)) / 100_000
        base = base or seconds
        print(f"{name:<50} {seconds * 1e9:7.0f} ns   {seconds / base:5.1f}x")


if __name__ == "__main__":
    main()
