"""Caches kept between calls stay bounded while mounts come and go (issue 18): a long-lived
agent on a host whose mounts each bring their own options (a tmpfs ``size=``, an overlay's
layers) and their own unique ids must not grow its memory with the churn."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _ns import MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, isolated, mount, tmpfs, umount
from _oracle import table

import mountprobe
from mountprobe.kernel import mount as k
from mountprobe.strategies import statmount


def _statmount_records() -> None:
    caps = mountprobe.capabilities()
    if not (caps.statx_unique_id and caps.statmount_records and caps.listmount.usable):
        pytest.skip("the caches belong to the statmount paths: statmount records and listmount (6.8; records 6.15)")


@isolated
def test_statmount_option_caches_stay_bounded_while_mounts_with_their_own_options_come_and_go(tmp_path: Path) -> None:
    _statmount_records()
    statmount._CACHE_MAX = 16  # the bound, made small enough to overflow many times here
    place = tmp_path / "m"
    place.mkdir()
    for i in range(100):
        flags = (0, MS_NOSUID, MS_NODEV | MS_NOEXEC, MS_RDONLY)[i % 4]
        mount(f"churn{i}", place, "tmpfs", flags, f"size={64 + i}k,mode=0{i % 8}{i // 8 % 8}0")
        m = mountprobe.mount_of(place)
        assert mountprobe.last_answer().strategy == "statmount"  # type: ignore[union-attr]
        line = next(e for e in table() if e.id == m.id)
        assert (m.options, m.super_options) == (line.options, line.super_options)
        umount(place)
        assert len(statmount._super_cache) <= 16 and len(statmount._vfs_cache) <= 16
    long = b"x=" + b"y" * 300  # one per mount (an overlay's layers): never kept
    statmount._super_options(0, long)
    assert (0, long) not in statmount._super_cache


@isolated
def test_holders_caches_keep_only_mounts_that_exist(tmp_path: Path) -> None:
    _statmount_records()
    pytest.importorskip("psutil", reason="holders() reads the namespaces of processes through psutil")
    from mountprobe import inventory

    stable = tmp_path / "stable"
    stable.mkdir()
    tmpfs(stable, "stable")
    for i in range(30):
        place = tmp_path / f"c{i}"
        place.mkdir()
        tmpfs(place, f"churn{i}")
        assert [h.mount.mountpoint for h in mountprobe.holders(place)] == [os.fsdecode(place)]
        umount(place)
        mountprobe.holders(stable)
        live = set(k.listmount_all(k.LSMT_ROOT))
        assert set(inventory._sb_cache) <= live and set(inventory._source_cache) <= live
    assert set(inventory._sb_cache) == live  # and what is known of the live ones is kept
