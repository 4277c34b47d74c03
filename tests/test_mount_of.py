"""mount_of, mount_at, mount_root: records equal the kernel's own line, from every strategy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import _needs
import pytest
from _ns import isolated
from _oracle import assert_is_kernel_entry, fdinfo_mount_id, unique_id, visible_at
from _scenes import build

import mountprobe


def _without_unique(m: mountprobe.Mount) -> mountprobe.Mount:
    return m._replace(unique_id=None, parent_unique_id=None)


def _unique_id_here(path: bytes) -> Optional[int]:
    """The unique id a record of this kernel carries: the kernel's wherever statmount can
    prove it (6.8: by statmount's records from 6.15, by a mountinfo line's legacy id before),
    none before 6.8."""
    caps = mountprobe.capabilities()
    return unique_id(path) if caps.statx_unique_id and caps.statmount.usable else None


@isolated
def test_mount_of_every_path_is_the_kernels_mount_from_every_strategy(tmp_path: Path) -> None:
    tree = build(tmp_path)
    for path in [*tree.every_path, b"/", b"/proc/self"]:
        records = [strategy(path, True, False) for _, strategy in _needs.offered("mount_of")]
        assert records[0].id == fdinfo_mount_id(path), path
        assert records[0].unique_id == _unique_id_here(path), path
        assert_is_kernel_entry(records[0])
        assert len({_without_unique(m) for m in records}) == 1, records
        assert mountprobe.mount_of(path) == records[0]
        assert mountprobe.mount_root(path) == records[0].mountpoint


@isolated
def test_mount_at_returns_the_top_of_a_stack_and_none_where_nothing_is_mounted(tmp_path: Path) -> None:
    tree = build(tmp_path)
    for path in tree.every_path:
        want = visible_at(os.fsdecode(os.path.realpath(path)))
        for name, strategy in _needs.offered("mount_at"):
            got = strategy(path, False)
            if want is None:
                assert got is None, (name, path)
            else:
                assert got is not None and got.id == want.id == fdinfo_mount_id(path), (name, path)
    top = mountprobe.mount_at(tree.path("stack"))
    assert top is not None and top.source == "upper"


@isolated
def test_symlinks_are_followed_unless_asked_not_to(tmp_path: Path) -> None:
    tree = build(tmp_path)
    link = tree.path("link")
    for name, strategy in _needs.offered("mount_of"):
        assert strategy(link, True, False).mountpoint == os.fsdecode(tree.path("tmpfs")), name
        assert strategy(link, False, False).id == fdinfo_mount_id(link, follow=False), name


@isolated
def test_names_with_every_troublesome_byte_come_back_byte_exact(tmp_path: Path) -> None:
    tree = build(tmp_path)
    for key, path in tree.mounts.items():
        if not key.startswith("names/"):
            continue
        for name, strategy in _needs.offered("mount_of"):
            m = strategy(path, True, False)
            assert os.fsencode(m.mountpoint) == path, (name, path)
            assert m.source == "nasty"
        assert os.fsencode(mountprobe.mount_of(path.decode("utf-8", "surrogateescape")).mountpoint) == path


@isolated
def test_a_subtree_bind_reports_its_root_inside_the_filesystem(tmp_path: Path) -> None:
    tree = build(tmp_path)
    for name, strategy in _needs.offered("mount_of"):
        assert strategy(tree.path("otherfs"), True, False).root == "/dir", name
        assert strategy(tree.path("samefs"), True, False).root == os.fsdecode(b"/src"), name
        assert strategy(tree.path("filebind"), True, False).root == "/src/file", name


def test_missing_path_raises_for_every_point_query() -> None:
    for call in (mountprobe.mount_of, mountprobe.mount_at, mountprobe.mount_root, mountprobe.mounts_under):
        with pytest.raises(FileNotFoundError):
            call("/nonexistent/x")


def test_last_answer_names_the_strategy_that_answered() -> None:
    mountprobe.mount_of("/proc")
    answer = mountprobe.last_answer()
    assert answer is not None and answer.question == "mount_of"
    assert answer.strategy == _needs.offered("mount_of")[0][0]  # statmount from 6.15 on, else mountinfo
