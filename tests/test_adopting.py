"""Every "after" block of docs/adopting.md, run on real mounts in a private namespace and
compared with the kernel's table (tests/_oracle.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict

import pytest
from _ns import bind, in_user_namespace, isolated, tmpfs
from _oracle import by_id, fdinfo_mount_id, table
from _scenes import loop_ext4

import mountprobe
from mountprobe import compat

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "adopting.md")


def snippets() -> Dict[str, Any]:
    """The functions the doc's python blocks define, by name."""
    if not os.path.exists(DOC):
        pytest.skip("docs/ of the checkout is not here (the unprivileged CI run copies tests/ only)")
    with open(DOC, encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    namespace: Dict[str, Any] = {"os": os, "mountprobe": mountprobe, "compat": compat}
    for block in blocks:
        exec(compile(block, DOC, "exec"), namespace)
    return namespace


def test_the_doc_defines_an_after_for_each_of_the_nine_clients() -> None:
    names = set(snippets())
    assert {
        "mounts",
        "get_mount_info",
        "mounted_device_root",
        "ismount",
        "is_bind_mounted",
        "find_mount_point",
        "mount_facts",
        "active",
        "is_mounted",
        "path_is_mounted",
        "device_is_mounted",
        "get_mountpoints",
        "share_is_mounted",
        "disk_partitions",
    } <= names


@isolated
def test_the_path_clients_afters_agree_with_the_kernel(tmp_path: Path) -> None:
    do = snippets()
    space, src, bound, fbind = tmp_path / "with space", tmp_path / "src", tmp_path / "bound", tmp_path / "fbind"
    for d in (space, src, bound):
        d.mkdir()
    (src / "file").write_bytes(b"")
    fbind.write_bytes(b"")
    tmpfs(space, "server:/export")
    bind(src, bound)
    bind(src / "file", fbind)
    kernel = {e.mountpoint: e for e in table()}
    for path in (space, bound, fbind):
        here = str(path)
        assert here in kernel
        assert do["ismount"](path) is True  # os.path.ismount: False for the two binds
        assert do["find_mount_point"](here) == here
        assert do["is_mounted"](here) is True  # Salt, curtin
        assert do["path_is_mounted"](here) is True
        assert here in do["active"]() and any(f["mount"] == here for f in do["mount_facts"]())
        assert do["get_mount_info"](here) == (kernel[here].source, kernel[here].fstype, here)
    assert do["is_bind_mounted"](str(bound), str(src)) is True
    assert do["is_bind_mounted"](str(fbind), str(src / "file")) is True
    assert do["is_bind_mounted"](str(bound), str(space)) is False
    assert do["path_is_mounted"](str(src), destination=str(bound)) is True
    assert do["share_is_mounted"]("server:/export/", str(space)) is True
    assert do["share_is_mounted"]("server:/other", str(space)) is False
    assert do["is_mounted"](str(space), src="server:/export") is True
    assert do["ismount"](src) is False and do["path_is_mounted"](str(src)) is False
    assert do["find_mount_point"](str(src / "missing")) == str(tmp_path)
    assert do["get_mount_info"](str(src / "file")) == (by_id()[fdinfo_mount_id(src)].source, "tmpfs", str(tmp_path))
    scratch = by_id()[fdinfo_mount_id(tmp_path)].source
    assert {str(tmp_path), str(bound), str(fbind)} <= {m["mountpoint"] for m in do["mounts"]()[scratch]}
    assert do["disk_partitions"](all=True) == compat.disk_partitions(all=True)


@isolated
def test_the_device_clients_afters_find_the_device_and_tell_its_binds_apart(tmp_path: Path) -> None:
    if in_user_namespace():
        pytest.skip("needs real root (loop devices cannot be set up inside a user namespace)")
    do = snippets()
    disk = tmp_path / "disk"
    loop_ext4(tmp_path / "img", disk)
    (disk / "dir").mkdir()
    (tmp_path / "bound").mkdir()
    bind(disk / "dir", tmp_path / "bound")
    device = by_id()[fdinfo_mount_id(disk)].source
    assert device.startswith("/dev/loop")
    assert do["mounted_device_root"](device) == str(disk)  # not the bind of disk/dir
    assert do["device_is_mounted"](device) is True
    assert do["device_is_mounted"](device, destination=str(disk)) is True
    # A bind of one of its directories counts, as in ceph-volume (/proc/mounts names the
    # device there too); is_mounted(..., root="/") will be the stricter question.
    assert do["device_is_mounted"](device, destination=str(tmp_path / "bound")) is True
    assert do["get_mountpoints"](device) == [str(disk), str(tmp_path / "bound")]
    assert do["get_mountpoints"](device, "dir") == [str(tmp_path / "bound")]
    assert str(disk) in [m["mountpoint"] for m in do["mounts"]()[device]]
    physical = [p for p in do["disk_partitions"]() if p.mountpoint.startswith(str(tmp_path))]
    assert [(p.device, p.mountpoint) for p in physical] == [(device, str(disk)), (device, str(tmp_path / "bound"))]
