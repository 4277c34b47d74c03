"""safe_rmtree never deletes across a mount: with a mount below it refuses and deletes nothing;
a mount that appears during the walk (made at an exact point by a seccomp supervisor that
runs before the walk's open) is left untouched, with openat2 and without it."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from _ns import bind, isolated, tmpfs, umount
from _scenes import NASTY_NAMES
from _seccomp import before_open, fail_syscalls

import mountprobe
from mountprobe import MountedBelow

WAYS = ("openat2", "mount-ids")  # how the walk refuses a crossing


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
        except OSError:  # in a user namespace that maps only our uid
            pytest.skip("cannot become another uid here, and root reads every directory")
    with pytest.raises(PermissionError) as caught:
        mountprobe.safe_rmtree("top")
    assert caught.value.filename is not None and caught.value.filename.endswith("/top/locked")
    assert os.path.isdir("top/locked")
