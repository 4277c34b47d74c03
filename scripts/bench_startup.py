#!/usr/bin/env python3
"""Start-up of ``mountprobe is-mountpoint -q PATH`` against starting the same interpreter with
``-c pass``, side by side in one run (alternating; best of N each). Target: <= 1.5x.
Run with the interpreter of the environment where mountprobe is installed:

    python scripts/bench_startup.py [PATH]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from typing import List


def once(argv: List[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=False)
    return time.perf_counter() - start


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/proc"
    command = os.path.join(os.path.dirname(sys.executable), "mountprobe")
    if not os.path.exists(command):
        command = shutil.which("mountprobe") or ""
    if not command:
        print("mountprobe is not installed beside this interpreter", file=sys.stderr)
        return 1
    python, probe = [], []
    for _ in range(40):
        python.append(once([sys.executable, "-c", "pass"]))
        probe.append(once([command, "is-mountpoint", "-q", path]))
    ratio = min(probe) / min(python)
    print(f"python -c pass:                     {min(python) * 1e3:6.2f} ms (best of 40)")
    print(f"mountprobe is-mountpoint -q {path}: {min(probe) * 1e3:6.2f} ms (best of 40)")
    print(f"ratio {ratio:.2f}   target <= 1.5   {'ok' if ratio <= 1.5 else 'MISSED'}")
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
