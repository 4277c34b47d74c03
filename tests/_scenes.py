"""The standard tree of real mounts the tests ask about, built inside a private namespace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List

from _ns import bind, tmpfs

NASTY_NAMES = [b"sp ace", b"tab\there", b"new\nline", b"back\\slash", b"hash#tag", "ünï ☃".encode(), b"bad\xffbyte"]


class Tree:
    """Paths of the standard tree. ``mounts`` are mount points, ``plain`` are not."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.mounts: Dict[str, bytes] = {}
        self.plain: Dict[str, bytes] = {}

    def path(self, *parts: str) -> bytes:
        return os.fsencode(self.base.joinpath(*parts))

    @property
    def every_path(self) -> List[bytes]:
        return [*self.mounts.values(), *self.plain.values()]


def build(base: Path) -> Tree:
    t = Tree(base)
    made = t.mounts
    for d in (
        "plain",
        "tmpfs",
        "src/sub",
        "samefs",
        "other",
        "otherfs",
        "self",
        "stack",
        "a/x",
        "ab/y",
        "deep",
        "names",
    ):
        (base / d).mkdir(parents=True, exist_ok=True)
    (base / "src" / "file").write_bytes(b"data")
    (base / "filebind").write_bytes(b"")
    tmpfs(base / "tmpfs", "tmpfs")
    (base / "tmpfs" / "inner").mkdir()
    made["tmpfs"] = t.path("tmpfs")
    bind(base / "src", base / "samefs")
    made["samefs"] = t.path("samefs")
    tmpfs(base / "other", "othersrc")
    (base / "other" / "dir").mkdir()
    made["other"] = t.path("other")
    bind(base / "other" / "dir", base / "otherfs")
    made["otherfs"] = t.path("otherfs")
    bind(base / "self", base / "self")
    made["self"] = t.path("self")
    bind(base / "src" / "file", base / "filebind")
    made["filebind"] = t.path("filebind")
    tmpfs(base / "stack", "lower")
    (base / "stack" / "under").mkdir()
    tmpfs(base / "stack" / "under", "hidden")
    tmpfs(base / "stack", "upper")
    made["stack"] = t.path("stack")
    os.symlink(base / "tmpfs", base / "link")
    for name in ("a", "ab"):
        tmpfs(base / name, name)
        made[name] = t.path(name)
    (base / "a" / "x").mkdir()
    (base / "ab" / "y").mkdir()
    tmpfs(base / "a" / "x", "ax")
    tmpfs(base / "ab" / "y", "aby")
    made["a/x"], made["ab/y"] = t.path("a", "x"), t.path("ab", "y")
    level = base / "deep"
    for depth in range(1, 6):
        level = level / f"l{depth}"
        level.mkdir()
        tmpfs(level, f"level{depth}")
        made[f"deep{depth}"] = os.fsencode(level)
    names = os.fsencode(base / "names")
    for raw in NASTY_NAMES:
        path = names + b"/" + raw
        os.mkdir(path)
        tmpfs(path, "nasty")
        made["names/" + os.fsdecode(raw)] = path
    t.plain.update(
        {
            "plain": t.path("plain"),
            "src/file": t.path("src", "file"),
            "tmpfs/inner": t.path("tmpfs", "inner"),
            "samefs/sub": t.path("samefs", "sub"),
            "deep": t.path("deep"),
            "names": names,
        }
    )
    return t


def loop_ext4(image: Path, target: Path, label: str = "") -> None:
    """A 16 MiB ext4 image mounted at ``target`` through a loop device (autoclear: the device
    goes with the last mount). Skips where loop devices or mkfs.ext4 are missing."""
    import shutil
    import subprocess

    import pytest
    from _ns import need_real_root

    need_real_root()
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("mkfs.ext4 is not installed")
    with open(image, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", *(["-L", label] if label else []), str(image)], check=True)
    target.mkdir(exist_ok=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(target)], check=True)
