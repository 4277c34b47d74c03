#!/usr/bin/env python3
"""Speed targets of the foundation, measured side by side in one run and printed as ratios.

Builds each scenario in private mount namespaces (forked children; nothing reaches the host's
mount table), then times mountprobe against the raw kernel call it must stay close to:

  is_mountpoint   <= 2.5x one raw ctypes statx, and flat: cost at 10,000 mounts <= 1.3x at 20
  mount_of        <= 10x one raw ctypes statx
  mounts_under    (10 of 10,000 mounts) <= 2% of one read of /proc/self/mountinfo, and
                  <= 1.3x one read for a plain directory (not a mount point) holding 10 of
                  the 10,000 mounts of the mount it is in (kubelet's /var/lib/kubelet/pods)
  list_mounts     <= 2.5x one mountinfo read (normal namespace, 10,000 mounts, each with its
                  own source), and <= 0.3x of it in a slave namespace holding 5,000 binds
                  of one peer group; beside psutil.disk_partitions(all=True) and cloud-init's
                  own text parse of /proc/mounts (for information)
  parse_mountinfo <= 6x a bare bytes.split into lines and fields, on the nasty and the
                  distinct-tail tables of scripts/bench_parse.py; malformed lines linear
  list_mounts(source=DEVICE)   "where is /dev/X mounted" at 10,000 mounts: faster than a bare
                  text split of /proc/self/mountinfo (read, lines, fields), and beside
                  cloud-init's own parse (util.mounts(): split /proc/mounts, unescape \\040)

Each pair is timed in alternating rounds and compared by each side's best round (medians
printed beside), because these machines are noisy. Run as root, or as a user allowed to create user namespaces:
    python scripts/bench_core.py [--quick]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from _ns import MS_REC, MS_SHARED, MS_SLAVE, bind, enter_private_namespace, propagation, tmpfs, unshare

import mountprobe

CLONE_NEWNS = 0x00020000
_STATX = {"x86_64": 332, "aarch64": 291}[os.uname().machine]
_raw_statx = ctypes.CFUNCTYPE(
    ctypes.c_long, ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p,
    use_errno=True,
)(("syscall", ctypes.CDLL(None, use_errno=True)))  # fmt: skip
_buf = ctypes.create_string_buffer(256)
_addr = ctypes.addressof(_buf)


def raw_statx(path: bytes) -> int:
    """The floor: one statx through ctypes with a preallocated buffer, nothing decoded."""
    return int(_raw_statx(_STATX, -100, path, 0x800 | 0x4000, 0x1 | 0x100, _addr))


def raw_mountinfo() -> bytes:
    with open("/proc/self/mountinfo", "rb", buffering=0) as f:
        return f.readall()


def per_call(fn: Callable[[], object], budget: float) -> float:
    """Seconds per call of ``fn``, looping for about ``budget`` seconds."""
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            return elapsed / n


def side_by_side(
    out: Dict[str, float],
    names: Tuple[str, str],
    a: Callable[[], object],
    b: Callable[[], object],
    rounds: int,
    budget: float,
) -> None:
    """Time ``a`` and ``b`` in alternating rounds; store each side's best round under its name
    and its median under ``name~``. The best round is what the code costs; slower rounds
    measure other load on this shared machine (the advice of Python's ``timeit`` docs)."""
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(per_call(a, budget))
        tb.append(per_call(b, budget))
    for name, times in zip(names, (ta, tb)):
        out[name] = min(times)
        out[name + "~"] = statistics.median(times)


def in_child(fn: Callable[[], Dict[str, float]]) -> Dict[str, float]:
    """Run ``fn`` in a forked child inside a private mount namespace; return its numbers."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            enter_private_namespace()
            data = json.dumps(fn()).encode()
        except BaseException as exc:  # report, then exit without running the parent's cleanup
            data, code = json.dumps({"error": repr(exc)}).encode(), 1
        while data:
            data = data[os.write(w, data) :]
        os._exit(code)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    result: Dict[str, float] = json.loads(data)
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def populate(base: str, count: int, own_sources: bool = False) -> None:
    """``count`` bind mounts of one directory, spread over base/m/<n>; or, with
    ``own_sources``, as many tmpfs mounts, each with its own source (a real host's loop
    devices and NFS exports: no two lines share their tails)."""
    src = os.path.join(base, "src")
    os.makedirs(src, exist_ok=True)
    os.makedirs(os.path.join(base, "m"), exist_ok=True)
    for i in range(count):
        target = os.path.join(base, "m", str(i))
        os.mkdir(target)
        if own_sources:
            tmpfs(target, f"src-{i}")
        else:
            bind(src, target)


def cloud_init_mounts() -> Dict[str, Dict[str, str]]:
    """cloud-init's ``util.mounts()`` on /proc/mounts: split each line on whitespace, undo
    the ``\\040`` of the mount point, keep the last mount of each device."""
    mounted: Dict[str, Dict[str, str]] = {}
    with open("/proc/mounts") as f:
        mount_locs = f.read().splitlines()
    for mpline in mount_locs:
        try:
            (dev, mp, fstype, opts, _freq, _passno) = mpline.split()
        except ValueError:
            continue
        mp = mp.replace("\\040", " ")
        mounted[dev] = {"fstype": fstype, "mountpoint": mp, "opts": opts}
    return mounted


def point_queries(args: argparse.Namespace, extra: int) -> Dict[str, float]:
    base = tempfile.mkdtemp(prefix="mp-bench-")
    tmpfs(base, "bench")
    os.mkdir(os.path.join(base, "mp"))
    tmpfs(os.path.join(base, "mp"), "target")
    os.mkdir(os.path.join(base, "plain"))
    populate(base, extra, own_sources=True)
    # A mount point holding 10 mounts (the kernel answers for its subtree), and a plain
    # directory holding 10 inside a mount that holds all the others (it must sift them).
    sub = os.path.join(base, "sub")
    os.mkdir(sub)
    tmpfs(sub, "holder")
    plain_sub = os.path.join(base, "plainsub")
    os.mkdir(plain_sub)
    for i in range(10):
        os.mkdir(os.path.join(plain_sub, str(i)))
        tmpfs(os.path.join(plain_sub, str(i)), "under")
    for i in range(10):
        os.mkdir(os.path.join(sub, str(i)))
        tmpfs(os.path.join(sub, str(i)), "under")
    mp, plain = os.fsencode(os.path.join(base, "mp")), os.fsencode(os.path.join(base, "plain"))
    assert mountprobe.is_mountpoint(mp) and not mountprobe.is_mountpoint(plain)
    assert len(mountprobe.mounts_under(sub)) == len(mountprobe.mounts_under(plain_sub)) == 10
    rounds, budget = args.rounds, args.budget
    out: Dict[str, float] = {"mounts": float(len(mountprobe.list_mounts()))}
    side_by_side(
        out, ("statx", "is_mountpoint"), lambda: raw_statx(mp), lambda: mountprobe.is_mountpoint(mp), rounds, budget
    )
    side_by_side(
        out,
        ("statx_plain", "is_mountpoint_plain"),
        lambda: raw_statx(plain),
        lambda: mountprobe.is_mountpoint(plain),
        rounds,
        budget,
    )
    side_by_side(out, ("statx2", "mount_of"), lambda: raw_statx(mp), lambda: mountprobe.mount_of(mp), rounds, budget)
    # Rounds of 0.2 s where a side takes milliseconds: after a 700 KB read the caches are
    # cold, and short rounds would charge that to the other side.
    slow = max(budget, 0.2)
    side_by_side(out, ("read", "mounts_under"), raw_mountinfo, lambda: mountprobe.mounts_under(sub), rounds, slow)
    side_by_side(
        out, ("read3", "mounts_under_plain"), raw_mountinfo, lambda: mountprobe.mounts_under(plain_sub), rounds, slow
    )
    side_by_side(out, ("read2", "list_mounts"), raw_mountinfo, mountprobe.list_mounts, rounds, slow)
    if extra:
        import psutil  # type: ignore[import-untyped, unused-ignore]  # the [bench] extra

        side_by_side(
            out,
            ("psutil", "list_mounts2"),
            lambda: psutil.disk_partitions(all=True),
            mountprobe.list_mounts,
            rounds,
            slow,
        )
        side_by_side(out, ("cloud_init", "list_mounts3"), cloud_init_mounts, mountprobe.list_mounts, rounds, slow)
    return out


def text_split() -> List[List[bytes]]:
    """The bare text split of mountinfo: its lines and their fields, nothing decoded."""
    return [line.split(b" ") for line in raw_mountinfo().split(b"\n")]


def root_device() -> str:
    """The device node of the filesystem holding "/" (from sysfs), the device looked up."""
    dev = os.stat("/").st_dev
    with open(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/uevent") as f:
        fields = dict(line.strip().split("=", 1) for line in f if "=" in line)
    return "/dev/" + fields["DEVNAME"]


def device_lookup(args: argparse.Namespace, extra: int) -> Dict[str, float]:
    """ "where is /dev/X mounted" (cloud-init's mount_cb, ceph-volume's device_is_mounted)
    in a namespace of ``extra`` more mounts, each with its own source."""
    base = tempfile.mkdtemp(prefix="mp-bench-")
    tmpfs(base, "bench")
    os.makedirs(os.path.join(base, "m"))
    for i in range(extra):
        target = os.path.join(base, "m", str(i))
        os.mkdir(target)
        tmpfs(target, f"src{i}")
    device = root_device()
    found = mountprobe.list_mounts(source=device)
    assert [m.mountpoint for m in found] == [
        m.mountpoint for m in mountprobe.list_mounts() if m.devno == found[0].devno
    ]
    assert device in cloud_init_mounts() or "/dev/root" in cloud_init_mounts()
    out: Dict[str, float] = {"mounts": float(len(mountprobe.list_mounts()))}
    slow = max(args.budget, 0.2)

    def lookup() -> object:
        return mountprobe.list_mounts(source=device)

    def cloud_init() -> object:
        return cloud_init_mounts().get(device)

    side_by_side(out, ("split", "lookup"), text_split, lookup, args.rounds, slow)
    side_by_side(out, ("cloud-init", "lookup2"), cloud_init, lookup, args.rounds, slow)
    return out


def become_container(base: str, binds: int) -> None:
    """``binds`` binds of one shared mount under ``base``, then a new namespace in which
    every mount is a slave of its copy outside: the container case, where mountinfo is
    quadratic. The fd keeps the first namespace, and with it the peer group, alive after
    this process leaves it."""
    shared = os.path.join(base, "shared")
    os.mkdir(shared)
    tmpfs(shared, "peers")
    propagation(shared, MS_SHARED)
    os.mkdir(os.path.join(base, "b"))
    for i in range(binds):
        target = os.path.join(base, "b", str(i))
        os.mkdir(target)
        bind(shared, target)  # each bind of a shared mount joins its peer group
    os.open("/proc/self/ns/mnt", os.O_RDONLY)
    unshare(CLONE_NEWNS)
    propagation("/", MS_REC | MS_SLAVE)


def slave_namespace(args: argparse.Namespace, binds: int) -> Dict[str, float]:
    base = tempfile.mkdtemp(prefix="mp-bench-")
    tmpfs(base, "bench")
    become_container(base, binds)
    out: Dict[str, float] = {"mounts": float(len(mountprobe.list_mounts()))}
    answer = mountprobe.last_answer()
    assert answer is not None and answer.strategy == "statmount", answer
    side_by_side(out, ("read", "list_mounts"), raw_mountinfo, mountprobe.list_mounts, 5, 0.5)
    return out


# (what, (scenario, timing), (scenario, baseline timing), upper limit or None for information)
CHECKS = [
    ("is_mountpoint / raw statx (mount point, large)", ("large", "is_mountpoint"), ("large", "statx"), 2.5),
    ("is_mountpoint / raw statx (mount point, small)", ("small", "is_mountpoint"), ("small", "statx"), 2.5),
    ("is_mountpoint / raw statx (not a mount point)", ("large", "is_mountpoint_plain"), ("large", "statx_plain"), None),
    ("is_mountpoint at large / at small (flatness)", ("flat", "large"), ("flat", "small"), 1.3),
    ("mount_of / raw statx (large)", ("large", "mount_of"), ("large", "statx2"), 10),
    ("mounts_under (mount point holding 10) / read", ("large", "mounts_under"), ("large", "read"), 0.02),
    ("mounts_under (plain dir holding 10) / read", ("large", "mounts_under_plain"), ("large", "read3"), 1.3),
    ("list_mounts / mountinfo read (normal, large)", ("large", "list_mounts"), ("large", "read2"), 2.5),
    ("list_mounts / psutil.disk_partitions(all=True)", ("large", "list_mounts2"), ("large", "psutil"), None),
    ("list_mounts / cloud-init's mounts() text parse", ("large", "list_mounts3"), ("large", "cloud_init"), None),
    ("list_mounts / mountinfo read (normal, small)", ("small", "list_mounts"), ("small", "read2"), None),
    ("list_mounts / mountinfo read (slave namespace)", ("slave", "list_mounts"), ("slave", "read"), 0.3),
    ("list_mounts(source=/dev/X) / bare text split", ("device", "lookup"), ("device", "split"), 1.0),
    ("list_mounts(source=/dev/X) / cloud-init's parse", ("device", "lookup2"), ("device", "cloud-init"), None),
    ("parse_mountinfo / bytes.split (nasty, 20,000 lines)", ("parse", "nasty"), ("parse", "split_nasty"), 6),
    ("parse_mountinfo / bytes.split (distinct tails)", ("parse", "distinct"), ("parse", "split_distinct"), 6),
    ("parse_mountinfo malformed: 20,000 lines / 5,000", ("parse", "bad_4n"), ("parse", "bad_n"), None),
]


def parsing(args: argparse.Namespace) -> Dict[str, float]:
    """parse_mountinfo beside a bare split of the same table into lines and fields, on the
    tables of scripts/bench_parse.py that the parser's memos cannot serve; and malformed
    lines at n and 4 n (about 4 when linear)."""
    import warnings

    from bench_parse import distinct_tails, nasty

    out: Dict[str, float] = {}
    for name, data in (("nasty", nasty()), ("distinct", distinct_tails())):

        def split(data: bytes = data) -> object:
            return [line.split(b" ") for line in data.split(b"\n")]

        def parse(data: bytes = data) -> object:
            return mountprobe.parse_mountinfo(data)

        side_by_side(out, ("split_" + name, name), split, parse, args.rounds, 0.2)
    bad = [b"%d 1 0:%d / /m%d rw - tmpfs" % (i + 2, i, i) for i in range(20_000)]  # fields missing
    small, large = b"\n".join(bad[:5_000]), b"\n".join(bad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        side_by_side(
            out,
            ("bad_n", "bad_4n"),
            lambda: mountprobe.parse_mountinfo(small),
            lambda: mountprobe.parse_mountinfo(large),
            args.rounds,
            0.2,
        )
    return out


def flatness(args: argparse.Namespace, extra: int) -> Dict[str, float]:
    """is_mountpoint in a namespace of ~40 mounts and in a copy of it holding ``extra`` more,
    alternating rounds between the two (setns between rounds, outside the timing)."""
    base = tempfile.mkdtemp(prefix="mp-bench-")
    tmpfs(base, "bench")
    mp = os.path.join(base, "mp")
    os.mkdir(mp)
    tmpfs(mp, "target")
    small = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    unshare(CLONE_NEWNS)
    populate(base, extra)
    large = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    counts = {}
    times: Dict[int, List[float]] = {small: [], large: []}
    for _ in range(args.rounds):
        for ns in (small, large):
            setns(ns)
            counts[ns] = len(mountprobe.list_mounts())
            times[ns].append(per_call(lambda: mountprobe.is_mountpoint(mp), args.budget))
    return {
        "mounts": float(counts[small]),
        "mounts_large": float(counts[large]),
        "small": min(times[small]),
        "small~": statistics.median(times[small]),
        "large": min(times[large]),
        "large~": statistics.median(times[large]),
    }


def setns(fd: int) -> None:
    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def report(results: Dict[str, Dict[str, float]]) -> bool:
    ok = True
    print(f"  {'':<52} {'best':>8}   {'median':>8}   target")
    for what, (a, x), (b, y), limit in CHECKS:
        ratio = results[a][x] / results[b][y]
        median = results[a][x + "~"] / results[b][y + "~"]
        verdict = "(info)" if limit is None else ("ok" if ratio <= limit else "MISSED")
        ok &= limit is None or ratio <= limit
        target = "" if limit is None else f"<= {limit}"
        print(f"  {what:<52} {ratio:8.3f}   {median:8.3f}   {target:<8} {verdict}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer mounts and rounds")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--budget", type=float, default=0.02, help="seconds per round for microsecond calls")
    args = parser.parse_args()
    big, slave_binds = (2_000, 1_000) if args.quick else (10_000, 5_000)
    if args.quick:
        args.rounds = 3
    small = in_child(lambda: point_queries(args, 0))
    large = in_child(lambda: point_queries(args, big - 30))
    slave = in_child(lambda: slave_namespace(args, slave_binds))
    flat = in_child(lambda: flatness(args, big))
    device = in_child(lambda: device_lookup(args, big - 30))
    parse = parsing(args)
    us = 1e6
    print(f"mounts: small {small['mounts']:.0f}, large {large['mounts']:.0f}, slave {slave['mounts']:.0f}")
    print("best rounds, microseconds per call:")
    for label, data in (("small", small), ("large", large)):
        print(
            f"  {label}: raw statx {data['statx'] * us:.2f}, is_mountpoint {data['is_mountpoint'] * us:.2f} "
            f"(not a mount point: raw {data['statx_plain'] * us:.2f}, "
            f"is_mountpoint {data['is_mountpoint_plain'] * us:.2f}), mount_of {data['mount_of'] * us:.2f}, "
            f"mounts_under {data['mounts_under'] * us:.1f} (plain dir {data['mounts_under_plain'] * us:.0f}), "
            f"list_mounts {data['list_mounts'] * us:.0f}, mountinfo read {data['read'] * us:.0f}"
        )
    print(f"  slave: list_mounts {slave['list_mounts'] * us:.0f}, mountinfo read {slave['read'] * us:.0f}")
    print(
        f"  flatness: is_mountpoint {flat['small'] * us:.2f} with {flat['mounts']:.0f} mounts, "
        f"{flat['large'] * us:.2f} with {flat['mounts_large']:.0f}"
    )
    print(
        f"  device lookup ({device['mounts']:.0f} mounts): list_mounts(source=) {device['lookup'] * us:.0f}, "
        f"bare text split {device['split'] * us:.0f}, cloud-init's parse {device['cloud-init'] * us:.0f}"
    )
    print(
        f"  parse: nasty {parse['nasty'] * 1e3:.1f} ms (split {parse['split_nasty'] * 1e3:.1f}), distinct tails "
        f"{parse['distinct'] * 1e3:.1f} ms (split {parse['split_distinct'] * 1e3:.1f}); 5,000 malformed lines "
        f"{parse['bad_n'] * 1e3:.1f} ms, 20,000 {parse['bad_4n'] * 1e3:.1f} ms"
    )
    if "psutil" in large:
        print(
            f"  large: psutil.disk_partitions(all=True) {large['psutil'] * us:.0f}, "
            f"cloud-init's mounts() {large['cloud_init'] * us:.0f}"
        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("ratios (one run, side by side; judged on each side's best round):")
    results = {"small": small, "large": large, "slave": slave, "flat": flat, "device": device, "parse": parse}
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
