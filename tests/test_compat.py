"""mountprobe.compat: each drop-in compared, case by case on real mounts, with what it
replaces (os.path.ismount, the walk-up find_mount_point, psutil.disk_partitions) where that
is right, and with the kernel (fdinfo mount ids, the raw mount table) where it is wrong."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple, Union

import psutil  # type: ignore[import-untyped, unused-ignore]
import pytest
from _dead import DeadAutofs, DeadFuse, Timeout, waits_on, within
from _ns import MS_BIND, MS_RDONLY, MS_REMOUNT, bind, isolated, mount, need_real_root, tmpfs
from _oracle import _unescape, by_id, fdinfo_mount_id
from _pace import hang_deadline
from _scenes import build, loop_ext4

import mountprobe
from mountprobe import compat

# Where os.path.ismount is wrong on the standard tree (tests/_scenes.py): binds within
# the scratch tmpfs have the parent's device, so its st_dev comparison misses them.
ISMOUNT_MISSES = {"samefs", "self", "filebind"}


def walk_up(path: bytes) -> bytes:
    """ansible-core's find_mount_point, minus its ~ and $VAR expansion."""
    p = os.path.realpath(path)
    while not os.path.ismount(p):
        p = os.path.dirname(p)
    return p


def kernel_mount_point(path: bytes) -> str:
    """The mount point of the mount holding ``path``, by its fdinfo mount id."""
    mountpoint: str = by_id()[fdinfo_mount_id(path)].mountpoint
    return mountpoint


def raw_mounts() -> List[Tuple[str, str, str, str]]:
    """/proc/thread-self/mounts as the kernel writes it: (device, mountpoint, fstype, opts)."""
    with open("/proc/thread-self/mounts", "rb") as f:
        lines = f.read().split(b"\n")
    rows = []
    for line in filter(None, lines):
        fields = [os.fsdecode(_unescape(x)) for x in line.split(b" ")]
        rows.append((fields[0], fields[1], fields[2], fields[3]))
    return rows


# -- ismount --------------------------------------------------------------------------


@isolated
def test_ismount_is_the_kernels_answer_and_os_path_ismounts_except_on_same_filesystem_binds(tmp_path: Path) -> None:
    tree = build(tmp_path)
    for key, path in tree.mounts.items():
        assert compat.ismount(path) is True, key
        assert os.path.ismount(path) is (key not in ISMOUNT_MISSES), key
    for key, path in tree.plain.items():
        assert compat.ismount(path) is False, key
        assert os.path.ismount(path) is False, key
    samefs = tree.mounts["samefs"]
    assert compat.ismount(samefs) is compat.ismount(os.fsdecode(samefs)) is compat.ismount(Path(os.fsdecode(samefs)))
    assert compat.ismount("/") is os.path.ismount("/") is True


@isolated
def test_ismount_never_raises_for_a_path_and_answers_false_as_os_path_ismount(tmp_path: Path) -> None:
    tree = build(tmp_path)
    (tmp_path / "file").write_bytes(b"")
    cases: List[Union[str, bytes, Path]] = [
        tmp_path / "missing",
        tmp_path / "missing" / "deeper",
        tmp_path / "file" / "below",  # ENOTDIR
        "",
        "a\0b",
        b"/x\0",
        "/" + "x" * 5000,  # ENAMETOOLONG
        "/" + "x" * 300,  # a component longer than NAME_MAX
    ]
    os.symlink("loop", tmp_path / "loop")
    cases.append(tmp_path / "loop" / "x")  # ELOOP
    for path in cases:
        assert os.path.ismount(path) is False, path
        assert compat.ismount(path) is False, path
    # A symlink to a mount point is not one (lstat); a trailing slash follows it (both).
    link = tree.path("link")
    assert os.path.ismount(link) is compat.ismount(link) is False
    assert os.path.ismount(link + b"/") is compat.ismount(link + b"/") is True


@isolated
def test_ismount_refuses_what_os_path_ismount_refuses(tmp_path: Path) -> None:
    for bad in (3, 0, None, 1.5, bytearray(b"/proc")):
        with pytest.raises(TypeError):
            os.path.ismount(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            compat.ismount(bad)  # type: ignore[arg-type]


@isolated
def test_ismount_is_false_for_a_btrfs_subvolume_that_os_path_ismount_calls_a_mount(tmp_path: Path) -> None:
    need_real_root()
    if shutil.which("mkfs.btrfs") is None or shutil.which("btrfs") is None:
        pytest.skip("btrfs-progs (mkfs.btrfs, btrfs) is not installed")
    image, target = tmp_path / "btrfs.img", tmp_path / "btrfs"
    with open(image, "wb") as f:
        f.truncate(128 << 20)  # mkfs.btrfs wants 109 MiB at least
    subprocess.run(["mkfs.btrfs", "-q", "-f", str(image)], check=True, stdout=subprocess.DEVNULL)
    target.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(target)], check=True)
    subprocess.run(["btrfs", "-q", "subvolume", "create", str(target / "sub")], check=True)
    sub = target / "sub"
    assert os.stat(sub).st_dev != os.stat(target).st_dev  # why os.path.ismount says True
    assert fdinfo_mount_id(sub) == fdinfo_mount_id(target)  # the kernel: no mount there
    assert os.path.ismount(sub) is True
    assert compat.ismount(sub) is False
    assert compat.ismount(target) is True
    assert compat.find_mount_point(str(sub / "x")) == str(target)
    assert walk_up(os.fsencode(sub / "x")) == os.fsencode(sub)  # the loops stop there


@isolated
def test_ismount_answers_about_a_dead_fuse_server_without_asking_it(tmp_path: Path) -> None:
    target = tmp_path / "dead"
    target.mkdir()
    limit = hang_deadline(forks=1)
    with DeadFuse(target) as fuse:
        assert within(limit, lambda: compat.ismount(target)) is True
        assert within(limit, lambda: compat.find_mount_point(str(target))) == str(target)
        assert within(limit, lambda: [p.mountpoint for p in compat.disk_partitions(all=True)][-1]) == str(target)
        assert fuse.requests() == []
        outcome, asked = waits_on(fuse, lambda: os.path.ismount(target))  # lstat hangs
        assert isinstance(outcome, Timeout) and asked, (outcome, asked)


@isolated
def test_ismount_does_not_trigger_an_automount(tmp_path: Path) -> None:
    target = tmp_path / "auto"
    target.mkdir()
    with DeadAutofs(target) as autofs:
        assert within(hang_deadline(forks=1), lambda: compat.ismount(target)) is True
        assert autofs.requests() == b""


# -- find_mount_point -------------------------------------------------------------------


@isolated
def test_find_mount_point_is_the_walk_up_where_ismount_is_right_and_the_kernels_mount_elsewhere(
    tmp_path: Path,
) -> None:
    tree = build(tmp_path)
    for key, path in {**tree.mounts, **tree.plain}.items():
        expected = kernel_mount_point(path)
        assert compat.find_mount_point(os.fsdecode(path)) == expected, key
        assert compat.find_mount_point(path) == os.fsencode(expected), key
        wrong = key in ISMOUNT_MISSES or key == "samefs/sub"
        assert (walk_up(path) == os.fsencode(expected)) is not wrong, key
    assert compat.find_mount_point(tree.path("link")) == tree.mounts["tmpfs"]  # followed, as realpath does
    assert compat.find_mount_point(Path(os.fsdecode(tree.path("tmpfs", "inner")))) == os.fsdecode(tree.mounts["tmpfs"])


@isolated
def test_find_mount_point_of_a_missing_or_unreachable_path_is_that_of_its_nearest_reachable_ancestor(
    tmp_path: Path,
) -> None:
    tree = build(tmp_path)
    (tmp_path / "file").write_bytes(b"")
    os.symlink(tmp_path / "tmpfs" / "gone", tmp_path / "dangling")
    os.symlink("loop", tmp_path / "loop")
    cases: Dict[bytes, bytes] = {
        tree.path("tmpfs", "missing", "deeper"): tree.mounts["tmpfs"],
        tree.path("samefs", "missing"): tree.mounts["samefs"],  # the walk-up says the scratch tmpfs
        tree.path("file", "below"): os.fsencode(tmp_path),
        tree.path("dangling"): tree.mounts["tmpfs"],  # realpath: the link's target, missing
        tree.path("loop", "x"): os.fsencode(tmp_path),
        tree.path("tmpfs", "missing", "..", "inner"): tree.mounts["tmpfs"],
        os.fsencode(tmp_path) + b"/a\0b": os.fsencode(tmp_path),
    }
    for path, expected in cases.items():
        assert compat.find_mount_point(path) == expected, path
        if b"\0" not in path and not path.startswith(tree.mounts["samefs"]):
            assert walk_up(path) == expected, path
    os.chdir(tree.mounts["a"])
    assert compat.find_mount_point("") == os.fsdecode(tree.mounts["a"])  # realpath("") is the cwd
    assert compat.find_mount_point("x/missing") == os.fsdecode(tree.mounts["a/x"])
    assert compat.find_mount_point("missing/../x") == os.fsdecode(tree.mounts["a/x"])
    with pytest.raises(TypeError):
        compat.find_mount_point(3)  # type: ignore[type-var]


# -- disk_partitions --------------------------------------------------------------------


@isolated
def test_disk_partitions_equals_psutils_on_the_standard_tree_names_with_escapes_included(tmp_path: Path) -> None:
    build(tmp_path)
    tmpfs(tmp_path / "plain", "src with space", "size=1m")
    mount(None, tmp_path / "plain", None, MS_BIND | MS_REMOUNT | MS_RDONLY)  # a read-only bind remount
    for every in (True, False):
        ours = compat.disk_partitions(all=every)
        assert ours == psutil.disk_partitions(all=every)
        assert all(
            type(p) is compat.sdiskpart and p._fields == ("device", "mountpoint", "fstype", "opts") for p in ours
        )
    assert [tuple(p) for p in compat.disk_partitions(all=True)] == [
        ("" if d == "none" else d, *rest) for d, *rest in raw_mounts()
    ]
    names = {p.mountpoint for p in compat.disk_partitions(all=True)}
    assert {os.fsdecode(tmp_path / "names" / "sp ace"), os.fsdecode(tmp_path / "names" / "new\nline")} <= names
    assert compat.disk_partitions(all=True)[-1].opts.startswith("ro,")


@isolated
def test_disk_partitions_decodes_the_sources_getmntent_misreads(tmp_path: Path) -> None:
    for name, source in (("hash", "#hash"), ("empty", "")):
        (tmp_path / name).mkdir()
        tmpfs(tmp_path / name, source)
    kernel = {mp: dev for dev, mp, _, _ in raw_mounts()}
    ours = {p.mountpoint: p for p in compat.disk_partitions(all=True)}
    theirs = {p.mountpoint: p for p in psutil.disk_partitions(all=True)}
    hashed, empty = os.fsdecode(tmp_path / "hash"), os.fsdecode(tmp_path / "empty")
    assert kernel[hashed] == "#hash" and ours[hashed].device == "#hash"
    # The kernel writes "#" as \043 (so the line cannot read as a comment); getmntent
    # decodes only \040, \011, \012 and \134.
    assert theirs[hashed].device == "\\043hash"
    assert ours[empty].device == "" and ours[empty].fstype == "tmpfs"
    assert empty not in theirs  # getmntent shifted the fields of that line


@isolated
def test_disk_partitions_selects_physical_devices_as_psutil_does(tmp_path: Path) -> None:
    loop_ext4(tmp_path / "img", tmp_path / "disk")
    (tmp_path / "disk" / "dir").mkdir()
    (tmp_path / "bound").mkdir()
    bind(tmp_path / "disk" / "dir", tmp_path / "bound")
    ours, theirs = compat.disk_partitions(), psutil.disk_partitions()
    assert ours == theirs
    mine = [p for p in ours if p.mountpoint.startswith(os.fsdecode(tmp_path))]
    assert [(p.mountpoint, p.fstype) for p in mine] == [
        (os.fsdecode(tmp_path / "disk"), "ext4"),
        (os.fsdecode(tmp_path / "bound"), "ext4"),  # a bind, listed with its device as psutil does
    ]
    assert mine[0].device == mine[1].device and mine[0].device.startswith("/dev/loop")
    assert all(p.fstype != "tmpfs" for p in ours)


@isolated
def test_disk_partitions_names_dev_root_by_the_mounts_own_device(tmp_path: Path) -> None:
    loop_ext4(tmp_path / "img", tmp_path / "disk")
    device = next(p.device for p in compat.disk_partitions() if p.mountpoint == os.fsdecode(tmp_path / "disk"))
    rdev = os.stat(device).st_rdev
    tmpfs("/dev", "devtmp")  # a private /dev, in this test's namespace only
    os.mknod("/dev/root", 0o600 | 0o060000, rdev)
    (tmp_path / "root").mkdir()
    mount("/dev/root", tmp_path / "root", "ext4")
    here = os.fsdecode(tmp_path / "root")
    assert [dev for dev, mp, _, _ in raw_mounts() if mp == here] == ["/dev/root"]
    ours = {p.mountpoint: p.device for p in compat.disk_partitions()}
    assert ours[here] == device
    theirs = {p.mountpoint: p.device for p in psutil.disk_partitions()}
    if os.major(os.stat("/").st_dev) != os.major(rdev) or os.minor(os.stat("/").st_dev) != os.minor(rdev):
        assert theirs[here] != device  # psutil #2347: the device of "/" instead
    assert mountprobe.mount_at(here) is not None
