#!/usr/bin/env python3
"""The mountinfo parser against the floor: parsing a 20,000-line table with escapes, optional
fields and long overlay super options, against merely splitting the same bytes into lines
and fields with ``bytes.split``. Target: <= 6x. Also the record type's share of the cost.

    python scripts/bench_parse.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Callable, List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mountprobe import parse_mountinfo
from mountprobe.model import Mount

LINES = 20_000


def table() -> bytes:
    """A container host's table: overlay roots with 11-layer lowerdir lists (a distinct list
    per container), binds with escaped names, shared and slave peer groups."""
    out: List[bytes] = []
    for i in range(LINES):
        mnt_id, parent = 100 + i, 99 + i // 10
        kind = i % 10
        if kind == 0:
            layers = ":".join(f"/var/lib/docker/overlay2/l/{i:06d}{n:02d}ABCDEFGHIJKLMNOPQRSTU" for n in range(11))
            tail = (
                f"overlay overlay rw,lowerdir={layers},upperdir=/var/lib/docker/overlay2/{i:08x}/diff,"
                f"workdir=/var/lib/docker/overlay2/{i:08x}/work"
            )
            line = f"{mnt_id} {parent} 0:{50 + i} / /var/lib/docker/overlay2/{i:08x}/merged rw,relatime - {tail}"
        elif kind < 4:
            line = (
                f"{mnt_id} {parent} 8:1 /srv/data\\040{i} /var/lib/kubelet/pods/{i:08x}/volumes/my\\040vol\\011{i} "
                f"rw,relatime shared:{i // 100} master:{i // 1000 + 1} - ext4 /dev/sda1 rw,errors=remount-ro"
            )
        else:
            tail = "tmpfs shm rw,size=65536k"
            line = f"{mnt_id} {parent} 0:{i % 500} / /run/containers/{i}/shm rw,nosuid,nodev shared:{i} - {tail}"
        out.append(line.encode())
    return b"\n".join(out) + b"\n"


def best(fn: Callable[[], object], rounds: int = 7) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    data = table()
    assert len(parse_mountinfo(data, strict=True)) == LINES

    def split() -> object:
        return [line.split(b" ") for line in data.split(b"\n")]

    rounds = {"split": [], "parse": []}  # type: dict[str, list[float]]
    for _ in range(9):  # alternating, side by side
        rounds["split"].append(best(split, 1))
        rounds["parse"].append(best(lambda: parse_mountinfo(data), 1))
    base, parse = min(rounds["split"]), min(rounds["parse"])
    new = tuple.__new__
    fields = (1, 2, None, None, 0, 0, "/", "/x", ("rw",), "tmpfs", "tmpfs", ("rw",), None, None, None, False)
    record = best(lambda: [new(Mount, fields) for _ in range(LINES)])
    print(f"{LINES} lines, {len(data) / 1e6:.1f} MB; best of 9 alternating rounds")
    print(f"  bytes.split into lines and fields  {base * 1e3:7.2f} ms")
    print(f"  parse_mountinfo                    {parse * 1e3:7.2f} ms   ({parse / LINES * 1e6:.2f} us a line)")
    print(
        f"    of which building {LINES} Mount records: {record * 1e3:.2f} ms (scripts/bench_record.py compares types)"
    )
    print(f"  ratio {parse / base:.2f}   target <= 6   {'ok' if parse / base <= 6 else 'MISSED'}")
    medians = statistics.median(rounds["split"]) * 1e3, statistics.median(rounds["parse"]) * 1e3
    print(f"  (medians: split {medians[0]:.2f} ms, parse {medians[1]:.2f} ms)")
    return 0 if parse / base <= 6 else 1


if __name__ == "__main__":
    sys.exit(main())
