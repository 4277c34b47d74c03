"""mounts_under: the mounts reachable below a path (the tree under the mount holding it, as
findmnt --submounts and listmount see it), filtered component-wise, from every strategy."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Optional

import _needs
import pytest
from _ns import MS_MOVE, bind, isolated, mount, tmpfs
from _oracle import fdinfo_mount_id, table
from _scenes import build

import mountprobe
import mountprobe.filters as filters


def kernel_under(path: bytes, include_self: bool) -> set[int]:
    """From the live table: the tree below the bottom of the stack holding ``path`` (its
    mount found by the kernel's fdinfo mount id), filtered by mount point."""
    top = os.fsdecode(os.path.realpath(path))
    prefix = top.rstrip("/") + "/"
    entries = table()
    by_id = {e.id: e for e in entries}
    bottom = by_id[fdinfo_mount_id(path)]
    while bottom.parent_id in by_id and by_id[bottom.parent_id].mountpoint == bottom.mountpoint:
        bottom = by_id[bottom.parent_id]
    tree = {bottom.id}
    for _ in entries:
        tree |= {e.id for e in entries if e.parent_id in tree}
    return {
        e.id
        for e in entries
        if e.id in tree and (include_self if e.mountpoint == top else e.mountpoint.startswith(prefix))
    }


def prefix_filter(path: bytes, include_self: bool) -> set[int]:
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
def test_every_strategy_lists_the_tree_below_the_path(tmp_path: Path) -> None:
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
            results = [strategy(path, include_self, False) for _, strategy in _needs.offered("mounts_under")]
            want = kernel_under(path, include_self)
            assert want == prefix_filter(path, include_self)  # no covered mount in this tree
            for (name, _), found in zip(_needs.offered("mounts_under"), results):
                assert {m.id for m in found} == want, (name, path, include_self)
                assert_parents_first(found)
            assert all([m.id for m in found] == [m.id for m in results[0]] for found in results)  # the same order


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
    for name, strategy in _needs.offered("mounts_under"):
        got = {os.fsencode(m.mountpoint) for m in strategy(tree.path("names"), False, False)}
        assert got == want, name


@isolated
def test_a_file_bind_inside_is_listed(tmp_path: Path) -> None:
    tree = build(tmp_path)
    (tmp_path / "tmpfs" / "f").write_text("")
    bind(tree.path("src", "file"), tmp_path / "tmpfs" / "f")
    assert [m.mountpoint for m in mountprobe.mounts_under(tree.path("tmpfs"))] == [str(tmp_path / "tmpfs" / "f")]


@isolated
def test_a_mount_covered_by_the_mount_holding_the_path_is_not_reachable_from_any_strategy(tmp_path: Path) -> None:
    # /usb is mounted, then a tmpfs over its parent: /usb is hidden, attached to the scratch
    # mount beneath. A walk from the path cannot reach it, nor can umount -R, and findmnt
    # --submounts does not list it; a bare prefix filter over mountinfo would.
    (tmp_path / "mnt" / "usb").mkdir(parents=True)
    tmpfs(tmp_path / "mnt" / "usb", "usb")
    tmpfs(tmp_path / "mnt", "cover")
    (tmp_path / "mnt" / "usb").mkdir()
    tmpfs(tmp_path / "mnt" / "usb", "visible")
    path = os.fsencode(tmp_path / "mnt")
    for include_self in (False, True):
        want = kernel_under(path, include_self)
        assert len(prefix_filter(path, include_self) - want) == 1  # the covered "usb"
        for name, strategy in _needs.offered("mounts_under"):
            found = strategy(path, include_self, False)
            assert {m.id for m in found} == want, name
            assert "usb" not in {m.source for m in found}, name
    assert [m.source for m in mountprobe.mounts_under(path, include_self=True)] == ["cover", "visible"]
    if shutil.which("findmnt"):
        out = subprocess.run(
            ["findmnt", "--submounts", "--mountpoint", path, "-n", "-r", "-o", "ID"], capture_output=True, check=True
        ).stdout
        assert {int(n) for n in out.split()} == kernel_under(path, True)
    assert [m.source for m in mountprobe.mounts_under(tmp_path)] == ["usb", "cover", "visible"]


# -- a plain directory: the statmount sweep or one mountinfo read sifted by mount point -------


def _statmount_listing() -> None:
    caps = mountprobe.capabilities()
    if not (caps.statx_unique_id and caps.statmount_records and caps.listmount.usable):
        pytest.skip("the two paths are the statmount strategy's: statmount and listmount (6.8; records 6.15)")


def _by_path(path: bytes, include_self: bool, table: bool, fstype: Optional[str] = None) -> list[mountprobe.Mount]:
    """The statmount strategy's answer with its choice forced: every subtree swept, or every
    one sifted from mountinfo (where the read cannot be trusted the test fails, since then
    the sweep would answer instead). With ``fstype``, ``mounts_under(fstype=)``'s."""
    from mountprobe.strategies import statmount as sm

    def no_sweep(
        ids: list[int], at: bytes, include_self: bool, with_propagate_from: bool, needle: Optional[filters.Needle]
    ) -> list[mountprobe.Mount]:
        raise AssertionError("the mountinfo path gave up")

    saved = sm._SWEEP_ALWAYS, sm._table_is_cheaper, sm._below_by_sweep
    sm._SWEEP_ALWAYS = -1
    sm._table_is_cheaper = lambda subtree, listed: table
    if table:
        sm._below_by_sweep = no_sweep
    try:
        if fstype is None:
            return sm.mounts_under(path, include_self, False)
        # Imported before any chroot (see the module's imports).
        wanted = filters.needle(None, fstype, None, None, mountprobe.mount_of, False)
        return sm.mounts_under_matching(path, include_self, wanted, False)
    finally:
        sm._SWEEP_ALWAYS, sm._table_is_cheaper, sm._below_by_sweep = saved


def _assert_both_paths_agree(paths: list[bytes], oracle: Callable[[bytes, bool], set[int]] = kernel_under) -> None:
    for path in paths:
        for include_self in (False, True):
            swept = _by_path(path, include_self, table=False)
            sifted = _by_path(path, include_self, table=True)
            assert sifted == swept, (path, include_self)
            assert {m.id for m in swept} == oracle(path, include_self), (path, include_self)
            assert_parents_first(swept)
            # Sifted by type before any record is built, on either path: the same records.
            for fstype in ("tmpfs", "nosuchfs"):
                expected = [m for m in swept if m.fstype == fstype]
                assert _by_path(path, include_self, False, fstype) == expected, (path, include_self, fstype)
                assert _by_path(path, include_self, True, fstype) == expected, (path, include_self, fstype)


@isolated
def test_a_plain_directory_is_answered_alike_by_the_sweep_and_by_the_sifted_mountinfo(tmp_path: Path) -> None:
    _statmount_listing()
    tree = build(tmp_path)  # names with \040, \011, \012, \134 and non-UTF-8 bytes; binds; a stack
    # A covered mount below a plain directory (reachable: on the mount holding the path) and
    # one a plain directory of the cover shows by name but that is not reachable from it.
    for d in ("pods/mnt/usb", "pods/c/d/e"):
        (tmp_path / d).mkdir(parents=True)
    tmpfs(tmp_path / "pods" / "mnt" / "usb", "usb")
    tmpfs(tmp_path / "pods" / "mnt", "cover")
    (tmp_path / "pods" / "mnt" / "usb").mkdir()
    tmpfs(tmp_path / "pods" / "c" / "d" / "e", "e")
    # A bind of c over itself: d is a plain directory of it, and e, below d by name, is on
    # the mount beneath, out of its tree.
    bind(tmp_path / "pods" / "c", tmp_path / "pods" / "c")
    (tmp_path / "pods" / "names").mkdir()
    bind(tree.path("names"), tmp_path / "pods" / "names", recursive=True)
    os.symlink(tree.path("names"), tmp_path / "namelink")
    paths = [*tree.plain.values(), *tree.mounts.values(), tree.path("link"), os.fsencode(tmp_path / "namelink")]
    paths += [os.fsencode(tmp_path / p) for p in ("pods", "pods/mnt/usb", "pods/c/d", "pods/names", "pods/c")]
    _assert_both_paths_agree(paths)
    for hidden in ("pods/mnt/usb", "pods/c/d"):  # their lines pass the sift; not in the tree
        assert _by_path(os.fsencode(tmp_path / hidden), True, table=True) == [], hidden
    assert {m.source for m in _by_path(os.fsencode(tmp_path / "pods"), False, table=True)} >= {"usb", "cover", "e"}


@isolated
def test_a_plain_directory_in_a_chroot_is_answered_alike_by_both_paths(tmp_path: Path) -> None:
    _statmount_listing()
    jail = tmp_path / "jail"  # a plain directory: the mount holding "/" lies outside the root
    for d in ("proc", "pods/a b", "pods/x", "busy/inner", "plain"):
        (jail / d).mkdir(parents=True)
    tmpfs(jail / "pods" / "a b", "spaced")
    tmpfs(jail / "pods" / "x", "x")
    tmpfs(jail / "busy" / "inner", "inner")
    mount("proc", jail / "proc", "proc")
    mountprobe.mounts_under("/proc")  # loads what the strategies import late
    os.chroot(jail)
    os.chdir("/")
    # Every mount seen here lies on the mount holding "/", which no table here shows.
    _assert_both_paths_agree([b"/", b"/pods", b"/busy", b"/plain", b"/pods/a b"], prefix_filter)
    assert {m.source for m in _by_path(b"/pods", False, table=True)} == {"spaced", "x"}
