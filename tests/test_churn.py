"""Churn: while another process mounts and unmounts tmpfs over and over, 100,000 queries about
a fixed set of stable mounts, through every read function, give no false negative and raise
nothing; at the full chain and with /proc only (mountinfo reads, where a table read races
with the changes).

What makes it a test of races is that the churn overlaps the queries, not how fast it is:
the churner counts its operations in memory shared with the test, and the queries go on
(past their number if need be) until at least ``OVERLAP`` operations have happened between
the end of the first query and the start of the last. No figure of speed is asserted (the
rates belong to the benchmarks in scripts/); a deadline from the machine's pace
(tests/_pace.py) only catches a hang.

``MOUNTPROBE_CHURN_QUERIES`` (default 100,000) sets the number of queries, e.g. smaller for a
slow guest; ``OVERLAP`` stays, so that even a short run races with the churn.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import struct
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest
from _ns import MNT_DETACH, isolated_for, tmpfs, umount
from _seccomp import fail_syscalls

import mountprobe
from mountprobe import probe

QUERIES = int(os.environ.get("MOUNTPROBE_CHURN_QUERIES", "100000"))
OVERLAP = 100  # mount operations at least, strictly between the first and the last query
ALL = ("statx", "openat2", "name_to_handle_at", "statmount", "listmount")
LEVELS = {"full": {}, "proc-only": {name: errno.EPERM for name in ALL}}


def _churn(places: List[bytes], stop: int, done: ctypes.c_uint64, report: int) -> None:
    """Mount and unmount tmpfs at ``places`` until ``stop`` is readable, counting each
    operation in ``done``; then report the count, or the error that stopped it."""
    os.set_blocking(stop, False)
    try:
        while True:
            for place in places:
                tmpfs(place, "churn")
                done.value += 1
                umount(place, MNT_DETACH if done.value % 4 == 1 else 0)
                done.value += 1
            try:
                os.read(stop, 1)  # end of file: the queries are done
            except BlockingIOError:
                continue
            break
        os.write(report, struct.pack("=Q", done.value))
    except BaseException as exc:
        os.write(report, repr(exc).encode()[:4096])


@pytest.mark.parametrize("level", LEVELS)
@isolated_for(queries=20 * QUERIES)  # each check asks several questions; the churn slows them
def test_stable_mounts_are_never_missed_while_others_churn(level: str, tmp_path: Path) -> None:
    base = tmp_path / "stable"
    stable = [base / f"s{i}" for i in range(5)]
    for s in stable:
        s.mkdir(parents=True)
        tmpfs(s, f"stable-{s.name}")
        (s / "sub").mkdir()
    places = []
    for i in range(16):
        (tmp_path / "churn" / f"c{i}").mkdir(parents=True)
        places.append(os.fsencode(tmp_path / "churn" / f"c{i}"))
    records = {s: mountprobe.mount_at(s) for s in stable}
    ids = {m.id for m in records.values() if m is not None}
    assert len(ids) == len(stable)

    checks: List[Tuple[str, Callable[[Path], bool]]] = [
        ("is_mountpoint", lambda s: mountprobe.is_mountpoint(s)),
        ("is_mountpoint(bind=False)", lambda s: mountprobe.is_mountpoint(s, bind=False)),
        ("mount_at", lambda s: getattr(mountprobe.mount_at(s), "id", None) == records[s].id),  # type: ignore[union-attr]
        ("mount_of", lambda s: mountprobe.mount_of(s / "sub").id == records[s].id),  # type: ignore[union-attr]
        ("mount_root", lambda s: mountprobe.mount_root(s / "sub") == str(s)),
        ("is_mounted", lambda s: mountprobe.is_mounted(s, fstype="tmpfs", source=f"stable-{s.name}")),
        ("still_mounted", lambda s: mountprobe.still_mounted(records[s])),  # type: ignore[arg-type]
        ("mounts_under", lambda s: {m.id for m in mountprobe.mounts_under(base)} == ids),
        ("list_mounts", lambda s: ids <= {m.id for m in mountprobe.list_mounts()}),
    ]
    stop_read, stop_write = os.pipe()
    report_read, report_write = os.pipe()
    shared = mmap.mmap(-1, 8)  # anonymous and shared: the churner's count, seen here at once
    done = ctypes.c_uint64.from_buffer(shared)
    churner = os.fork()
    if churner == 0:
        os.close(stop_write)
        try:
            _churn(places, stop_read, done, report_write)
        finally:
            os._exit(0)
    os.close(report_write)
    os.close(stop_read)
    if LEVELS[level]:
        fail_syscalls(LEVELS[level])
    probe.forget()
    misses: Dict[str, int] = {}
    errors: Dict[str, str] = {}
    after_first = 0
    n = 0
    try:
        # Past QUERIES while the churn has not yet overlapped enough: however the two
        # processes are scheduled, the queries race with at least OVERLAP operations.
        while n < QUERIES or done.value - after_first < OVERLAP:
            if n >= QUERIES and n % 1000 == 0 and os.waitpid(churner, os.WNOHANG)[0]:
                churner = 0
                break  # the churner died: its report says why
            name, check = checks[n % len(checks)]
            s = stable[n % len(stable)]
            try:
                if not check(s):
                    misses[name] = misses.get(name, 0) + 1
            except Exception as exc:
                errors.setdefault(name, repr(exc))
            if n == 0:
                after_first = done.value
            n += 1
        overlap = done.value - after_first  # read before the last query started: a lower bound
    finally:
        os.close(stop_write)
        report = os.read(report_read, 4096)
        os.close(report_read)
        if churner:
            os.waitpid(churner, 0)
    assert len(report) == 8, f"the churn stopped: {report.decode(errors='replace') or 'no report'}"
    (count,) = struct.unpack("=Q", report)
    print(f"{level}: {n} queries while {count} mount operations ran, {overlap} of them between the first and the last")
    assert not errors, errors
    assert not misses, misses
    assert overlap >= OVERLAP
