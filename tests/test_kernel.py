"""The kernel layer: errno preserved, buffers grown, replies decoded as the kernel wrote them."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import _needs
import pytest
from _ns import isolated, mount, tmpfs, umount
from _oracle import fdinfo_mount_id, unique_id

from mountprobe import probe
from mountprobe.kernel import fhandle, openat2, statx
from mountprobe.kernel import mount as km


def test_statx_reports_the_mount_root_attribute_and_unique_id() -> None:
    st = statx.statx(statx.AT_FDCWD, b"/proc", statx.AT_NO_AUTOMOUNT, statx.STATX_MNT_ID_UNIQUE)
    assert st.attributes & statx.STATX_ATTR_MOUNT_ROOT
    if probe.capabilities().statx_unique_id:
        assert st.mask & statx.STATX_MNT_ID_UNIQUE
        assert st.mnt_id == unique_id("/proc")
    else:  # before 6.8 the bit is ignored silently: the legacy id, flagged as such
        assert st.mask & statx.STATX_MNT_ID and not st.mask & statx.STATX_MNT_ID_UNIQUE
        assert st.mnt_id == fdinfo_mount_id("/proc")
    legacy = statx.statx(statx.AT_FDCWD, b"/proc/self", statx.AT_NO_AUTOMOUNT, statx.STATX_MNT_ID)
    assert legacy.mnt_id == fdinfo_mount_id("/proc/self")
    assert not legacy.attributes & statx.STATX_ATTR_MOUNT_ROOT


def test_statx_errors_keep_their_errno_and_path() -> None:
    with pytest.raises(FileNotFoundError) as info:
        statx.statx(statx.AT_FDCWD, b"/nonexistent", 0, statx.STATX_TYPE)
    assert info.value.errno == errno.ENOENT and info.value.filename == "/nonexistent"
    with pytest.raises(OSError) as bad:
        statx.statx(statx.AT_FDCWD, b"/", 0x80000000, statx.STATX_TYPE)
    assert bad.value.errno == errno.EINVAL


def test_openat2_no_xdev_fails_with_exdev_into_another_mount() -> None:
    dirfd = openat2.openat2(statx.AT_FDCWD, b"/", os.O_PATH | os.O_CLOEXEC)
    try:
        with pytest.raises(OSError) as info:
            openat2.openat2(dirfd, b"proc", os.O_PATH | os.O_CLOEXEC, openat2.RESOLVE_NO_XDEV)
        assert info.value.errno == errno.EXDEV
        fd = openat2.openat2(dirfd, b"etc", os.O_PATH | os.O_CLOEXEC, openat2.RESOLVE_NO_XDEV)
        os.close(fd)
    finally:
        os.close(dirfd)


def test_name_to_handle_at_gives_the_mount_id_even_when_the_buffer_is_too_small() -> None:
    small = fhandle.name_to_handle_at(statx.AT_FDCWD, b"/etc", 0, 0)
    assert small.data is None and small.size > 0
    assert small.mount_id == fdinfo_mount_id("/etc")
    full = fhandle.name_to_handle_at(statx.AT_FDCWD, b"/etc", 0, small.size)
    assert full.data is not None and len(full.data) == small.size and full.mount_id == small.mount_id
    with pytest.raises(OSError) as info:
        fhandle.name_to_handle_at(statx.AT_FDCWD, b"/proc", 0, 0)  # procfs has no export ops
    assert info.value.errno == errno.EOPNOTSUPP
    if not probe.capabilities().handle_fid:  # before 6.5: an unknown flag
        with pytest.raises(OSError) as unknown:
            fhandle.name_to_handle_at(statx.AT_FDCWD, b"/proc", fhandle.AT_HANDLE_FID, 0)
        assert unknown.value.errno == errno.EINVAL
        return
    fid = fhandle.name_to_handle_at(statx.AT_FDCWD, b"/proc", fhandle.AT_HANDLE_FID, 0)
    assert fid.mount_id == fdinfo_mount_id("/proc")


def test_listmount_from_the_root_includes_the_root_and_statmount_unknown_ids_fail() -> None:
    _needs.statmount()
    ids = km.listmount(km.LSMT_ROOT)
    assert unique_id("/") in ids
    with pytest.raises(OSError) as info:
        km.statmount(1, km.STATMOUNT_MNT_BASIC)  # a legacy-range id
    assert info.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        km.statmount(max(ids) + 10_000, km.STATMOUNT_MNT_BASIC)


@isolated
def test_statmount_grows_its_buffer_for_long_options(tmp_path: Path) -> None:
    _needs.statmount()
    # overlayfs with a long lowerdir list: its options overflow the first 4 KiB buffer.
    # mount(2) takes one page of options, and the reply needs 512 bytes more than its strings.
    layers: list[str] = []
    while len("lowerdir=" + ":".join(layers)) < 3900:
        layer = tmp_path / f"L{len(layers):03d}"
        layer.mkdir()
        layers.append(str(layer))
    layers.pop()
    (tmp_path / "merged").mkdir()
    try:
        mount("overlay", tmp_path / "merged", "overlay", 0, "lowerdir=" + ":".join(layers))
    except OSError as exc:
        pytest.skip(f"overlayfs unavailable: {exc}")
    st = statx.statx(statx.AT_FDCWD, os.fsencode(tmp_path / "merged"), 0, statx.STATX_MNT_ID_UNIQUE)
    reply = km.statmount(st.mnt_id, km.STATMOUNT_MNT_OPTS | km.STATMOUNT_MNT_POINT)
    assert reply.mnt_opts is not None and 512 + len(reply.mnt_opts) + len(reply.mnt_point or b"") + 2 > 4096
    assert os.fsencode(layers[-1]) in reply.mnt_opts
    assert reply.mnt_point == os.fsencode(tmp_path / "merged")


@isolated
def test_listmount_pages_through_more_ids_than_one_batch(tmp_path: Path) -> None:
    _needs.statmount()
    for i in range(700):
        (tmp_path / str(i)).mkdir()
        tmpfs(tmp_path / str(i))
    top = statx.statx(statx.AT_FDCWD, os.fsencode(tmp_path), 0, statx.STATX_MNT_ID_UNIQUE).mnt_id
    ids = km.listmount_all(top)
    assert len(ids) == len(set(ids)) == 700
    assert ids == sorted(ids)


@isolated
def test_a_mount_gone_between_listmount_and_statmount_is_skipped(tmp_path: Path) -> None:
    _needs.statmount()
    from mountprobe.strategies import statmount as strategy

    for name in ("stays", "goes"):
        (tmp_path / name).mkdir()
        tmpfs(tmp_path / name, name)
    top = statx.statx(statx.AT_FDCWD, os.fsencode(tmp_path), 0, statx.STATX_MNT_ID_UNIQUE).mnt_id
    ids = km.listmount_all(top)
    assert len(ids) == 2
    umount(tmp_path / "goes")
    # by mount point: the source is in a reply from 6.13 (STATMOUNT_SB_SOURCE) only
    assert [m.mountpoint for m in strategy._records(ids, False)] == [str(tmp_path / "stays")]


def test_a_reply_without_its_always_filled_fields_falls_back_and_without_a_mount_point_is_skipped() -> None:
    _needs.statmount()
    from mountprobe.errors import Unsupported
    from mountprobe.strategies import statmount as strategy

    uid = statx.statx(statx.AT_FDCWD, b"/proc", 0, statx.STATX_MNT_ID_UNIQUE).mnt_id
    raw = km.statmount_raw(uid, strategy.RECORD)
    mask = int.from_bytes(raw[8:16], sys.byteorder)
    assert strategy.record(raw, False) is not None

    def without(bit: int) -> bytes:
        return raw[:8] + (mask & ~bit).to_bytes(8, sys.byteorder) + raw[16:]

    assert strategy.record(without(km.STATMOUNT_MNT_POINT), False) is None  # outside this root
    with pytest.raises(Unsupported):
        strategy.record(without(km.STATMOUNT_FS_TYPE), False)
