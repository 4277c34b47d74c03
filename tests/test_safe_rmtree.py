"""safe_rmtree never deletes across a mount: with a mount below it refuses and deletes nothing;
a mount that appears during the walk (made at an exact point by a seccomp supervisor that
runs before the walk's open) is left untouched, with openat2 and without it."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import struct
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from _ns import bind, in_user_namespace, isolated, tmpfs, umount
from _scenes import NASTY_NAMES
from _seccomp import before_open, fail_syscalls

import mountprobe
from mountprobe import MountedBelow

WAYS = ("openat2", "mount-ids")  # how the walk refuses a crossing
ALL = ("statx", "openat2", "name_to_handle_at", "statmount", "listmount")
# The kernel levels of the fallback chain: old kernels (ENOSYS) and sandboxes (EPERM).
LEVELS: Dict[str, Dict[str, int]] = {
    "full": {},
    "no-statx-EPERM": {"statx": errno.EPERM},
    "no-statx-ENOSYS": {"statx": errno.ENOSYS},
    "no-openat2": {"openat2": errno.ENOSYS},
    "no-statx-no-openat2": {"statx": errno.EPERM, "openat2": errno.ENOSYS},
    "no-statmount": {"statmount": errno.ENOSYS, "listmount": errno.ENOSYS},
    "proc-only": {name: errno.EPERM for name in ALL},
}
NOBODY = 65534


def _snapshot(top: Path) -> Dict[bytes, Optional[bytes]]:
    """Every path below ``top`` with the content of its files (None for directories)."""
    found: Dict[bytes, Optional[bytes]] = {}
    for where, dirs, files in os.walk(os.fsencode(top)):
        for d in dirs:
            found[os.path.join(where, d)] = None
        for f in files:
            path = os.path.join(where, f)
            if os.path.islink(path):
                found[path] = os.readlink(path)
                continue
            if not os.path.isfile(path):  # a FIFO: never opened
                found[path] = b"(fifo)"
                continue
            with open(path, "rb") as file:
                found[path] = file.read()
    return found


def _tree(top: Path) -> None:
    """A tree with files, nested directories, symlinks and the nasty names."""
    (top / "a" / "b" / "c").mkdir(parents=True)
    (top / "a" / "file").write_bytes(b"data")
    (top / "a" / "b" / "c" / "deep").write_bytes(b"deeper")
    (top / "a" / "link-out").symlink_to("/etc")
    (top / "dangling").symlink_to(top / "nowhere")
    for name in NASTY_NAMES:
        os.mkdir(os.fsencode(top) + b"/" + name)
        with open(os.fsencode(top) + b"/" + name + b"/" + name, "wb") as f:
            f.write(name)


def _way(way: str) -> None:
    if way == "mount-ids":
        fail_syscalls({"openat2": errno.ENOSYS})


@pytest.mark.parametrize("way", WAYS)
@isolated
def test_deletes_a_tree_without_mounts_and_never_follows_symlinks(way: str, tmp_path: Path) -> None:
    _way(way)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"keep me")
    top = tmp_path / "top"
    top.mkdir()
    _tree(top)
    (top / "to-outside").symlink_to(outside)
    mountprobe.safe_rmtree(top)
    assert not os.path.lexists(top)
    assert (outside / "precious").read_bytes() == b"keep me"


@isolated
def test_deletes_a_tree_300_levels_deep_given_as_bytes(tmp_path: Path) -> None:
    deep = tmp_path / "top"
    for _ in range(300):
        deep = deep / "d"
    deep.mkdir(parents=True)
    (deep / "f").write_bytes(b"x")
    mountprobe.safe_rmtree(os.fsencode(tmp_path / "top"))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind", ["bind", "file-bind", "tmpfs", "at-the-top", "overmounted"])
@isolated
def test_a_mount_below_refuses_and_deletes_nothing(kind: str, tmp_path: Path) -> None:
    top = tmp_path / "top"
    top.mkdir()
    _tree(top)
    source = tmp_path / "source"
    source.mkdir()
    (source / "theirs").write_bytes(b"not yours")
    where = {"bind": top / "a" / "b", "file-bind": top / "a" / "file", "tmpfs": top / "a" / "b" / "c"}.get(kind, top)
    if kind == "bind":
        bind(source, where)
    elif kind == "file-bind":
        bind(source / "theirs", where)
    else:
        tmpfs(where, "below")
        if kind == "overmounted":
            tmpfs(where, "on-top")
    before = _snapshot(tmp_path)
    with pytest.raises(MountedBelow) as caught:
        mountprobe.safe_rmtree(top)
    assert _snapshot(tmp_path) == before
    assert caught.value.during is False
    assert [m.mountpoint for m in caught.value.mounts][-1] == str(where)
    assert str(where) in str(caught.value) and "nothing was deleted" in str(caught.value)
    with pytest.raises(MountedBelow):
        mountprobe.safe_rmtree("/")


def _mount_when_opened(name: bytes, target: Path, content: Dict[str, bytes], done: List[bool]) -> None:
    """Mount a tmpfs holding ``content`` at ``target`` just before the walk opens ``name``."""

    def hook(path: bytes) -> None:
        if path.rsplit(b"/", 1)[-1] == name and not done:
            done.append(True)
            tmpfs(target, "appeared")
            for file, data in content.items():
                (target / file).write_bytes(data)

    before_open(hook)


@pytest.mark.parametrize("way", WAYS)
@isolated
def test_a_mount_appearing_on_the_next_directory_is_never_entered(way: str, tmp_path: Path) -> None:
    top = tmp_path / "top"
    victim = top / "x" / "victim"
    victim.mkdir(parents=True)
    (victim / "mine").write_bytes(b"the tree's own")
    (top / "x" / "sibling").write_bytes(b"s")
    _way(way)
    done: List[bool] = []
    _mount_when_opened(b"victim", victim, {"precious": b"on the new mount"}, done)
    with pytest.raises(MountedBelow) as caught:
        mountprobe.safe_rmtree(top)
    assert done and caught.value.during
    assert str(victim) in str(caught.value)
    assert (victim / "precious").read_bytes() == b"on the new mount"  # untouched
    umount(victim)
    assert (victim / "mine").read_bytes() == b"the tree's own"  # the walk stopped at the crossing


@pytest.mark.parametrize("way", WAYS)
@isolated
def test_a_mount_over_a_directory_being_emptied_leaves_the_mount_untouched(way: str, tmp_path: Path) -> None:
    top = tmp_path / "top"
    inner = top / "outer" / "inner"
    inner.mkdir(parents=True)
    (top / "outer" / "file").write_bytes(b"underneath")
    (inner / "f").write_bytes(b"underneath too")
    _way(way)
    done: List[bool] = []
    # While the walk is inside ``outer`` (opening ``inner``), a mount covers ``outer``: the
    # walk's descriptor still holds the directory underneath, which is the tree's own.
    _mount_when_opened(b"inner", top / "outer", {"precious": b"on the new mount"}, done)
    with pytest.raises(MountedBelow) as caught:
        mountprobe.safe_rmtree(top)
    assert done and caught.value.during
    assert (top / "outer" / "precious").read_bytes() == b"on the new mount"
    assert sorted(os.listdir(top / "outer")) == ["precious"]
    umount(top / "outer")
    assert os.listdir(top / "outer") == []  # the tree's own content underneath went


@isolated
def test_bad_paths_raise_standard_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "dir")
    cases: List[Tuple[object, type]] = [
        (tmp_path / "missing", FileNotFoundError),
        (tmp_path / "file", NotADirectoryError),
        (tmp_path / "link", NotADirectoryError),
        ("", ValueError),
        (b"a\0b", ValueError),
    ]
    for path, error in cases:
        with pytest.raises(error):
            mountprobe.safe_rmtree(path)  # type: ignore[arg-type]
    assert (tmp_path / "dir").is_dir() and (tmp_path / "file").exists()


@isolated
def test_an_unreadable_directory_raises_permission_error_naming_it(tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "locked").mkdir(parents=True)
    (top / "locked" / "f").write_bytes(b"")
    os.chmod(tmp_path, 0o777)
    os.chmod(top, 0o777)
    os.chmod(top / "locked", 0)
    (tmp_path / "warm-up").mkdir()
    mountprobe.safe_rmtree(tmp_path / "warm-up")  # every module it needs, imported while root
    os.chdir(tmp_path)  # pytest's base directory is root's alone: go on by a relative path
    if os.geteuid() == 0:
        try:
            os.setresuid(65534, 65534, 65534)
        except OSError:  # in a user namespace that maps only our uid: lose root's powers
            _drop_capabilities()
    with pytest.raises(PermissionError) as caught:
        mountprobe.safe_rmtree("top")
    assert caught.value.filename is not None and caught.value.filename.endswith("/top/locked")
    assert os.path.isdir("top/locked")


def _level(level: str) -> None:
    if LEVELS[level]:
        fail_syscalls(LEVELS[level])


def _drop_capabilities() -> None:
    """Keep the uid, lose every capability (capset(2) with empty sets): the owner of a
    mode-0 directory may no longer search it, as any user may not search another's 0700."""
    libc = ctypes.CDLL(None, use_errno=True)
    header = ctypes.create_string_buffer(struct.pack("=Ii", 0x20080522, 0))  # _LINUX_CAPABILITY_VERSION_3
    data = ctypes.create_string_buffer(24)  # two (effective, permitted, inheritable) triples, zeroed
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


# How a caller comes to hold a working directory below an ancestor it may not search: it
# changed directory, then lost the right (sudo -u from root's home; a service dropping root).
UNPRIVILEGED = ("as uid 65534", "without capabilities")


def _lock_out(how: str, ancestor: Path, tree: Path) -> None:
    """Make ``ancestor`` unsearchable for this process from now on, ``tree`` still its own."""
    if how == "as uid 65534":
        if in_user_namespace():
            pytest.skip("cannot become another uid in a user namespace that maps only ours")
        for where, dirs, files in os.walk(tree):
            for name in [*dirs, *files]:
                os.lchown(os.path.join(where, name), NOBODY, NOBODY)
        os.chown(tree, NOBODY, NOBODY)
        ancestor.chmod(0o700)
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
    else:
        ancestor.chmod(0)
        _drop_capabilities()
    with pytest.raises(PermissionError):
        os.stat(ancestor / "work")


@pytest.mark.parametrize("level", ["full", "no-statx-no-openat2", "no-statmount", "proc-only"])
@pytest.mark.parametrize("how", UNPRIVILEGED)
@isolated
def test_below_an_ancestor_it_may_not_search_a_caller_is_refused_and_nothing_is_deleted(
    how: str, level: str, tmp_path: Path
) -> None:
    work = tmp_path / "locked" / "work"
    work.mkdir(parents=True)
    (work / "top").mkdir()
    _tree(work / "top")
    (work / "plain").mkdir()
    _tree(work / "plain")
    (work / "top" / "last" / "mnt").mkdir(parents=True)  # made last, so the walk reaches it last
    tmpfs(work / "top" / "last" / "mnt", "below")
    (work / "top" / "last" / "mnt" / "theirs").write_bytes(b"on the mount")
    _level(level)
    (tmp_path / "warm-up").mkdir()
    mountprobe.safe_rmtree(tmp_path / "warm-up")  # every module it needs, imported while it may
    os.chdir(work)
    _lock_out(how, tmp_path / "locked", work)
    before = _snapshot(Path("top"))
    with pytest.raises(MountedBelow) as caught:
        mountprobe.safe_rmtree("top")
    assert _snapshot(Path("top")) == before
    assert caught.value.during is False
    assert [m.mountpoint for m in caught.value.mounts] == [str(work / "top" / "last" / "mnt")]
    mountprobe.safe_rmtree("plain")  # with nothing mounted below, the same caller may delete
    assert sorted(os.listdir(".")) == ["top"]


@pytest.mark.parametrize("level", ["full", "no-openat2", "proc-only", "no-proc"])
@pytest.mark.parametrize("moved", ["inner", "victim", "top"])
@isolated
def test_a_directory_renamed_out_of_the_tree_mid_walk_is_left_as_it_was(moved: str, level: str, tmp_path: Path) -> None:
    top = tmp_path / "top"
    inner = top / "x" / "victim" / "inner"
    (inner / "deeper").mkdir(parents=True)  # directories first: the walk opens them first
    (inner / "deeper" / "f").write_bytes(b"deepest")
    (inner / "file").write_bytes(b"inner's")
    (top / "x" / "victim" / "file").write_bytes(b"victim's")
    (top / "x" / "sibling").write_bytes(b"s")
    (top / "y").mkdir()
    (top / "y" / "file").write_bytes(b"y's")
    renamed = {"inner": inner, "victim": top / "x" / "victim", "top": top}[moved]
    away = tmp_path / "elsewhere"
    away.mkdir()
    at_rename: Dict[bytes, Optional[bytes]] = {}

    def hook(path: bytes) -> None:
        # The walk holds descriptors of top, x, victim and inner, and is opening deeper.
        if path == b"deeper" and not at_rename:
            os.rename(renamed, away / "moved")
            at_rename.update(_snapshot(away))

    if level == "no-proc":  # each check climbs the '..' links
        _hide_proc()
        if not _lists_without_proc():
            before = _snapshot(tmp_path)
            error = _expect(mountprobe.MountprobeError, mountprobe.safe_rmtree, top)
            assert "nothing was deleted" in str(error) and _snapshot(tmp_path) == before
            return
    else:
        _level(level)
    before_open(hook)
    fds = _open_fds()
    with pytest.raises(mountprobe.MountprobeError) as caught:
        mountprobe.safe_rmtree(top)
    assert _open_fds() == fds
    assert at_rename and _snapshot(away) == at_rename  # what left the tree is as it was then
    assert (away / "moved").is_dir()
    assert not isinstance(caught.value, MountedBelow)
    assert str(renamed) in str(caught.value)
    if level != "no-proc":  # where it is now, from /proc/self/fd
        assert f"now {away / 'moved'}" in str(caught.value)
    if moved != "top":
        assert not top.exists()  # the rest of the tree went


def _open_fds() -> List[int]:
    """The open descriptors, found with fstat (no /proc needed)."""
    found = []
    for fd in range(1024):
        try:
            os.fstat(fd)
        except OSError:
            continue
        found.append(fd)
    return found


def _expect(error: type, call: object, *args: object) -> BaseException:
    with pytest.raises(error) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


ROUNDS = 40


@pytest.mark.parametrize("level", LEVELS)
@isolated
def test_every_level_deletes_refuses_and_never_leaks_a_descriptor(level: str, tmp_path: Path) -> None:
    appear: List[Path] = []  # where a mount appears when the walk opens "victim"

    def hook(path: bytes) -> None:
        if appear and path == b"victim":
            tmpfs(appear.pop(), "appeared")

    _level(level)
    before_open(hook)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "file").write_bytes(b"kept")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to("dir")
    (tmp_path / "refused" / "a").mkdir(parents=True)
    (tmp_path / "refused" / "z").mkdir()
    tmpfs(tmp_path / "refused" / "z", "below")
    (tmp_path / "mountpoint").mkdir()
    tmpfs(tmp_path / "mountpoint", "at-the-top")
    (tmp_path / "mountpoint" / "f").write_bytes(b"on the mount")
    kept = _snapshot(tmp_path)

    def one_round(i: int) -> None:
        top = tmp_path / f"top{i}"
        (top / "x" / "victim").mkdir(parents=True)
        _tree(top)
        mountprobe.safe_rmtree(top)
        assert not os.path.lexists(top)
        _expect(FileNotFoundError, mountprobe.safe_rmtree, top)
        for name in ("fifo", "file", "link"):
            _expect(NotADirectoryError, mountprobe.safe_rmtree, tmp_path / name)
        assert _expect(MountedBelow, mountprobe.safe_rmtree, tmp_path / "refused").during is False  # type: ignore[attr-defined]
        assert _expect(MountedBelow, mountprobe.safe_rmtree, tmp_path / "mountpoint").during is False  # type: ignore[attr-defined]
        (top / "x" / "victim").mkdir(parents=True)
        appear.append(top / "x" / "victim")
        assert _expect(MountedBelow, mountprobe.safe_rmtree, top).during is True  # type: ignore[attr-defined]
        assert not appear
        umount(top / "x" / "victim")
        shutil.rmtree(top)
        assert _snapshot(tmp_path) == kept

    one_round(0)  # the first call imports and probes
    fds = _open_fds()
    for i in range(ROUNDS):
        one_round(i)
    assert _open_fds() == fds

    # Errors only an unprivileged caller meets: a directory it may not read, and a tree below
    # an ancestor it may not search (EACCES from every absolute path).
    _drop_capabilities()
    for i in range(ROUNDS):
        top = tmp_path / f"locked{i}"
        (top / "locked").mkdir(parents=True)
        (top / "locked").chmod(0)
        error = _expect(PermissionError, mountprobe.safe_rmtree, top)
        assert error.filename == str(top / "locked")  # type: ignore[attr-defined]
        (top / "locked").chmod(0o700)
        if i == 0:
            fds = _open_fds()
    assert _open_fds() == fds


def _hide_proc() -> None:
    tmpfs("/proc", "no-proc")  # an empty /proc: no mountinfo, no fdinfo, no /proc/self/fd


def _lists_without_proc() -> bool:
    """Can this kernel list the mounts below a path without the table? With listmount and
    statmount records (6.15); before that the check needs mountinfo, and without /proc
    safe_rmtree refuses."""
    caps = mountprobe.capabilities()
    return bool(caps.statx_unique_id and caps.statmount_records and caps.listmount.usable)


# Without /proc: what the syscalls left can still serve it; where nothing can tell the
# mounts apart, a clear refusal (never Unsupported, which means "ask the next strategy").
@pytest.mark.parametrize("level", ["full", "no-statmount", "no-statx-no-openat2", "proc-only"])
@isolated
def test_without_proc_it_deletes_where_the_kernel_can_tell_and_else_refuses_clearly(level: str, tmp_path: Path) -> None:
    top = tmp_path / "top"
    top.mkdir()
    _tree(top)
    mounted = tmp_path / "mounted"
    (mounted / "z").mkdir(parents=True)
    tmpfs(mounted / "z", "below")
    _level(level)
    _hide_proc()
    before = _snapshot(tmp_path)
    if level == "full" and _lists_without_proc():
        mountprobe.safe_rmtree(top)
        assert not top.exists()
        assert _expect(MountedBelow, mountprobe.safe_rmtree, mounted).during is False  # type: ignore[attr-defined]
        return
    for i in range(ROUNDS):
        if i == 1:  # after the first call's imports
            fds = _open_fds()
        for path in (top, mounted):
            error = _expect(mountprobe.MountprobeError, mountprobe.safe_rmtree, path)
            assert not isinstance(error, (mountprobe.Unsupported, MountedBelow)), repr(error)
            assert "nothing was deleted" in str(error) and str(path) in str(error)
    assert _open_fds() == fds
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("level", LEVELS)
@isolated
def test_odd_arguments_raise_at_once_and_delete_nothing(level: str, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # never opened for reading: that would block for ever
    (tmp_path / "file").write_bytes(b"kept")
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to("dir")
    (tmp_path / "mountpoint").mkdir()
    tmpfs(tmp_path / "mountpoint", "at-the-top")
    (tmp_path / "file-bind").write_bytes(b"")
    bind(tmp_path / "file", tmp_path / "file-bind")
    _level(level)
    before = _snapshot(tmp_path)
    cases: List[Tuple[object, type]] = [
        (tmp_path / "fifo", NotADirectoryError),
        (os.fsencode(tmp_path / "fifo"), NotADirectoryError),
        (str(tmp_path / "file"), NotADirectoryError),
        (tmp_path / "file-bind", MountedBelow),  # a mount point, whatever its kind, at every level
        (tmp_path / "link", NotADirectoryError),
        (f"{tmp_path}/dir/sub/../../link", NotADirectoryError),
        (tmp_path / "mountpoint", MountedBelow),
        (f"{tmp_path}/mountpoint/", MountedBelow),
        (f"{tmp_path}/mountpoint/.", MountedBelow),
        ("/", MountedBelow),
        (b"/", MountedBelow),
        (0, TypeError),
        (3, TypeError),
        (None, TypeError),
        (1.5, TypeError),
        ([b"dir"], TypeError),
    ]
    for path, error in cases:
        _expect(error, mountprobe.safe_rmtree, path)
    assert _snapshot(tmp_path) == before
    os.chdir(tmp_path / "dir" / "sub")
    mountprobe.safe_rmtree(".")  # the working directory itself, named relatively
    assert not (tmp_path / "dir" / "sub").exists()
    os.chdir(tmp_path / "dir")
    mountprobe.safe_rmtree(b"../dir/")
    assert sorted(os.listdir(tmp_path)) == ["fifo", "file", "file-bind", "link", "mountpoint"]
