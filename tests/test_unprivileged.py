"""As uid 65534 with no capability (not in a user namespace): every function answers for the
mounts the caller can see, as the kernel does, and says clearly what it cannot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _ns import bind, in_user_namespace, isolated
from _oracle import assert_is_kernel_entry, fdinfo_mount_id, table, unique_id
from _scenes import build

import mountprobe
from mountprobe import api


@isolated
def test_as_nobody_every_function_answers_like_the_kernel(tmp_path: Path) -> None:
    if in_user_namespace():
        pytest.skip("needs real root to become uid 65534 without a user namespace")
    # pytest's temporary directory is private to root: bind the scratch tmpfs over /srv (a
    # directory with no submounts to hide), in this namespace only, where uid 65534 reaches it.
    bind(tmp_path, "/srv")
    tmp_path = Path("/srv")
    tree = build(tmp_path)
    locked = tmp_path / "tmpfs" / "locked"
    (locked / "inner").mkdir(parents=True)
    locked.chmod(0o700)
    for question in api.CHAINS:  # load every module while root may read the interpreter's files
        api.strategies(question)
    as_root = mountprobe.capabilities()
    os.setgid(65534)
    os.setuid(65534)
    assert os.geteuid() == 65534
    from mountprobe import probe

    probe.forget()
    caps = mountprobe.capabilities()
    assert caps == as_root  # no interface needs a capability (listmount and statmount: 6.8)
    for path in tree.every_path:
        expected = os.fsdecode(os.path.realpath(path)) in {e.mountpoint for e in table()}
        assert mountprobe.is_mountpoint(path) is expected
        m = mountprobe.mount_of(path)
        assert m.id == fdinfo_mount_id(path)
        if m.unique_id is not None or caps.statmount_records:  # records by statmount (6.15) carry them
            assert m.unique_id == unique_id(path)
        assert_is_kernel_entry(m)
    listed = mountprobe.list_mounts()
    assert [m.id for m in listed] == [e.id for e in table()]
    assert {m.id for m in mountprobe.mounts_under(tree.path())} == {
        e.id for e in table() if e.mountpoint.startswith(str(tmp_path) + "/")
    }
    assert all(mountprobe.still_mounted(m) for m in listed)
    with pytest.raises(PermissionError) as denied:
        mountprobe.is_mountpoint(locked / "inner")
    assert denied.value.filename == str(locked / "inner")
    with pytest.raises(PermissionError):
        mountprobe.mount_of(locked / "inner")
