"""ENOSYS and EPERM from any syscall mean "ask the next strategy": the answers stay the same
down to mountinfo alone. Old kernels and sandboxes are simulated with seccomp filters."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import _needs
import pytest
from _ns import isolated
from _oracle import without_unique_ids
from _scenes import build
from _seccomp import fail_syscalls, statx_without_unique_ids

import mountprobe
from mountprobe import probe

ALL = ("statx", "openat2", "name_to_handle_at", "statmount", "listmount")
# blocked syscalls -> (strategy answering is_mountpoint, strategy answering mount_of)
LEVELS = {
    "full": ({}, ("statx", "statmount")),
    "no-statmount-ENOSYS": ({"statmount": errno.ENOSYS, "listmount": errno.ENOSYS}, ("statx", "mountinfo")),
    "no-statmount-EPERM": ({"statmount": errno.EPERM, "listmount": errno.EPERM}, ("statx", "mountinfo")),
    "no-statx-ENOSYS": ({"statx": errno.ENOSYS}, ("openat2", "mountinfo")),
    "no-statx-EPERM": ({"statx": errno.EPERM}, ("openat2", "mountinfo")),
    "no-openat2": ({"openat2": errno.ENOSYS}, ("statx", "statmount")),
    "no-name_to_handle_at": ({"name_to_handle_at": errno.EPERM}, ("statx", "statmount")),
    "no-statx-no-openat2": ({"statx": errno.EPERM, "openat2": errno.ENOSYS}, ("handle", "mountinfo")),
    "proc-only": ({name: errno.EPERM for name in ALL}, ("mountinfo", "mountinfo")),
    # name_to_handle_at before AT_HANDLE_FID (6.5): procfs and overlayfs answer EOPNOTSUPP.
    "handles-without-FID": (
        {"statx": errno.EPERM, "openat2": errno.ENOSYS, "name_to_handle_at": errno.EINVAL},
        ("handle", "mountinfo"),
    ),
}
ONLY_WITH_FLAG = {"handles-without-FID": {"name_to_handle_at": 0x200}}


def _answers(tree_paths: List[bytes], base: bytes) -> Dict[str, Any]:
    def plain(m: mountprobe.Mount) -> mountprobe.Mount:
        return m._replace(unique_id=None, parent_unique_id=None)

    return {
        "is_mountpoint": [mountprobe.is_mountpoint(p) for p in tree_paths],
        "bind=False": [mountprobe.is_mountpoint(p, bind=False) for p in tree_paths],
        "nofollow": [mountprobe.is_mountpoint(p, follow_symlinks=False) for p in tree_paths],
        "mount_of": [plain(mountprobe.mount_of(p)) for p in tree_paths],
        "mount_at": [m and plain(m) for m in map(mountprobe.mount_at, tree_paths)],
        "mounts_under": [plain(m) for m in mountprobe.mounts_under(base, include_self=True)],
        "list_mounts": [plain(m) for m in mountprobe.list_mounts()],
        "mount_root": [mountprobe.mount_root(p) for p in tree_paths],
        "mounts_under each": [[plain(m) for m in mountprobe.mounts_under(p)] for p in tree_paths if os.path.isdir(p)],
        "is_mounted": [mountprobe.is_mounted(p, fstype="tmpfs") for p in tree_paths],
        "is_mounted by source": [mountprobe.is_mounted(p, source=base + b"/src") for p in tree_paths],
        "still_mounted": [mountprobe.still_mounted(m) for m in mountprobe.mounts_under(base)],
        "propagate_from": [plain(m) for m in mountprobe.list_mounts(propagate_from=True)],
    }


@pytest.mark.parametrize("level", LEVELS)
@isolated
def test_every_level_gives_the_same_answers(level: str, tmp_path: Path) -> None:
    tree = build(tmp_path)
    paths = [*tree.every_path, tree.path("link"), b"/", b"/proc", b"/proc/self", b"/proc/sys"]
    expected = _answers(paths, tree.path())
    blocked, (is_mountpoint_by, mount_of_by) = LEVELS[level]
    if mount_of_by == "statmount":  # before 6.15 (no statmount records) mountinfo answers
        mount_of_by = _needs.offered("mount_of")[0][0]
    if blocked:
        fail_syscalls(blocked, ONLY_WITH_FLAG.get(level))
    probe.forget()
    assert _answers(paths, tree.path()) == expected
    mountprobe.is_mountpoint(tree.path("tmpfs"))
    assert mountprobe.last_answer().strategy == is_mountpoint_by  # type: ignore[union-attr]
    mountprobe.mount_of(tree.path("tmpfs"))
    assert mountprobe.last_answer().strategy == mount_of_by  # type: ignore[union-attr]
    caps = mountprobe.capabilities()
    for name, err in blocked.items():
        if name in ONLY_WITH_FLAG.get(level, {}):
            assert caps.handle_fid is False and getattr(caps, name).status == "partial"
        else:
            assert getattr(caps, name).status == ("missing" if err == errno.ENOSYS else "blocked"), name


@isolated
def test_doctor_reports_blocked_interfaces_and_the_fallback_that_answers(tmp_path: Path) -> None:
    unique = mountprobe.capabilities().statx_unique_id  # 6.8
    fail_syscalls({"statmount": errno.EPERM, "listmount": errno.ENOSYS, "openat2": errno.EPERM})
    out = subprocess.run([sys.executable, "-m", "mountprobe", "doctor"], capture_output=True, check=True).stdout
    report = {line.split()[0]: line.split()[1:] for line in out.decode().splitlines() if line.startswith("  ")}
    assert report["statmount"][0] == "blocked" and report["listmount"][0] == "missing"
    assert report["openat2"][0] == "blocked" and report["statx"][0] == ("available" if unique else "partial")
    assert report["is_mountpoint"] == ["statx"] and report["mount_of"] == ["mountinfo"]
    if unique:  # the block is the reason statmount does not answer
        assert b"not statmount: statx gives no unique" not in out and b"statmount blocked" in out
    else:  # before 6.8 the first reason is the kernel's: no unique ids to ask statmount about
        assert b"not statmount: statx gives no unique" in out


@isolated
def test_a_kernel_that_ignores_the_unique_id_bit_gives_the_same_answers(tmp_path: Path) -> None:
    # Linux 5.8-6.7 fill the legacy id and leave STATX_MNT_ID_UNIQUE out of stx_mask.
    tree = build(tmp_path)
    paths = [*tree.every_path, tree.path("link"), b"/", b"/proc"]
    expected = _answers(paths, tree.path())
    statx_without_unique_ids()
    probe.forget()
    caps = mountprobe.capabilities()
    assert caps.statx.status == "partial" and not caps.statx_unique_id, caps.statx
    assert _answers(paths, tree.path()) == expected
    mountprobe.mount_of(tree.path("tmpfs"))
    assert mountprobe.last_answer().strategy == "mountinfo"  # type: ignore[union-attr]


@isolated
def test_a_legacy_id_is_never_taken_for_a_unique_one_when_the_probe_saw_unique_ids(tmp_path: Path) -> None:
    # The probe saw unique ids; later replies lack them (the stx_mask check of every call,
    # which util-linux's mnt_id_from_path() does not make).
    _needs.unique_ids()
    tree = build(tmp_path)
    expected = [mountprobe.mount_of(p) for p in tree.every_path]
    statmount_answers = _needs.offered("mount_of")[0][0] == "statmount"  # 6.15; before, mountinfo does
    statx_without_unique_ids()
    for path, want in zip(tree.every_path, expected):
        got = mountprobe.mount_of(path)
        assert without_unique_ids(got) == without_unique_ids(want)
        assert got.unique_id in (None, want.unique_id)  # never the legacy id in its place
        answer = mountprobe.last_answer()
        assert answer is not None and answer.strategy == "mountinfo"
        if statmount_answers:
            assert got.unique_id is None
            assert answer.declined == (("statmount", "statx ignored STATX_MNT_ID_UNIQUE"),)
