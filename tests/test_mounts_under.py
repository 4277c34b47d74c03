"""mounts_under: the path-aware prefix filter over the live mountinfo, from every strategy."""

from __future__ import annotations

import os
from pathlib import Path

from _ns import MS_MOVE, bind, isolated, mount, tmpfs
from _oracle import table
from _scenes import build

import mountprobe
from mountprobe import api


def kernel_under(path: bytes, include_self: bool) -> set[int]:
    top = os.fsdecode(os.path.realpath(path))
    prefix = top.rstrip("/") + "/"
    return {e.id for e in table() if (include_self if e.mountpoint == top else e.mountpoint.startswith(prefix))}


def assert_parents_first(mounts: list[mountprobe.Mount]) -> None:
    seen: set[int] = set()
    ids = {m.id for m in mounts}
    for m in mounts:
        assert m.parent_id not in ids or m.parent_id in seen, m
        seen.add(m.id)


@isolated
def test_every_strategy_lists_what_a_prefix_filter_over_mountinfo_lists(tmp_path: Path) -> None:
    tree = build(tmp_path)
    targets = [
        tree.path(),
        tree.path("a"),
        tree.path("deep"),
        tree.path("names"),
        tree.path("stack"),
        tree.path("plain"),
    ]
    targets += [tree.path("deep", "l1", "l2"), tree.path("tmpfs", "inner"), b"/"]
    for path in targets:
        for include_self in (False, True):
            results = [strategy(path, include_self, False) for _, strategy in api.strategies("mounts_under")]
            want = kernel_under(path, include_self)
            for (name, _), found in zip(api.strategies("mounts_under"), results):
                assert {m.id for m in found} == want, (name, path, include_self)
                assert_parents_first(found)
            assert [m.id for m in results[0]] == [m.id for m in results[1]]


@isolated
def test_a_is_not_below_ab(tmp_path: Path) -> None:
    tree = build(tmp_path)
    under_a = {m.mountpoint for m in mountprobe.mounts_under(tree.path("a"))}
    assert under_a == {os.fsdecode(tree.path("a", "x"))}


@isolated
def test_five_levels_come_parents_first_even_after_a_move(tmp_path: Path) -> None:
    tree = build(tmp_path)
    # Move a newer mount under an older one: the kernel then lists the child first.
    (tmp_path / "late").mkdir()
    tmpfs(tmp_path / "late", "late")
    (tmp_path / "deep" / "l1" / "moved").mkdir()
    mount(tmp_path / "late", tmp_path / "deep" / "l1" / "moved", None, MS_MOVE)
    found = mountprobe.mounts_under(tree.path("deep"))
    assert len(found) == 6
    assert_parents_first(found)
    assert [m.source for m in found[:5]] == [f"level{i}" for i in range(1, 6)] or found[0].source == "level1"


@isolated
def test_stacked_and_hidden_mounts_are_included(tmp_path: Path) -> None:
    tree = build(tmp_path)
    found = mountprobe.mounts_under(tree.path("stack"), include_self=True)
    assert [m.source for m in found] == ["lower", "hidden", "upper"] or {m.source for m in found} == {
        "lower",
        "hidden",
        "upper",
    }
    assert {m.source for m in mountprobe.mounts_under(tree.path("stack"))} == {"hidden"}


@isolated
def test_names_with_troublesome_bytes_are_listed_byte_exact(tmp_path: Path) -> None:
    tree = build(tmp_path)
    want = {p for k, p in tree.mounts.items() if k.startswith("names/")}
    for name, strategy in api.strategies("mounts_under"):
        got = {os.fsencode(m.mountpoint) for m in strategy(tree.path("names"), False, False)}
        assert got == want, name


@isolated
def test_a_file_bind_inside_is_listed(tmp_path: Path) -> None:
    tree = build(tmp_path)
    (tmp_path / "tmpfs" / "f").write_text("")
    bind(tree.path("src", "file"), tmp_path / "tmpfs" / "f")
    assert [m.mountpoint for m in mountprobe.mounts_under(tree.path("tmpfs"))] == [str(tmp_path / "tmpfs" / "f")]
