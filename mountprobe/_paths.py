"""Turning the caller's path (``str``, ``bytes`` or ``os.PathLike``) into kernel bytes."""

from __future__ import annotations

import os
from errno import ENAMETOOLONG

PATH_MAX = 4096  # linux/limits.h, the terminating NUL included

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

    PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def to_bytes(path: PathArg) -> bytes:
    """The bytes the kernel should see; ValueError for an empty path or an embedded NUL
    (ctypes would otherwise cut the path at the NUL and answer for another file)."""
    raw = os.fsencode(path)
    if not raw:
        raise ValueError("empty path")
    if b"\0" in raw:
        raise ValueError(f"embedded null byte in path {raw!r}")
    if len(raw) >= PATH_MAX:  # the kernel refuses it whole; trimming "/." must not rescue it
        raise OSError(ENAMETOOLONG, "File name too long", os.fsdecode(path))
    return raw


def is_below(path: bytes, top: bytes) -> bool:
    """True when ``path`` lies strictly below ``top``, component by component (``/a/b`` is
    below ``/a``; ``/ab`` is not)."""
    if top == b"/":
        return path != b"/" and path.startswith(b"/")
    return path.startswith(top) and path[len(top) : len(top) + 1] == b"/"


def parent_dir(path: bytes) -> bytes:
    """The directory holding ``path`` (an absolute, canonical path)."""
    head = path.rsplit(b"/", 1)[0]
    return head or b"/"
