#!/usr/bin/env python3
"""The scaling report: mountprobe against what users run today, side by side in one run.

Builds each scenario in a private mount namespace (a forked child; nothing reaches the
host's mount table, and every mount dies with the child):

  normal N   N tmpfs mounts (default 100, 1,000, 10,000, 50,000)
  slave N    N binds of one shared peer group, then a new namespace where every mount is a
             slave: the container case, where the kernel's mountinfo is quadratic
             (default 5,000 and 10,000)

and times, in the same child: each mountprobe function; os.path.ismount;
psutil.disk_partitions(all=True); one raw read of /proc/self/mountinfo; one raw statx; and
the processes mountpoint(1), findmnt --target, findmnt -J and the mountprobe commands. It
prints medians and ratios, checks the targets, and writes docs/benchmarks.md with a log-log
plot (docs/benchmarks.png, with the optional ``[bench]`` extra: matplotlib).

    sudo python scripts/bench.py            # the default set, about 5 minutes on 2 cores
    sudo python scripts/bench.py --quick    # 100 and 1,000 mounts, slave 1,000: a minute
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from _ns import tmpfs
from bench_core import become_container, in_child, raw_mountinfo, raw_statx
from bench_core import per_call as one_round

import mountprobe

HERE = os.path.dirname(os.path.abspath(__file__))
CLONE_NEWNS = 0x00020000
# (name, in-process?) in the order of the tables; "raw" rows are the floors.
METHODS = [
    "raw statx",
    "mountprobe.is_mountpoint",
    "os.path.ismount",
    "mountprobe.mount_of",
    "mountprobe.mount_at",
    "mountprobe.is_mounted",
    "mountprobe.mounts_under (10 below)",
    "mountprobe.list_mounts",
    "read /proc/self/mountinfo",
    "psutil.disk_partitions(all=True)",
    "$ mountpoint",
    "$ mountprobe is-mountpoint",
    "$ findmnt --target",
    "$ mountprobe find",
    "$ findmnt -J",
    "$ mountprobe list -J",
]
# (what, scenario, method, baseline method, limit): "method / baseline <= limit" is the target.
READ = "read /proc/self/mountinfo"
TARGETS = [
    ("is-mountpoint < mountpoint(1), slave 5k", "slave 5000", "$ mountprobe is-mountpoint", "$ mountpoint", 1),
    ("list -J 10x faster than findmnt -J, 10,000 mounts", "normal 10000", "$ mountprobe list -J", "$ findmnt -J", 0.1),
    ("is_mountpoint <= 2.5x raw statx, 10,000 mounts", "normal 10000", "mountprobe.is_mountpoint", "raw statx", 2.5),
    ("mount_of <= 10x raw statx, 10,000 mounts", "normal 10000", "mountprobe.mount_of", "raw statx", 10),
    ("mounts_under <= 2% of a read, 10,000 mounts", "normal 10000", "mountprobe.mounts_under (10 below)", READ, 0.02),
    ("list_mounts <= 2.5x a read, 10,000 mounts", "normal 10000", "mountprobe.list_mounts", READ, 2.5),
    ("list_mounts <= 0.3x a read, slave 5,000", "slave 5000", "mountprobe.list_mounts", READ, 0.3),
]
FLAT = ("is_mountpoint at 10,000 mounts <= 1.3x at 100", "normal 10000", "normal 100", "mountprobe.is_mountpoint", 1.3)


def interleaved(methods: Dict[str, Tuple[Callable[[], object], float]], rounds: int) -> Dict[str, float]:
    """Seconds per call of each method: the best of ``rounds`` rounds of bench_core's timing
    loop, the methods taking turns within each round, so that a slow spell of the machine
    falls on all of them and not on the one timed during it; slower rounds measure other
    load on the machine (as the timeit docs advise)."""
    best = {name: float("inf") for name in methods}
    for _ in range(rounds):
        for name, (fn, budget) in methods.items():
            best[name] = min(best[name], one_round(fn, budget))
    return best


def per_run(argv: Sequence[object], budget: float, most: int) -> float:
    """The median wall time of running ``argv`` (output discarded): at least 3 runs and at
    most ``most``, stopping once ``budget`` seconds are spent; one run if a run is slower."""
    # Python may write its bytecode caches (this environment may forbid it, and then every
    # start compiles the package again); the first run, which writes them, is not counted.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env, "check": False}
    subprocess.run(argv, **quiet)  # type: ignore[call-overload]
    times: List[float] = []
    while len(times) < most and (len(times) < 3 or sum(times) < budget):
        start = time.perf_counter()
        subprocess.run(argv, **quiet)  # type: ignore[call-overload]
        times.append(time.perf_counter() - start)
        if times[0] > budget:
            break
    return statistics.median(times)


def _command() -> List[str]:
    """The installed launcher if it runs this checkout's package, else ``python -m``."""
    found = shutil.which("mountprobe")
    if found and os.path.realpath(os.path.dirname(found)) == os.path.realpath(os.path.dirname(sys.executable)):
        return [found]
    return [sys.executable, "-m", "mountprobe"]


def measure(base: str, mp: str, sub: str, quick: bool) -> Dict[str, float]:
    """Every method, in this namespace. ``mp`` is a mount point, ``sub`` holds 10 mounts."""
    import psutil  # type: ignore[import-untyped, unused-ignore]  # the [bench] extra

    budget, rounds = (0.05, 3) if quick else (0.1, 5)
    slow = max(budget, 0.3)
    b = os.fsencode(mp)
    cli = _command()
    out = interleaved(
        {
            "raw statx": (lambda: raw_statx(b), budget),
            "mountprobe.is_mountpoint": (lambda: mountprobe.is_mountpoint(b), budget),
            "os.path.ismount": (lambda: os.path.ismount(b), budget),
            "mountprobe.mount_of": (lambda: mountprobe.mount_of(b), budget),
            "mountprobe.mount_at": (lambda: mountprobe.mount_at(b), budget),
            "mountprobe.is_mounted": (lambda: mountprobe.is_mounted(b, fstype="tmpfs"), budget),
            "mountprobe.mounts_under (10 below)": (lambda: mountprobe.mounts_under(sub), slow),
            "mountprobe.list_mounts": (mountprobe.list_mounts, slow),
            "read /proc/self/mountinfo": (raw_mountinfo, slow),
            "psutil.disk_partitions(all=True)": (lambda: psutil.disk_partitions(all=True), slow),
        },
        rounds,
    )
    run_budget = 1.0 if quick else 3.0
    for name, argv in (
        ("$ mountpoint", ["mountpoint", "-q", mp]),
        ("$ mountprobe is-mountpoint", [*cli, "is-mountpoint", "-q", mp]),
        ("$ findmnt --target", ["findmnt", "--target", mp]),
        ("$ mountprobe find", [*cli, "find", mp]),
        ("$ findmnt -J", ["findmnt", "-J"]),
        ("$ mountprobe list -J", [*cli, "list", "-J"]),
    ):
        if shutil.which(argv[0]) or argv[0] == sys.executable:
            out[name] = per_run(argv, run_budget, 10)
    out["mounts"] = float(len(mountprobe.list_mounts()))
    return out


def _scratch() -> Tuple[str, str, str]:
    base = tempfile.mkdtemp(prefix="mp-bench-")
    tmpfs(base, "bench")
    mp, sub = os.path.join(base, "mp"), os.path.join(base, "sub")
    for d in (mp, sub):
        os.mkdir(d)
        tmpfs(d, "target")
    for i in range(10):
        os.mkdir(os.path.join(sub, str(i)))
        tmpfs(os.path.join(sub, str(i)), "under")
    return base, mp, sub


def normal(count: int, quick: bool) -> Dict[str, float]:
    base, mp, sub = _scratch()
    many = os.path.join(base, "m")
    os.mkdir(many)
    for i in range(count):
        os.mkdir(os.path.join(many, str(i)))
        tmpfs(os.path.join(many, str(i)), "many")
    return measure(base, mp, sub, quick)


def slave(count: int, quick: bool) -> Dict[str, float]:
    base, mp, sub = _scratch()
    become_container(base, count)
    return measure(base, mp, sub, quick)


def _fmt(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _verdicts(results: Dict[str, Dict[str, float]]) -> List[Tuple[str, Optional[float], float, str]]:
    rows = []
    for what, scenario, method, baseline, limit in TARGETS:
        r = results.get(scenario, {})
        ratio = r[method] / r[baseline] if method in r and baseline in r else None
        rows.append((what, ratio, limit, "-" if ratio is None else ("met" if ratio <= limit else "MISSED")))
    what, big, small, method, limit = FLAT
    if big in results and small in results:
        ratio = results[big][method] / results[small][method]
        rows.append((what, ratio, limit, "met" if ratio <= limit else "MISSED"))
    return rows


def report(results: Dict[str, Dict[str, float]], elapsed: float) -> str:
    names = list(results)
    lines = [
        "# Benchmarks",
        "",
        f"`scripts/bench.py`, one run on {time.strftime('%Y-%m-%d')}: Linux {platform.release()}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {elapsed:.0f} s in all. "
        "Functions: the best of 5 rounds of repeated calls, the functions taking turns within each "
        "round; commands: the median of at least 3 runs (after one unmeasured run). Each scenario is "
        "built in a private mount namespace and every method timed there, in the same process.",
        "",
        "![cost against number of mounts](benchmarks.png)",
        "",
        "| method | " + " | ".join(f"{n} ({int(results[n]['mounts']):,} mounts)" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for method in METHODS:
        if any(method in results[n] for n in names):
            lines.append(f"| {method} | " + " | ".join(_fmt(results[n].get(method)) for n in names) + " |")
    lines += ["", "## Targets", "", "| target | ratio | limit | |", "|---|---|---|---|"]
    for what, ratio, limit, verdict in _verdicts(results):
        lines.append(f"| {what} | {'-' if ratio is None else f'{ratio:.3f}'} | {limit} | {verdict} |")
    lines += ["", "## Side by side", "", "mountprobe's cost divided by the other's: below 1, mountprobe is faster.", ""]
    for n in names:
        r = results[n]
        pairs = [
            ("is_mountpoint vs os.path.ismount", "mountprobe.is_mountpoint", "os.path.ismount"),
            ("list_mounts vs psutil.disk_partitions", "mountprobe.list_mounts", "psutil.disk_partitions(all=True)"),
            ("is-mountpoint vs mountpoint(1)", "$ mountprobe is-mountpoint", "$ mountpoint"),
            ("find vs findmnt --target", "$ mountprobe find", "$ findmnt --target"),
            ("list -J vs findmnt -J", "$ mountprobe list -J", "$ findmnt -J"),
        ]
        text = ", ".join(f"{label} {r[a] / r[b]:.2f}x" for label, a, b in pairs if a in r and b in r)
        lines.append(f"- {n}: {text}")
    return "\n".join(lines) + "\n"


def plot(results: Dict[str, Dict[str, float]], path: str) -> bool:
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    colors = [plt.get_cmap("tab20")(i) for i in range(20)]
    for ax, kind in zip(axes, ("normal", "slave")):
        names = [n for n in results if n.startswith(kind)]
        xs = [results[n]["mounts"] for n in names]
        for color, method in zip(colors, METHODS):
            ys = [results[n].get(method) for n in names]
            if len(xs) > 1 and all(y is not None for y in ys):
                style = "--" if method.startswith("$") else "-"
                marker = "s" if "mountprobe" in method else "o"
                ax.plot(xs, ys, style, color=color, marker=marker, label=method, linewidth=1.4, markersize=4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("mounts in the namespace")
        ax.set_title("normal namespace" if kind == "normal" else "slave namespace (binds of one peer group)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("seconds per call (commands: per run)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="center right")
    fig.subplots_adjust(right=0.78)
    fig.savefig(path, dpi=110)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small scenarios only (about a minute)")
    parser.add_argument("--only", help="scenarios to run, e.g. 'normal 10000,slave 5000' (no report written)")
    parser.add_argument("--from", dest="saved", help="write the report and plot from a saved JSON run")
    parser.add_argument("--out", default=os.path.join(HERE, "..", "docs", "benchmarks.md"), help="report path")
    args = parser.parse_args()
    if args.quick:
        plan = [("normal", 100), ("normal", 1000), ("slave", 1000)]
    else:
        plan = [
            ("normal", 100),
            ("normal", 1000),
            ("normal", 10000),
            ("normal", 50000),
            ("slave", 5000),
            ("slave", 10000),
        ]
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        plan = [(k, int(n)) for k, n in (w.split() for w in wanted)]
    started = time.monotonic()
    results: Dict[str, Dict[str, float]] = {}
    if args.saved:
        with open(args.saved) as f:
            saved = json.load(f)
        plan, results, started = [], saved["results"], started - saved["elapsed"]
    for kind, count in plan:
        t = time.monotonic()
        builder = normal if kind == "normal" else slave
        results[f"{kind} {count}"] = in_child(lambda: builder(count, args.quick))  # noqa: B023
        r = results[f"{kind} {count}"]
        print(f"{kind} {count}: {int(r['mounts']):,} mounts, {time.monotonic() - t:.0f} s")
        for method in METHODS:
            if method in r:
                print(f"  {method:<40} {_fmt(r[method]):>12}")
    elapsed = time.monotonic() - started
    print("targets:")
    ok = True
    for what, ratio, limit, verdict in _verdicts(results):
        print(f"  {what:<62} {'-' if ratio is None else f'{ratio:8.3f}'}  <= {limit:<5} {verdict}")
        ok &= verdict != "MISSED"
    if args.only:
        return 0 if ok else 1
    with open(args.out, "w") as f:
        f.write(report(results, elapsed))
    if not args.saved:
        with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
            json.dump({"elapsed": elapsed, "results": results}, f, indent=1)
    png = os.path.join(os.path.dirname(args.out), "benchmarks.png")
    print(f"wrote {args.out}" + (f" and {png}" if plot(results, png) else " (no plot: pip install '.[bench]')"))
    print(f"{elapsed:.0f} s in all")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
