"""Every exception of mountprobe lives in mountprobe/errors.py with one meaning: a mount that
holds the root from outside it is ``OutsideRoot`` from every strategy, every deadline raises
the same ``TimeoutError``, and ``ProcUnavailable`` keeps its old import paths."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest
from _ns import isolated

import mountprobe
from mountprobe import errors, probe


def test_every_public_exception_is_defined_in_errors() -> None:
    for name in mountprobe.__all__:
        value = getattr(mountprobe, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert value.__module__ == "mountprobe.errors", name


def test_proc_unavailable_is_still_importable_from_mountinfo_and_is_the_same_class() -> None:
    from mountprobe import mountinfo

    assert mountinfo.ProcUnavailable is errors.ProcUnavailable is mountprobe.ProcUnavailable


def test_with_timeout_raises_the_same_timeout_error_as_the_waits() -> None:
    with pytest.raises(TimeoutError) as raised:
        mountprobe.with_timeout(0.2, time.sleep, 60)
    assert raised.value.errno == errno.ETIMEDOUT
    assert str(raised.value) == str(errors.timed_out("sleep", 0.2))


@isolated
def test_a_mount_outside_the_root_is_outside_root_whether_named_by_path_or_by_id(tmp_path: Path) -> None:
    caps = mountprobe.capabilities()
    jail = tmp_path / "jail"
    (jail / "plain").mkdir(parents=True)
    (jail / "plain" / "file").write_bytes(b"")
    from mountprobe.strategies import statmount

    holder = mountprobe.mount_of(tmp_path)
    os.chroot(jail)
    os.chdir("/")
    probe.forget()
    with pytest.raises(errors.OutsideRoot, match="chroot to a plain directory") as raised:
        mountprobe.mount_of("/plain/file")
    assert raised.value.path == b"/plain/file"
    if not (caps.statx_unique_id and caps.statmount_records):
        pytest.skip("statmount records need Linux 6.15 (supported_mask)")
    assert holder.unique_id is not None
    with pytest.raises(errors.OutsideRoot) as by_id:
        statmount.describe(holder.unique_id, False)
    assert by_id.value.path is None and by_id.value.mnt_id == holder.unique_id
