"""is_mountpoint: every strategy of the chain agrees with the live mountinfo on real mounts."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable

import pytest
from _ns import isolated
from _oracle import table
from _scenes import build

import mountprobe
from mountprobe import api

STRATEGIES = [pytest.param(fn, id=name) for name, fn in api.strategies("is_mountpoint")]


def kernel_says_mountpoint(path: bytes) -> bool:
    real = os.path.realpath(path)
    return real == b"/" or os.fsdecode(real) in {e.mountpoint for e in table()}


@isolated
def test_every_strategy_agrees_with_mountinfo_on_the_standard_tree(tmp_path: Path) -> None:
    tree = build(tmp_path)
    for path in tree.every_path:
        expected = kernel_says_mountpoint(path)
        assert expected == (path in tree.mounts.values()), path
        for name, strategy in api.strategies("is_mountpoint"):
            assert strategy(path, True) is expected, (name, path)
        assert mountprobe.is_mountpoint(path) is expected


@isolated
def test_bind_false_counts_only_another_filesystem(tmp_path: Path) -> None:
    tree = build(tmp_path)
    other_fs = {"tmpfs", "other", "otherfs", "stack", "a", "ab", "a/x", "ab/y"} | {
        k for k in tree.mounts if k.startswith(("deep", "names/"))
    }
    for key, path in tree.mounts.items():
        parent = os.stat(os.path.dirname(path)).st_dev
        assert (os.stat(path).st_dev != parent) == (key in other_fs), key
        assert mountprobe.is_mountpoint(path, bind=False) is (key in other_fs), key
    for path in tree.plain.values():
        assert mountprobe.is_mountpoint(path, bind=False) is False


@isolated
def test_symlink_to_a_mount_point_is_followed_unless_asked_not_to(tmp_path: Path) -> None:
    tree = build(tmp_path)
    link = tree.path("link")
    for name, strategy in api.strategies("is_mountpoint"):
        assert strategy(link, True) is True, name
        assert strategy(link, False) is False, name
    assert mountprobe.is_mountpoint(link, follow_symlinks=False) is False


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_root_is_a_mount_point(strategy: Callable[..., bool]) -> None:
    assert strategy(b"/", True) is True
    assert strategy(b"//", True) is True
    assert strategy(b"/proc/..", True) is True


def test_root_is_a_mount_point_with_and_without_bind() -> None:
    assert mountprobe.is_mountpoint("/") is True
    assert mountprobe.is_mountpoint("/", bind=False) is True


@isolated
def test_trailing_slash_dot_and_relative_paths_answer_like_the_canonical_path(tmp_path: Path) -> None:
    build(tmp_path)
    os.chdir(tmp_path)
    for spelling in ("tmpfs", "tmpfs/", "./tmpfs", "tmpfs/inner/..", "plain/../tmpfs", f"{tmp_path}//tmpfs"):
        assert mountprobe.is_mountpoint(spelling) is True, spelling
    assert mountprobe.is_mountpoint("tmpfs/inner") is False
    assert mountprobe.is_mountpoint(".") is True  # the scratch tmpfs itself


@isolated
def test_file_bind_mount_is_a_mount_point_and_file_slash_is_not_a_directory(tmp_path: Path) -> None:
    tree = build(tmp_path)
    assert mountprobe.is_mountpoint(tree.path("filebind")) is True
    assert mountprobe.is_mountpoint(tree.path("src", "file")) is False
    for _name, strategy in api.strategies("is_mountpoint"):
        with pytest.raises(NotADirectoryError):
            strategy(tree.path("filebind") + b"/", True)
        with pytest.raises(NotADirectoryError):
            strategy(tree.path("src", "file") + b"/x", True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_missing_path_raises_file_not_found_never_false(strategy: Callable[..., bool]) -> None:
    with pytest.raises(FileNotFoundError):
        strategy(b"/nonexistent/path", True)
    with pytest.raises(FileNotFoundError):
        strategy(b"/nonexistent", False)


def test_a_missing_path_raises_through_the_api() -> None:
    with pytest.raises(FileNotFoundError) as info:
        mountprobe.is_mountpoint("/nonexistent/path")
    assert info.value.filename == "/nonexistent/path"


@pytest.mark.parametrize("bad", ["", b"", "/tmp\0x", b"/proc\0"])
def test_empty_path_and_embedded_nul_raise_value_error(bad: str | bytes) -> None:
    for call in (
        mountprobe.is_mountpoint,
        mountprobe.mount_of,
        mountprobe.mount_at,
        mountprobe.mount_root,
        mountprobe.mounts_under,
        mountprobe.is_mounted,
    ):
        with pytest.raises(ValueError):
            call(bad)


def test_str_bytes_and_pathlike_give_the_same_answer() -> None:
    assert (
        mountprobe.is_mountpoint("/proc")
        is mountprobe.is_mountpoint(b"/proc")
        is mountprobe.is_mountpoint(Path("/proc"))
    )


@isolated
def test_without_proc_a_path_is_rebuilt_by_readlink_like_the_kernel_resolves_it(tmp_path: Path) -> None:
    from mountprobe.strategies import _resolve

    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "abs").symlink_to(tmp_path / "d")
    (tmp_path / "d" / "rel").symlink_to("e/../e")
    (tmp_path / "d" / "e" / "f").write_bytes(b"")
    (tmp_path / "d" / "e" / "dangling").symlink_to("nowhere")
    os.chdir(tmp_path)
    spellings = [b"abs", b"abs/rel", b"abs/rel/f", b"./d/rel/../rel//f", b"d/../abs/e/..", b"/", b"d/e/dangling"]
    for path in spellings:
        for follow in (True, False):
            if path == b"d/e/dangling" and follow:
                continue
            assert _resolve._walk(path, follow) == _resolve.canonical(path, follow), (path, follow)
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(OSError) as raised:
        _resolve._walk(os.fsencode(tmp_path / "loop"), True)
    assert raised.value.errno == errno.ELOOP
