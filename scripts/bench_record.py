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
from typing import Any, Callable, Dict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mountprobe.model import Mount

FIELDS = (1, 2, 3, 4, 0, 40, "/", "/mnt/x", ("rw", "relatime"), "tmpfs", "tmpfs", ("rw",), None, None, None, False)


# The same fields as Mount, as a frozen dataclass, with and without slots (3.10+).
_FIELDS = list(Mount.__annotations__.items())
FrozenMount: Any = dataclasses.make_dataclass("FrozenMount", _FIELDS, frozen=True)
SlottedMount: Any = (
    dataclasses.make_dataclass("SlottedMount", _FIELDS, frozen=True, slots=True)
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
