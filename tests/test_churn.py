"""Churn: while another process mounts and unmounts as fast as it can (>= 1,000 operations
per second), 100,000 queries about a fixed set of stable mounts, through every read
function, give no false negative and raise nothing; at the full chain and with /proc only
(mountinfo reads, where a table read races with the changes)."""

from __future__ import annotations

import errno
import os
import struct
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest
from _ns import MNT_DETACH, isolated_for, tmpfs, umount
from _seccomp import fail_syscalls

import mountprobe
from mountprobe import probe

QUERIES = 100_000
MIN_RATE = 1_000.0
ALL = ("statx", "openat2", "name_to_handle_at", "statmount", "listmount")
LEVELS = {"full": {}, "proc-only": {name: errno.EPERM for name in ALL}}


def _churn(places: List[bytes], stop: int, report: int) -> None:
    """Mount and unmount tmpfs at ``places`` until ``stop`` is readable; report the count."""
    count = 0
    started = time.monotonic()
    os.set_blocking(stop, False)
    while True:
        for place in places:
            tmpfs(place, "churn")
            umount(place, MNT_DETACH if count % 4 == 0 else 0)
            count += 2
        try:
            os.read(stop, 1)  # end of file: the queries are done
        except BlockingIOError:
            continue
        break
    os.write(report, struct.pack("=Qd", count, time.monotonic() - started))


@pytest.mark.parametrize("level", LEVELS)
@isolated_for(900)
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
    churner = os.fork()
    if churner == 0:
        os.close(stop_write)
        try:
            _churn(places, stop_read, report_write)
        finally:
            os._exit(0)
    os.close(report_write)
    if LEVELS[level]:
        fail_syscalls(LEVELS[level])
    probe.forget()
    misses: Dict[str, int] = {}
    errors: Dict[str, str] = {}
    started = time.monotonic()
    try:
        for n in range(QUERIES):
            name, check = checks[n % len(checks)]
            s = stable[n % len(stable)]
            try:
                if not check(s):
                    misses[name] = misses.get(name, 0) + 1
            except Exception as exc:
                errors.setdefault(name, repr(exc))
    finally:
        elapsed = time.monotonic() - started
        os.close(stop_write)
        count, churn_time = struct.unpack("=Qd", os.read(report_read, 16))
        os.waitpid(churner, 0)
    rate = count / churn_time
    print(f"{level}: {QUERIES} queries in {elapsed:.1f} s while {count} mount operations ran ({rate:,.0f}/s)")
    assert not errors, errors
    assert not misses, misses
    assert rate >= MIN_RATE
