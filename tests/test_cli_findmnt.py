"""findmnt's everyday options on ``find`` and ``list``, and mountpoint's ``-x``, give the same
bytes as findmnt and mountpoint (util-linux on this machine) for the same real mounts: the
standard tree, names with escapes, binds, stacked mounts, a read-only and a noexec mount."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Tuple, Union

import pytest
from _ns import MS_BIND, MS_NOEXEC, MS_RDONLY, MS_REMOUNT, isolated, mount, tmpfs, umount
from _scenes import NASTY_NAMES, build

Arg = Union[str, bytes, "os.PathLike[str]"]
COLUMNS = "TARGET,SOURCE,FSTYPE,OPTIONS,FSROOT,ID,PARENT,MAJ:MIN,PROPAGATION,VFS-OPTIONS,FS-OPTIONS"


def ours(*args: Arg) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "mountprobe", *args], capture_output=True, check=False)


def theirs(name: str, *args: Arg) -> subprocess.CompletedProcess[bytes]:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return subprocess.run([path, *args], capture_output=True, check=False)


def same(mine: List[Arg], findmnt: List[Arg]) -> bytes:
    """Both commands give the same exit status and the same bytes on stdout."""
    a, b = ours(*mine), theirs("findmnt", *findmnt)
    assert b"Traceback" not in a.stderr, a.stderr
    assert (a.returncode, a.stdout) == (b.returncode, b.stdout), (mine, a.stdout, b.stdout, a.stderr)
    return a.stdout


def _scene(base: Path) -> None:
    build(base)
    for i, raw in enumerate([*NASTY_NAMES, b'quo"te', b"dollar$x", b"back`tick"]):
        (base / "src" / str(i)).mkdir()
        mount(b"s " + raw, base / "src" / str(i), "tmpfs")
    for name, flags in (("ro", MS_RDONLY), ("noexec", MS_NOEXEC)):
        (base / name).mkdir()
        tmpfs(base / name, name)
        mount(None, base / name, None, MS_REMOUNT | MS_BIND | flags)


LAYOUTS: List[Tuple[List[str], List[str]]] = [
    ([], ["-l"]),
    (["-l"], ["-l"]),
    (["-n"], ["-l", "-n"]),
    (["-r"], ["-r"]),
    (["-nr"], ["-nr"]),
    (["-P"], ["-P"]),
    (["-r", "--tree"], ["-r"]),
]


@isolated
def test_list_layouts_give_findmnts_bytes(tmp_path: Path) -> None:
    _scene(tmp_path)
    for mine, findmnt in LAYOUTS:
        for cols in (None, COLUMNS):
            extra = [] if cols is None else ["-o", cols]
            same(["list", *mine, *extra], [*findmnt, *extra])


FILTERS: List[List[str]] = [
    ["-t", "tmpfs"],
    ["-t", "tmpfs,proc"],
    ["-t", "notmpfs"],
    ["-t", "notmpfs,proc"],
    ["-t", "proc,notmpfs"],
    ["-t", "nosuchfs"],
    ["-t", "xyz"],
    ["-O", "ro"],
    ["-O", "noexec"],
    ["-O", "+noexec"],
    ["-O", "rw,noexec"],
    ["-O", "mode=755"],
    ["-S", "othersrc"],
    ["-S", "nasty"],
    ["-S", "no such source"],
    ["--real"],
    ["--pseudo"],
    ["-t", "tmpfs", "-O", "ro"],
]


# Every path of the scene, byte for byte with util-linux: host only (a slow guest's
# 150 interpreter starts; the answers are checked in the guests by the library's tests).
@pytest.mark.host_only
@isolated
def test_list_filters_keep_what_findmnt_keeps(tmp_path: Path) -> None:
    _scene(tmp_path)
    for options in FILTERS:
        for layout in (["-l"], ["-r"], ["-P", "-o", COLUMNS]):
            same(["list", *options, *layout], [*options, *layout])
    for point in (tmp_path / "other", tmp_path / "stack", tmp_path / "plain", Path("/proc")):
        same(["list", "-M", point, "-r"], ["-M", point, "-r"])


# Every path of the scene, byte for byte with util-linux: host only (a slow guest's
# 150 interpreter starts; the answers are checked in the guests by the library's tests).
@pytest.mark.host_only
@isolated
def test_find_options_give_findmnts_bytes(tmp_path: Path) -> None:
    _scene(tmp_path)
    for path in (tmp_path / "other", tmp_path / "tmpfs" / "inner", tmp_path / "otherfs", tmp_path / "ro"):
        for layout in (["-l"], ["-r"], ["-nr"], ["-P", "-o", COLUMNS]):
            same(["find", path, *layout], ["--target", path, *layout])
            same(["find", path, "-t", "tmpfs", *layout], ["--target", path, "-t", "tmpfs", *layout])
            same(["find", path, "-t", "proc", *layout], ["--target", path, "-t", "proc", *layout])
            same(["find", path, "-O", "ro", *layout], ["--target", path, "-O", "ro", *layout])
    same(["find", "-M", tmp_path / "other", "-r"], ["-M", tmp_path / "other", "-r"])
    same(["find", "-M", tmp_path / "plain", "-r"], ["-M", tmp_path / "plain", "-r"])


@isolated
def test_a_saved_table_is_read_like_findmnt_tab_file(tmp_path: Path) -> None:
    _scene(tmp_path)
    saved = tmp_path / "plain" / "mountinfo"
    saved.write_bytes(Path("/proc/self/mountinfo").read_bytes())
    for options in ([], *FILTERS[:8]):
        same(["list", "-F", saved, *options, "-r", "-o", COLUMNS], ["-F", saved, *options, "-r", "-o", COLUMNS])
    for path in (tmp_path / "other", tmp_path / "tmpfs" / "inner"):
        same(["find", "-F", saved, path, "-r"], ["-F", saved, "--target", path, "-r"])
    # every column from the file alone: the same bytes once those mounts are gone
    before = ours("list", "-F", saved, "-r", "-o", COLUMNS).stdout
    umount(tmp_path / "ro")
    umount(tmp_path / "noexec")
    assert ours("list", "-F", saved, "-r", "-o", COLUMNS).stdout == before
    assert b"/noexec " in before


@isolated
def test_list_under_exits_1_when_nothing_is_below_as_findmnt_R(tmp_path: Path) -> None:
    _scene(tmp_path)
    for path in (tmp_path / "plain", tmp_path / "other" / "dir"):
        assert ours("list", "--under", path).returncode == 1 == theirs("findmnt", "-R", "-M", path).returncode
        assert ours("list", "--under", path).stdout == b""
    listed = ours("list", "--under", tmp_path / "a", "-nr", "-o", "TARGET")
    assert listed.returncode == 0
    assert sorted(listed.stdout.splitlines()) == sorted(
        theirs("findmnt", "-R", "-M", tmp_path / "a", "-nr", "-o", "TARGET").stdout.splitlines()
    )


def _block_device() -> Optional[str]:
    dev = os.stat("/").st_dev
    try:
        with open(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/uevent") as f:
            name = dict(line.strip().split("=", 1) for line in f if "=" in line).get("DEVNAME")
    except OSError:
        return None
    path = f"/dev/{name}"
    return path if name and os.path.exists(path) and stat.S_ISBLK(os.stat(path).st_mode) else None


@isolated
def test_is_mountpoint_devno_and_combined_flags_are_mountpoints(tmp_path: Path) -> None:
    tree = build(tmp_path)
    device = _block_device()
    for path in [p for p in (device, "/dev/null", "/nonexistent", tmp_path) if p is not None]:
        for flags in (["-x"], ["--devno"], ["-q", "-x"], ["-qx"]):
            a, b = ours("is-mountpoint", *flags, path), theirs("mountpoint", *flags, path)
            assert (a.returncode, a.stdout) == (b.returncode, b.stdout), (flags, path)
    for path in (os.fsdecode(tree.path("tmpfs")), os.fsdecode(tree.path("plain")), "/proc"):
        for flags in (["-qd"], ["-dq"], ["-q", "-d"], ["-d"]):
            a, b = ours("is-mountpoint", *flags, path), theirs("mountpoint", *flags, path)
            assert (a.returncode, a.stdout) == (b.returncode, b.stdout), (flags, path)
    if device is None:
        pytest.skip("no block device node for the filesystem of / in /dev: -x was asked about others only")


@pytest.mark.parametrize(
    "args",
    [
        ["list", "-o", "TARGET,NOSUCH"],
        ["list", "-o", ""],
        ["list", "-r", "-P"],
        ["list", "-l", "-r"],
        ["list", "-J", "-P"],
        ["list", "--real", "--pseudo"],
        ["list", "-F", "/nonexistent"],
        ["list", "-F", "/dev/null"],
        ["list", "-F", "/"],
        ["find", "-F", "/nonexistent", "/"],
        ["list", "-F", "/proc/self/mountinfo", "-N", "1"],
        ["list", "-t"],
        ["list", "-nz"],
    ],
    ids=" ".join,
)
def test_bad_options_are_one_line_errors(args: List[str]) -> None:
    result = ours(*args)
    lines = result.stderr.decode(errors="replace").splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("mountprobe: "), result.stderr
    assert result.stdout == b""


def test_a_fifo_as_tab_file_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = subprocess.run(
        [sys.executable, "-m", "mountprobe", "list", "-F", fifo], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 1 and b"FIFO" in result.stderr and b"Traceback" not in result.stderr


def test_a_malformed_tab_file_is_reported_by_line_and_the_rest_listed(tmp_path: Path) -> None:
    saved = tmp_path / "mountinfo"
    good = b"22 1 0:21 / /proc rw,relatime shared:1 - proc proc rw\n"
    saved.write_bytes(b"garbage\n" + good + b"\xff\x00 junk\n")
    result = ours("list", "-F", saved, "-r", "-o", "TARGET,ID")
    assert result.stdout == b"TARGET ID\n/proc 22\n"
    warnings = result.stderr.decode(errors="replace").splitlines()
    assert len(warnings) == 2 and all(w.startswith("mountprobe: warning: mountinfo line") for w in warnings)


def test_a_full_stdout_is_one_line_not_a_traceback() -> None:
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [sys.executable, "-m", "mountprobe", "list", "-P"], stdout=full, stderr=subprocess.PIPE, check=False
        )
    assert result.returncode == 1 and result.stderr.startswith(b"mountprobe: write error")
