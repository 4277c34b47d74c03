"""Differential testing against the kernel: a seeded random walk over mount operations
(tmpfs, bind, recursive bind, file bind, overmount, move, umount, lazy umount, propagation
changes) on names from a nasty alphabet; after every step every public query on every path
equals the kernel's own answer. A failure prints the seed and the shortest sequence found.

``MOUNTPROBE_WALK_STEPS`` (default 2,000, split over the seeds) and ``MOUNTPROBE_WALK_SEED``
(default: seeds 1 to 4) run it longer or replay one walk. Its deadline, only to catch a hang,
grows with the steps at this machine's pace (tests/_pace.py).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _ns import MNT_DETACH, isolated_for, umount
from _walk import describe, prepare, shrink, walk

STEPS = int(os.environ.get("MOUNTPROBE_WALK_STEPS", "2000"))
SEEDS = [int(os.environ["MOUNTPROBE_WALK_SEED"])] if "MOUNTPROBE_WALK_SEED" in os.environ else [1, 2, 3, 4]
TOOLS_EVERY = 50  # steps between comparisons with mountpoint(1), one process per path


@isolated_for(1800, starts=STEPS)  # a step (every query on every path, the oracle) costs about a command
def test_a_random_walk_of_mount_operations_agrees_with_the_kernel_at_every_step(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path / "walk")
    os.mkdir(root)
    started = time.monotonic()
    done = 0
    for seed in SEEDS:
        prepare(root)
        steps = max(1, STEPS // len(SEEDS))
        ops, wrong = walk(root, seed, steps, TOOLS_EVERY)
        done += len(ops)
        if wrong:
            short = shrink(root, ops)
            pytest.fail(
                f"seed {seed}, step {len(ops) - 1}: {len(wrong)} differences, the first:\n  "
                + "\n  ".join(wrong[:8])
                + f"\nshortest failing sequence found ({len(short)} of {len(ops)} operations):\n{describe(short)}"
                + f"\nreplay: MOUNTPROBE_WALK_SEED={seed} MOUNTPROBE_WALK_STEPS={len(ops)}",
                pytrace=False,
            )
        umount(root, MNT_DETACH)
    print(f"{done} steps, every query checked after each, in {time.monotonic() - started:.1f} s")
