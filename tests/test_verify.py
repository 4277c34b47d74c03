"""is_mounted (before mount) and still_mounted (after umount), on real mounts.

The tests of a reused legacy id make the reuse happen and check it with the kernel's own
answer (fdinfo's mnt_id, stat's st_dev) instead of assuming it: legacy mount ids and the
anonymous device numbers of tmpfs come from pools shared by the whole machine, where any
other mount may take or free a number between a test's umount and mount.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Tuple

import _needs
import pytest
from _ns import MNT_DETACH, MS_MOVE, bind, isolated, mount, tmpfs, umount
from _oracle import fdinfo_mount_id
from _scenes import loop_ext4

import mountprobe
from mountprobe import Mount, api

ATTEMPTS = 300  # remounts before a test gives up making the kernel reuse a number


def _remount_reusing(target: Path, source: str, first: Mount, device: bool) -> None:
    """Mount tmpfs ``source`` at ``target`` again, where ``first`` was and is no longer, until
    the kernel hands out ``first``'s legacy id (and, with ``device``, its anonymous device
    number) again; skip when that cannot be made. Each pool gives out its lowest free
    number: another mount of the machine may hold the freed one (it is retried until that
    lets it go) or free a lower one (held, in a mount moved aside, so that the next try
    goes higher)."""
    want: Tuple[int, ...] = (first.id, os.makedev(first.major, first.minor))[: 2 if device else 1]
    got = want
    for attempt in range(ATTEMPTS):
        tmpfs(target, source)
        got = (fdinfo_mount_id(target), os.stat(target).st_dev)[: len(want)]
        if got == want:
            return
        if all(g < w for g, w in zip(got, want)):  # below in every pool: fill that hole
            aside = target.parent / "aside" / str(attempt)
            aside.mkdir(parents=True)
            mount(target, aside, None, MS_MOVE)
        else:
            umount(target)
            time.sleep(min(0.05, 0.001 * (attempt + 1)))  # a pause, longer each time, while it is held
    what = "legacy id and device number" if device else "legacy id"
    pytest.skip(
        f"the kernel did not hand out the {what} {want} again in {ATTEMPTS} remounts (last {got}): "
        "other mounts of this machine hold them"
    )


@isolated
def test_is_mounted_matches_target_fstype_and_source_text(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "empty").mkdir()
    tmpfs(tmp_path / "t", "mysource")
    assert mountprobe.is_mounted(tmp_path / "t")
    assert mountprobe.is_mounted(tmp_path / "t", fstype="tmpfs")
    assert not mountprobe.is_mounted(tmp_path / "t", fstype="ext4")
    assert mountprobe.is_mounted(tmp_path / "t", source="mysource")
    assert mountprobe.is_mounted(tmp_path / "t", source="mysource/")
    assert not mountprobe.is_mounted(tmp_path / "t", source="othersource")
    assert not mountprobe.is_mounted(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        mountprobe.is_mounted(tmp_path / "missing")


@isolated
def test_is_mounted_with_a_bind_source_directory_and_file(tmp_path: Path) -> None:
    for d in ("src/sub", "bound", "boundsub", "other"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "src" / "f").write_text("x")
    (tmp_path / "g").write_text("")
    bind(tmp_path / "src", tmp_path / "bound")
    bind(tmp_path / "src" / "sub", tmp_path / "boundsub")
    bind(tmp_path / "src" / "f", tmp_path / "g")
    assert mountprobe.is_mounted(tmp_path / "bound", source=tmp_path / "src")
    assert not mountprobe.is_mounted(tmp_path / "bound", source=tmp_path / "src" / "sub")
    assert mountprobe.is_mounted(tmp_path / "boundsub", source=tmp_path / "src" / "sub")
    assert not mountprobe.is_mounted(tmp_path / "boundsub", source=tmp_path / "src")
    assert mountprobe.is_mounted(tmp_path / "g", source=tmp_path / "src" / "f")
    assert not mountprobe.is_mounted(tmp_path / "g", source=tmp_path / "src")
    # The same directory through a relative path and through a bind of its parent.
    os.chdir(tmp_path)
    assert mountprobe.is_mounted("bound", source="./src")
    assert mountprobe.is_mounted(tmp_path / "boundsub", source=tmp_path / "bound" / "sub")


@isolated
def test_is_mounted_with_a_loop_device_and_its_image(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    loop_ext4(image, tmp_path / "mnt", label="mptest")
    try:
        m = mountprobe.mount_at(tmp_path / "mnt")
        assert m is not None and m.fstype == "ext4" and m.source is not None and m.source.startswith("/dev/loop")
        assert m.id == fdinfo_mount_id(tmp_path / "mnt")
        assert mountprobe.is_mounted(tmp_path / "mnt", source=m.source, fstype="ext4")
        assert mountprobe.is_mounted(tmp_path / "mnt", source=image)  # the image behind the loop device
        st = os.stat(m.source)
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (m.major, m.minor)
        assert not mountprobe.is_mounted(tmp_path / "mnt", source="/dev/null")
        assert mountprobe.is_mountpoint(tmp_path / "mnt", bind=False)
    finally:
        umount(tmp_path / "mnt")  # autoclear releases the loop device


@isolated
def test_still_mounted_is_false_after_umount_even_when_the_legacy_id_is_reused(tmp_path: Path) -> None:
    # Records carry unique ids where statmount builds them (6.15); before, mountinfo builds
    # them, the legacy id is all they have, and the next test shows what that cannot tell.
    _needs.statmount_records()
    (tmp_path / "p").mkdir()
    tmpfs(tmp_path / "p", "first")
    first = mountprobe.mount_at(tmp_path / "p")
    assert first is not None and first.unique_id is not None
    assert mountprobe.still_mounted(first)
    umount(tmp_path / "p")
    assert not mountprobe.still_mounted(first)
    _remount_reusing(tmp_path / "p", "first", first, device=False)
    second = mountprobe.mount_at(tmp_path / "p")
    assert second is not None
    assert second.id == first.id
    assert second.unique_id != first.unique_id
    assert not mountprobe.still_mounted(first)
    assert mountprobe.still_mounted(second)
    answer = mountprobe.last_answer()
    assert answer is not None and answer.strategy == "statmount"


@isolated
def test_still_mounted_without_unique_ids_compares_identity_fields(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    tmpfs(tmp_path / "p", "first")
    first = mountprobe.mount_at(tmp_path / "p")
    assert first is not None
    legacy = first._replace(unique_id=None, parent_unique_id=None)
    assert mountprobe.still_mounted(legacy)
    assert api.last_answer().strategy == "mountinfo"  # type: ignore[union-attr]
    umount(tmp_path / "p")
    assert not mountprobe.still_mounted(legacy)
    _remount_reusing(tmp_path / "p", "second", first, device=True)  # same legacy id, same device
    again = mountprobe.mount_at(tmp_path / "p")
    assert again is not None and (again.id, again.devno) == (legacy.id, legacy.devno)
    assert not mountprobe.still_mounted(legacy)


@isolated
def test_without_unique_ids_an_identical_remount_is_indistinguishable(tmp_path: Path) -> None:
    # The documented blind spot of the legacy check, and why unique ids matter.
    (tmp_path / "p").mkdir()
    tmpfs(tmp_path / "p", "same")
    first = mountprobe.mount_at(tmp_path / "p")
    assert first is not None
    umount(tmp_path / "p")
    _remount_reusing(tmp_path / "p", "same", first, device=True)
    assert mountprobe.still_mounted(first._replace(unique_id=None)) is True
    assert mountprobe.still_mounted(first) is (first.unique_id is None)  # unique ids tell them apart


@isolated
def test_still_mounted_is_false_right_after_a_lazy_umount(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    tmpfs(tmp_path / "p")
    m = mountprobe.mount_at(tmp_path / "p")
    assert m is not None
    fd = os.open(tmp_path / "p", os.O_RDONLY)  # keeps the filesystem busy
    umount(tmp_path / "p", MNT_DETACH)
    assert not mountprobe.still_mounted(m)
    os.close(fd)
