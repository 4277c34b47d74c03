"""Faults of issue 15 in the answers themselves, each on real mounts in a private namespace and
checked against the kernel's own answer (statmount of the unique id, fdinfo, the live mountinfo
read by tests/_oracle.py): unique ids proved per record, a seccomp filter installed after the
first questions, broken mountinfo tables, plain-directory chroots, no /proc, impossible ids."""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from _ns import MS_NOSUID, bind, isolated, mount, tmpfs, umount
from _oracle import FIELDS, Entry, legacy_ids, table
from _scenes import build
from _seccomp import before_open, fail_syscalls
from test_fallback_chain import LEVELS, ONLY_WITH_FLAG, _answers

import mountprobe
from mountprobe import probe

# The new mount API (5.2): the same numbers on every architecture.
_OPEN_TREE, _MOVE_MOUNT = 428, 429
OPEN_TREE_CLONE = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def open_tree(path: Path) -> int:
    """A detached clone of the mount at ``path`` (open_tree(OPEN_TREE_CLONE)): its unique id
    is taken now, though it is attached only by ``move_mount``."""
    fd = _libc.syscall(
        ctypes.c_long(_OPEN_TREE), ctypes.c_int(-100), os.fsencode(path), ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC)
    )
    if fd < 0:
        raise OSError(ctypes.get_errno(), "open_tree", str(path))
    return int(fd)


def move_mount(fd: int, target: Path) -> None:
    r = _libc.syscall(
        ctypes.c_long(_MOVE_MOUNT),
        ctypes.c_int(fd),
        b"",
        ctypes.c_int(-100),
        os.fsencode(target),
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
    )
    if r != 0:
        raise OSError(ctypes.get_errno(), "move_mount", str(target))


def fields(m: mountprobe.Mount) -> Dict[str, Any]:
    return {f: getattr(m, f) for f in FIELDS}


def assert_unique_ids_are_the_kernels(records: List[mountprobe.Mount]) -> None:
    """Every unique id given belongs to the mount of the record: statmount of it names the
    record's legacy id (and the parent's, the record's parent)."""
    for m in records:
        if m.unique_id is not None:
            assert legacy_ids(m.unique_id)[0] == m.id, m
        if m.parent_unique_id is not None:
            assert legacy_ids(m.parent_unique_id)[0] == m.parent_id, m


def _needs_listing() -> None:
    caps = mountprobe.capabilities()
    if not (caps.listmount.usable and caps.statmount.usable):
        pytest.skip(f"needs listmount and statmount (Linux 6.8): {caps.listmount.detail}")


# -- 1: unique ids proved per record ----------------------------------------------------


@pytest.mark.parametrize("read", ["whole", "on another CPU"])
@pytest.mark.parametrize("when", ["before the open", "after the listing", "after the listing, no poll"])
@isolated
def test_a_tree_attached_mid_order_during_the_read_gives_no_record_another_mounts_unique_id(
    when: str, read: str, tmp_path: Path
) -> None:
    _needs_listing()
    from mountprobe import _overlap
    from mountprobe import mountinfo as mi
    from mountprobe.strategies import mountinfo as strategy

    started: List[object] = []
    if read == "on another CPU":  # the read of a large table (mountprobe/_overlap.py), here of this small one
        if len(os.sched_getaffinity(0)) < 2:
            pytest.skip("the read on another CPU needs a second CPU, and this process may use one")
        _overlap.MIN_MOUNTS = 0
        start = _overlap.start
        _overlap.start = lambda file: started.append(file) or start(file)  # type: ignore[func-returns-value]

    # Pads first, so that the first, middle and last lines lie outside the shifted run.
    for i in range(15):
        (tmp_path / f"pad{i}").mkdir()
        tmpfs(tmp_path / f"pad{i}", f"pad{i}")
    (tmp_path / "src").mkdir()
    tmpfs(tmp_path / "src", "src")
    clone = open_tree(tmp_path / "src")  # a unique id from now, in the middle of the order
    for i in range(10):
        (tmp_path / f"b{i}").mkdir()
        tmpfs(tmp_path / f"b{i}", f"b{i}")
    (tmp_path / "target").mkdir()
    taken: List[bytes] = []

    def change() -> None:
        # What mount(8) of util-linux 2.39+ does, and one umount, so that the count stays.
        move_mount(clone, tmp_path / "target")
        umount(tmp_path / "b8")

    if when == "before the open":

        def window(path: bytes) -> None:
            if path.endswith(b"/mountinfo") and not taken:
                taken.append(path)
                change()

        before_open(window)
    else:
        listed = strategy._listed_ids

        def listed_then_changed() -> Any:
            ids = listed()
            if not taken:
                taken.append(b"listed")
                change()
            return ids

        strategy._listed_ids = listed_then_changed
        if when.endswith("no poll"):
            mi.changed_since_open = lambda file: None
    records = mountprobe.list_mounts()
    assert taken and mountprobe.last_answer().strategy == "mountinfo"  # type: ignore[union-attr]
    assert len(started) == (read == "on another CPU")
    assert [fields(m) for m in records] == table()
    assert sum(m.unique_id is not None for m in records) >= len(records) - 1
    assert_unique_ids_are_the_kernels(records)
    assert all(mountprobe.still_mounted(m) for m in records)
    moved = mountprobe.mount_at(tmp_path / "target")
    assert moved is not None
    if when == "before the open":  # listed after the change: every id is given
        assert all(m.unique_id is not None for m in records)
    else:  # the moved tree was listed by no listmount before the read: its id is not given
        [listed_moved] = [m for m in records if m.id == moved.id]
        assert listed_moved.unique_id is None and listed_moved[4:] == moved[4:]


@isolated
def test_list_mounts_by_mountinfo_gives_proved_unique_ids_after_mount_churn(tmp_path: Path) -> None:
    _needs_listing()
    build(tmp_path)
    for i in range(5):  # legacy ids reused at once, unique ids never
        (tmp_path / f"c{i}").mkdir()
        tmpfs(tmp_path / f"c{i}")
        if i % 2:
            umount(tmp_path / f"c{i - 1}")
    records = mountprobe.list_mounts()
    assert mountprobe.last_answer().strategy == "mountinfo"  # type: ignore[union-attr]
    assert all(m.unique_id is not None for m in records)
    assert_unique_ids_are_the_kernels(records)


# -- 2: a seccomp filter installed after the first questions ----------------------------


@pytest.mark.parametrize("level", [level for level in LEVELS if level != "full"])
@isolated
def test_a_filter_installed_after_the_first_questions_never_turns_into_an_answer(level: str, tmp_path: Path) -> None:
    tree = build(tmp_path)
    (tmp_path / "gone").mkdir()
    tmpfs(tmp_path / "gone", "gone")
    gone = mountprobe.mount_at(tmp_path / "gone")
    assert gone is not None and mountprobe.still_mounted(gone)
    umount(tmp_path / "gone")
    paths = [*tree.every_path, tree.path("link"), b"/", b"/proc", b"/proc/self", b"/proc/sys"]
    expected = _answers(paths, tree.path())
    assert not mountprobe.still_mounted(gone)
    blocked, _ = LEVELS[level]
    before = mountprobe.capabilities()  # what the kernel itself lacks stays "missing"
    fail_syscalls(blocked, ONLY_WITH_FLAG.get(level))  # the cached probe predates it
    assert mountprobe.still_mounted(gone) is False
    assert [fields(m) for m in mountprobe.list_mounts()] == table()
    assert _answers(paths, tree.path()) == expected
    if {"statx", "statmount"} & set(blocked):  # refused on the way: the probe is fresh again
        caps = mountprobe.capabilities()
        for name, err in blocked.items():
            if name not in ONLY_WITH_FLAG.get(level, {}):
                status = getattr(caps, name).status
                if getattr(before, name).status == "missing":  # the kernel lacks it: as probed
                    assert status in ("missing", "blocked"), name  # before or after the filter
                else:
                    assert status == ("missing" if err == errno.ENOSYS else "blocked"), name


@isolated
def test_a_kernel_eperm_for_a_mount_outside_the_root_stays_an_answer_after_a_recheck(tmp_path: Path) -> None:
    # statmount's EPERM for a mount outside this root is the kernel's answer ("attached"),
    # unlike a filter's: the fresh probe tells them apart.
    _needs_listing()
    (tmp_path / "jail" / "proc").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    tmpfs(tmp_path / "out", "out")
    outside = mountprobe.mount_at(tmp_path / "out")
    assert outside is not None
    mount("proc", tmp_path / "jail" / "proc", "proc", MS_NOSUID)
    _preload(tmp_path)
    os.chroot(tmp_path / "jail")
    os.chdir("/")
    assert mountprobe.still_mounted(outside)


# -- 3: broken mountinfo tables ----------------------------------------------------------

_MOUNTINFO = ("/proc/self/mountinfo", "/proc/thread-self/mountinfo")


@pytest.mark.parametrize("kind", ["empty", "truncated"])
@pytest.mark.parametrize("level", ["proc-only", "no-statx-EPERM", "full"])
@isolated
def test_a_table_without_the_mounts_the_kernel_names_raises_naming_the_file(
    kind: str, level: str, tmp_path: Path
) -> None:
    (tmp_path / "m").mkdir()
    tmpfs(tmp_path / "m", "m")
    (tmp_path / "m" / "f").write_bytes(b"")
    (tmp_path / "m" / "d").mkdir()
    m = mountprobe.mount_at(tmp_path / "m")
    assert m is not None
    lines = Path("/proc/thread-self/mountinfo").read_bytes().splitlines(keepends=True)
    (tmp_path / "copy").write_bytes(b"" if kind == "empty" else b"".join(lines[:3]))
    for target in _MOUNTINFO:
        bind(tmp_path / "copy", target)
    assert Path("/proc/thread-self/mountinfo").read_bytes() == (tmp_path / "copy").read_bytes()
    blocked = LEVELS[level][0]
    if blocked:
        fail_syscalls(blocked)
    probe.forget()
    questions: Dict[str, Callable[[], object]] = {
        "list_mounts": mountprobe.list_mounts,
        "is_mountpoint": lambda: mountprobe.is_mountpoint(tmp_path / "m"),
        "is_mountpoint(dir)": lambda: mountprobe.is_mountpoint(tmp_path / "m" / "d"),
        "mount_at": lambda: mountprobe.mount_at(tmp_path / "m"),
        "mount_at(dir)": lambda: mountprobe.mount_at(tmp_path / "m" / "d"),
        "mount_of": lambda: mountprobe.mount_of(tmp_path / "m" / "f"),
        "mounts_under": lambda: mountprobe.mounts_under(tmp_path),
        "is_mounted": lambda: mountprobe.is_mounted(tmp_path / "m", fstype="tmpfs"),
        "still_mounted": lambda: mountprobe.still_mounted(m._replace(unique_id=None, parent_unique_id=None)),
    }
    # Which questions reach the table at this level; the others are answered by syscalls.
    # Records come from statmount only with its supported_mask (6.15); before that, the table.
    # is_mounted of a type needs statmount's FS_TYPE (6.8), else it compares records.
    caps = mountprobe.capabilities()
    records = {"mount_at", "mount_of", "mounts_under"}
    by_table = {
        "proc-only": set(questions),
        "no-statx-EPERM": set(questions) - {"is_mountpoint", "is_mountpoint(dir)"},
        "full": {"list_mounts", "still_mounted"}
        | (set() if caps.statx_unique_id and caps.statmount_records else records)
        | (set() if caps.statx_unique_id and caps.statmount.usable else {"is_mounted"}),
    }[level]
    for name, question in questions.items():
        if name in by_table:
            with pytest.raises(mountprobe.MountprobeError) as raised:
                question()
            text = str(raised.value)
            assert "/proc/thread-self/mountinfo" in text and "lacks mount" in text, (name, text)
        else:
            question()  # the kernel answers


# -- 13: a chroot to a plain directory ------------------------------------------------------


def _preload(scratch: Path) -> None:
    """Every question once, so that the modules they import lazily are loaded before chroot
    (a separate fault of issue 15)."""
    (scratch / "pre").mkdir()
    mountprobe.safe_rmtree(scratch / "pre")
    mountprobe.list_mounts()
    mountprobe.mounts_under("/proc")
    mountprobe.is_mountpoint("/proc", bind=False)
    mountprobe.is_mounted("/proc", source="proc")
    mountprobe.still_mounted(mountprobe.mount_of("/proc"))
    from mountprobe.strategies import devcmp, handle, mountinfo, openat2, statmount, statx  # noqa: F401


def _entries_below(lines: List[Entry], top: str) -> List[str]:
    prefix = top.rstrip("/") + "/"
    return sorted(e.mountpoint for e in lines if e.mountpoint == top or e.mountpoint.startswith(prefix))


@pytest.mark.parametrize("level", ["full", "no-statmount-EPERM", "no-statx-EPERM", "proc-only"])
@isolated
def test_a_plain_directory_chroot_is_answered_as_its_mountinfo_shows_it(level: str, tmp_path: Path) -> None:
    jail = tmp_path / "jail"
    for d in ("proc", "sub", "plain/dir/x", "busy/inner"):
        (jail / d).mkdir(parents=True)
    (jail / "plain" / "file").write_bytes(b"")
    (jail / "plain" / "dir" / "x" / "f").write_bytes(b"x")
    tmpfs(jail / "sub", "sub")
    (jail / "sub" / "f").write_bytes(b"")
    tmpfs(jail / "busy" / "inner", "inner")
    mount("proc", jail / "proc", "proc", MS_NOSUID)
    _preload(tmp_path)
    os.chroot(jail)
    os.chdir("/")
    blocked = LEVELS[level][0]
    if blocked:
        fail_syscalls(blocked)
    probe.forget()
    lines = table()
    assert sorted(e.mountpoint for e in lines) == ["/busy/inner", "/proc", "/sub"]
    records = mountprobe.list_mounts()
    assert [fields(m) for m in records] == lines
    assert_unique_ids_are_the_kernels(records)
    for top in ("/", "/busy", "/plain", "/sub", "/proc"):
        under = mountprobe.mounts_under(top, include_self=True)
        assert sorted(m.mountpoint for m in under) == _entries_below(lines, top), top
        assert all(fields(m) in lines for m in under)
    by_point = {e.mountpoint: e for e in lines}
    for point in ("/sub", "/busy/inner", "/proc"):
        at = mountprobe.mount_at(point)
        assert at is not None and fields(at) == by_point[point]
        assert mountprobe.is_mountpoint(point)
    assert fields(mountprobe.mount_of("/sub/f")) == by_point["/sub"]
    for plain in ("/plain", "/plain/dir", "/busy"):
        assert mountprobe.mount_at(plain) is None and not mountprobe.is_mountpoint(plain)
    # "/" is the root of all this process sees (mountpoint(1), systemd), but the mount
    # holding it lies outside: no record of it can be built from here, by any strategy.
    assert mountprobe.is_mountpoint("/")
    with pytest.raises(mountprobe.MountprobeError, match="chroot to a plain directory"):
        mountprobe.mount_at("/")
    with pytest.raises(mountprobe.MountprobeError, match="chroot to a plain directory"):
        mountprobe.mount_of("/plain/file")
    if "statx" not in blocked:  # safe_rmtree without statx is another fault of issue 15
        with pytest.raises(mountprobe.MountedBelow):
            mountprobe.safe_rmtree("/busy")
        mountprobe.safe_rmtree("/plain/dir")
        assert not os.path.exists("/plain/dir") and os.path.exists("/busy/inner")


# -- 14: no /proc ----------------------------------------------------------------------------


@isolated
def test_without_proc_list_mounts_comes_from_statmount(tmp_path: Path) -> None:
    build(tmp_path)
    kept = open("/proc/thread-self/mountinfo", "rb")  # noqa: SIM115 (the oracle's way in, once /proc is covered)
    _preload(tmp_path)
    tmpfs("/proc", "noproc")
    assert not os.path.exists("/proc/thread-self/mountinfo")
    probe.forget()
    lines = table(kept.read())
    caps = mountprobe.capabilities()
    if caps.statmount_records and caps.listmount.usable:
        records = mountprobe.list_mounts()
        assert [fields(m) for m in records] == lines
        assert all(m.unique_id is not None for m in records)
        assert_unique_ids_are_the_kernels(records)
    else:  # statmount records need 6.15 (supported_mask); nothing else can list the mounts
        with pytest.raises(mountprobe.ProcUnavailable, match="statmount"):
            mountprobe.list_mounts()


@pytest.mark.parametrize("level", ["no-statmount-EPERM", "no-statx-EPERM"])
@isolated
def test_without_proc_or_statmount_list_mounts_says_what_cannot_answer(level: str, tmp_path: Path) -> None:
    _preload(tmp_path)
    tmpfs("/proc", "noproc")
    fail_syscalls(LEVELS[level][0])
    probe.forget()
    with pytest.raises(mountprobe.ProcUnavailable, match="nor can statmount list the mounts here: statmount"):
        mountprobe.list_mounts()


# -- 20: impossible ids, a pipe's link ---------------------------------------------------------


@isolated
def test_a_record_with_impossible_ids_is_a_clear_error(tmp_path: Path) -> None:
    m = mountprobe.mount_of(tmp_path)
    bad: List[Dict[str, Any]] = [
        {"unique_id": -1},
        {"unique_id": 2**64},
        {"unique_id": 2**70},
        {"unique_id": 2**31},
        {"unique_id": "2147483700"},
        {"unique_id": 2.5e9},
        {"unique_id": True},
        {"id": -1},
        {"id": 2**32},
        {"id": "5"},
        {"parent_id": 2**40},
    ]
    for change in bad:
        with pytest.raises((TypeError, ValueError), match="Mount\\."):
            mountprobe.still_mounted(m._replace(**change))
    with pytest.raises(TypeError, match="needs a Mount"):
        mountprobe.still_mounted(tuple(m))  # type: ignore[arg-type]
    assert mountprobe.still_mounted(m) and mountprobe.still_mounted(m._replace(unique_id=None))


@pytest.mark.parametrize("level", ["full", "no-statmount-EPERM", "proc-only"])
@isolated
def test_mount_of_a_pipe_link_says_its_mount_is_in_no_table_here(level: str, tmp_path: Path) -> None:
    read_end, _write_end = os.pipe()
    blocked = LEVELS[level][0]
    if blocked:
        fail_syscalls(blocked)
    probe.forget()
    # ENOENT, as statmount says it ("no such mount here"), for a path that exists.
    with pytest.raises(FileNotFoundError, match="in no mount table of this namespace"):
        mountprobe.mount_of(f"/proc/self/fd/{read_end}")
    with pytest.raises(TypeError):
        mountprobe.mount_of(read_end)  # type: ignore[arg-type]
