"""Records are the same whatever strategy built them, field by field, on every mount type."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _ns import (
    MS_SHARED,
    MS_SLAVE,
    MS_UNBINDABLE,
    bind,
    in_user_namespace,
    isolated,
    mount,
    propagation,
    tmpfs,
)
from _oracle import assert_is_kernel_entry, table
from _scenes import build

import mountprobe
from mountprobe import api, probe
from mountprobe.kernel import mount as kmount
from mountprobe.strategies import mountinfo as by_mountinfo
from mountprobe.strategies import statmount as by_statmount


def _each_way(propagate_from: bool = False) -> list[mountprobe.Mount]:
    """The table as every record strategy this kernel offers builds it, checked equal: the
    statmount one where a reply holds every field of a mountinfo line (6.15's supported_mask;
    before it mountprobe itself takes records from mountinfo), and the mountinfo one, which
    is returned. Each record is also checked against the kernel's own line."""
    via_mountinfo = by_mountinfo.list_mounts(propagate_from)
    if probe.capabilities().statmount_records:
        via_statmount = by_statmount._records(kmount.listmount_all(kmount.LSMT_ROOT), propagate_from)
        assert via_statmount == via_mountinfo
    for m in via_mountinfo:
        assert_is_kernel_entry(m)
    return via_mountinfo


@isolated
def test_list_mounts_equals_the_live_mountinfo_through_both_strategies(tmp_path: Path) -> None:
    build(tmp_path)
    via_mountinfo = _each_way()
    assert [m.id for m in via_mountinfo] == [e.id for e in table()]
    assert mountprobe.list_mounts() == via_mountinfo


@isolated
def test_propagation_fields_match_mountinfo(tmp_path: Path) -> None:
    for name in ("shared", "slave", "private", "unbindable", "peer", "sharedslave"):
        (tmp_path / name).mkdir()
        tmpfs(tmp_path / name, name)
    propagation(tmp_path / "shared", MS_SHARED)
    bind(tmp_path / "shared", tmp_path / "peer")  # joins the peer group
    bind(tmp_path / "shared", tmp_path / "slave")
    propagation(tmp_path / "slave", MS_SLAVE)
    propagation(tmp_path / "sharedslave", MS_SHARED)
    propagation(tmp_path / "unbindable", MS_UNBINDABLE)
    via_mountinfo = _each_way()
    by_point = {os.path.basename(m.mountpoint): m for m in via_mountinfo}
    assert by_point["shared"].propagation == "shared"
    assert by_point["peer"].shared == by_point["shared"].shared is not None
    assert by_point["slave"].propagation == "private,slave"
    assert by_point["slave"].master == by_point["shared"].shared
    assert by_point["unbindable"].propagation == "private,unbindable"
    assert by_point["private"].propagation == "private"


@isolated
def test_propagate_from_is_filled_only_when_asked_and_then_equals_mountinfo(tmp_path: Path) -> None:
    # mountinfo prints propagate_from:N for a slave whose master group has no peer under
    # the reader's root while a group further up does. Build that and read it from a
    # chroot: c is a slave of b's group (outside the jail), b a slave of a's group, and a2
    # (a peer of a) lies inside the jail.
    for d in ("a", "hidden/b", "jail/c", "jail/a2", "jail/proc"):
        (tmp_path / d).mkdir(parents=True)
    tmpfs(tmp_path / "a", "pf")
    propagation(tmp_path / "a", MS_SHARED)
    bind(tmp_path / "a", tmp_path / "hidden" / "b")
    propagation(tmp_path / "hidden" / "b", MS_SLAVE)
    propagation(tmp_path / "hidden" / "b", MS_SHARED)
    bind(tmp_path / "hidden" / "b", tmp_path / "jail" / "c")
    propagation(tmp_path / "jail" / "c", MS_SLAVE)
    bind(tmp_path / "a", tmp_path / "jail" / "a2")
    bind("/proc", tmp_path / "jail" / "proc", recursive=True)
    for question in api.CHAINS:  # load every module now: the jail holds no Python
        api.strategies(question)
    os.chroot(tmp_path / "jail")
    os.chdir("/")
    with open("/proc/thread-self/mountinfo", "rb") as f:
        printed = f.read().count(b"propagate_from:")
    assert printed >= 1
    assert all(m.propagate_from is None for m in mountprobe.list_mounts())
    asked_mountinfo = _each_way(propagate_from=True)
    assert sum(m.propagate_from is not None for m in asked_mountinfo) == printed
    c = mountprobe.mount_at("/c", propagate_from=True)
    assert c is not None and c.master is not None and c.propagate_from is not None
    assert c.propagate_from != c.master
    assert mountprobe.mount_at("/c").propagate_from is None  # type: ignore[union-attr]


@isolated
def test_read_only_and_flag_options_round_trip(tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir()
    (tmp_path / "flags").mkdir()
    tmpfs(tmp_path / "ro", "ro")
    mount(None, tmp_path / "ro", None, 0x20 | 0x1000 | 0x1)  # MS_REMOUNT|MS_BIND|MS_RDONLY
    mount("flags", tmp_path / "flags", "tmpfs", 0x2 | 0x4 | 0x8 | 0x400 | 0x800 | 0x10 | 0x80, "mode=700,size=1m")
    _each_way()
    ro = mountprobe.mount_at(tmp_path / "ro")
    assert ro is not None and ro.read_only and ro.options[0] == "ro" and ro.super_options[0] == "rw"
    flags = mountprobe.mount_at(tmp_path / "flags")
    assert flags is not None
    assert set(flags.options) >= {"nosuid", "nodev", "noexec", "noatime", "nodiratime"}
    assert {"sync", "dirsync", "size=1024k", "mode=700"} <= set(flags.super_options)


@isolated
def test_overlayfs_records_agree_and_its_root_is_a_mount_point(tmp_path: Path) -> None:
    for d in ("lower", "upper", "work", "merged"):
        (tmp_path / d).mkdir()
    (tmp_path / "lower" / "f").write_text("x")
    opts = f"lowerdir={tmp_path}/lower,upperdir={tmp_path}/upper,workdir={tmp_path}/work"
    try:
        mount("overlay", tmp_path / "merged", "overlay", 0, opts + (",userxattr" if in_user_namespace() else ""))
    except OSError as exc:
        pytest.skip(f"overlayfs unavailable here: {exc}")
    merged = os.fsencode(tmp_path / "merged")
    assert mountprobe.is_mountpoint(merged) is True
    assert mountprobe.is_mountpoint(merged + b"/f") is False
    from mountprobe import api

    for name, strategy in api.strategies("is_mountpoint"):
        assert strategy(merged, True) is True, name
        if name == "handle" and not probe.capabilities().handle_fid:
            # Before AT_HANDLE_FID (6.5) overlayfs gives no handle, for the file nor its
            # parent: the strategy declines and the chain asks the next one.
            with pytest.raises(mountprobe.Unsupported, match="EOPNOTSUPP"):
                strategy(merged + b"/f", True)
            continue
        assert strategy(merged + b"/f", True) is False, name
    m = mountprobe.mount_of(merged + b"/f")
    assert m.fstype == "overlay" and m.mountpoint == os.fsdecode(merged)
    assert_is_kernel_entry(m)
    _each_way()


@isolated
def test_nsfs_file_bind_of_a_pyroute2_netns_is_a_mount_point(tmp_path: Path) -> None:
    netns = pytest.importorskip("pyroute2.netns")
    path = str(tmp_path / "netns" / "mp-test")
    netns.create(path)
    try:
        assert mountprobe.is_mountpoint(path) is True
        m = mountprobe.mount_at(path)
        assert m is not None and m.fstype == "nsfs"
        assert_is_kernel_entry(m)
        from mountprobe import api

        for name, strategy in api.strategies("is_mountpoint"):
            assert strategy(os.fsencode(path), True) is True, name
        assert mountprobe.is_mounted(path, fstype="nsfs")
        _each_way()
    finally:
        netns.remove(path)
    assert not os.path.exists(path)


@isolated
def test_fuse_subtype_is_part_of_fstype(tmp_path: Path) -> None:
    try:
        fd = os.open("/dev/fuse", os.O_RDWR)
    except OSError as exc:
        pytest.skip(f"cannot open /dev/fuse here: {exc.strerror}")
    (tmp_path / "fuse").mkdir()
    try:
        mount("mysrc", tmp_path / "fuse", "fuse.myfs", 0, f"fd={fd},rootmode=40000,user_id=0,group_id=0")
    except OSError as exc:
        pytest.skip(f"cannot mount fuse here: {exc}")
    # Nobody answers INIT: mountprobe must still describe the mount from the kernel table.
    via_mountinfo = _each_way()
    m = next(m for m in via_mountinfo if m.mountpoint == str(tmp_path / "fuse"))
    assert m.fstype == "fuse.myfs" and m.source == "mysrc"
    assert mountprobe.is_mountpoint(tmp_path / "fuse") is True


@isolated
def test_read_mountinfo_is_the_whole_table_and_consistent_reads_agree(tmp_path: Path) -> None:
    build(tmp_path)
    with open("/proc/thread-self/mountinfo", "rb") as f:
        expected = f.read()
    assert mountprobe.read_mountinfo() == expected
    assert mountprobe.read_mountinfo(consistent=True) == expected
    assert [m.id for m in mountprobe.parse_mountinfo(mountprobe.read_mountinfo())] == [e.id for e in table()]
    with pytest.raises(FileNotFoundError):
        mountprobe.read_mountinfo("/proc/999999999/mountinfo")
