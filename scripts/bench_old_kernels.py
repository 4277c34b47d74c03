#!/usr/bin/env python3
"""The seed's questions on the running kernel, in a container's view (issue 20): a slave mount
namespace holding N binds of one peer group, where the kernel builds mountinfo in
O(mounts x peers). Prints, side by side in alternating rounds, best round of several:

  mount_root(path)             / one raw statx     target <= 20x, flat in mounts
  is_mounted(t, source=dev)    / one raw statx     target <= 20x, flat in mounts
  still_mounted(m)             / one raw statx     target <= 20x, flat in mounts
  mount_of(path)               / one raw statx     (information)
  mount_of(path)               / one mountinfo read
  list_mounts()                / one mountinfo read (6.15+, or where statmount proves the fields: <= 0.3x)

and the strategy that answered each. "Flat" compares each question at N binds with the same
question at 20. Run it as root (the device source is a block device node made with mknod),
in the guests with scripts/vm-test.sh (MOUNTPROBE_VM_COMMAND):
    python scripts/bench_old_kernels.py [--binds N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tempfile
from typing import Dict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _ns import tmpfs
from bench_core import become_container, in_child, raw_mountinfo, raw_statx, side_by_side

import mountprobe

# (label, timed, baseline, target)
POINT = [
    ("mount_root / raw statx", "mount_root", "statx_root", 20.0),
    ("is_mounted(source=dev) / raw statx", "is_mounted", "statx_mounted", 20.0),
    ("still_mounted / raw statx", "still_mounted", "statx_still", 20.0),
    ("mount_of / raw statx", "mount_of", "statx_of", None),
]
READS = [
    ("mount_of / one mountinfo read", "mount_of_r", "read_of", None),
    ("list_mounts / one mountinfo read", "list_mounts", "read_list", 0.3),
]


def scene(args: argparse.Namespace, binds: int) -> Dict[str, float]:
    base = tempfile.mkdtemp(prefix="mp-bench-")
    tmpfs(base, "bench")
    target = os.path.join(base, "target")
    os.mkdir(target)
    tmpfs(target, "target")
    os.makedirs(os.path.join(target, "a", "b"))
    path = os.fsencode(os.path.join(target, "a", "b"))
    st = os.stat(target)
    node = os.path.join(base, "dev")
    os.mknod(node, stat.S_IFBLK | 0o600, st.st_dev)
    become_container(base, binds)
    m = mountprobe.mount_at(target)
    assert m is not None
    assert mountprobe.mount_root(path) == target and mountprobe.is_mounted(target, source=node)
    assert mountprobe.still_mounted(m) and mountprobe.mount_of(path) == m
    out: Dict[str, float] = {"mounts": float(len(mountprobe.list_mounts()))}
    for question, ask in (
        ("mount_root", lambda: mountprobe.mount_root(path)),
        ("is_mounted", lambda: mountprobe.is_mounted(target, source=node)),
        ("still_mounted", lambda: mountprobe.still_mounted(m)),
        ("mount_of", lambda: mountprobe.mount_of(path)),
        ("list_mounts", mountprobe.list_mounts),
    ):
        ask()
        answer = mountprobe.last_answer()
        out[f"by {question}"] = float(_STRATEGIES.index(answer.strategy if answer else ""))
    rounds, budget = args.rounds, args.budget
    nodes = os.fsencode(node)
    side_by_side(
        out, ("statx_root", "mount_root"), lambda: raw_statx(path), lambda: mountprobe.mount_root(path), rounds, budget
    )
    side_by_side(
        out,
        ("statx_mounted", "is_mounted"),
        lambda: raw_statx(nodes),
        lambda: mountprobe.is_mounted(target, source=nodes),
        rounds,
        budget,
    )
    side_by_side(
        out,
        ("statx_still", "still_mounted"),
        lambda: raw_statx(path),
        lambda: mountprobe.still_mounted(m),
        rounds,
        budget,
    )
    slow = max(budget, 0.2)  # a table read costs milliseconds here
    side_by_side(
        out, ("statx_of", "mount_of"), lambda: raw_statx(path), lambda: mountprobe.mount_of(path), rounds, slow
    )
    side_by_side(out, ("read_of", "mount_of_r"), raw_mountinfo, lambda: mountprobe.mount_of(path), rounds, slow)
    side_by_side(out, ("read_list", "list_mounts"), raw_mountinfo, mountprobe.list_mounts, rounds, slow)
    return out


_STRATEGIES = ["", "statx", "statmount", "attrs", "records", "mountinfo", "openat2", "handle", "devcmp"]


def report(large: Dict[str, float], small: Dict[str, float]) -> bool:
    ok = True
    us = 1e6
    print(f"  {'':<40} {'best':>9} {'median':>9}  target   {'at 20':>7} {'flat':>6}  answered by")
    for label, timed, base, limit in POINT + READS:
        ratio = large[timed] / large[base]
        median = large[timed + "~"] / large[base + "~"]
        # flat: the ratio at N binds over the ratio at 20 (the machine's own pace cancels out)
        flat = f"{ratio / (small[timed] / small[base]):5.2f}x" if (label, timed, base, limit) in POINT else "     -"
        question = timed.split("_r")[0] if timed.endswith("_r") else timed
        by = _STRATEGIES[int(large[f"by {question}"])]
        met = limit is None or ratio <= limit
        ok &= met
        target = "" if limit is None else f"<= {limit:g}"
        verdict = "" if limit is None else ("ok" if met else "MISSED")
        print(
            f"  {label:<40} {ratio:9.3f} {median:9.3f}  {target:<6} {verdict:<6} "
            f"{small[timed] / small[base]:6.2f}x {flat}  {by}"
        )
    print("  per call (best round, us): " + ", ".join(f"{k} {large[k] * us:.1f}" for k in _TIMES))
    return ok


_TIMES = ["statx_root", "mount_root", "is_mounted", "still_mounted", "mount_of", "read_list", "list_mounts"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binds", type=int, default=2_000, help="binds of one peer group (default 2,000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.05, help="seconds per round for microsecond calls")
    args = parser.parse_args()
    large = in_child(lambda: scene(args, args.binds))
    small = in_child(lambda: scene(args, 20))
    caps = mountprobe.capabilities()
    print(f"Linux {os.uname().release}: statmount {caps.statmount.status} ({caps.statmount.detail})")
    print(
        f"slave namespace: {large['mounts']:.0f} mounts ({args.binds} binds of one peer group); "
        f"small: {small['mounts']:.0f}"
    )
    return 0 if report(large, small) else 1


if __name__ == "__main__":
    sys.exit(main())
