"""Canonical paths for the strategies that must compare paths (openat2, handle, mountinfo).

The kernel resolves: we open the path with ``O_PATH`` (which neither reads the file nor
calls the filesystem's open) and read the magic link back, so symlinks, ``..``, ``//`` and
relative paths come out as the table spells them. Without /proc, ``os.path.realpath``.
"""

from __future__ import annotations

import os
from typing import Tuple


def canonical(path: bytes, follow: bool = True) -> bytes:
    """The absolute path the kernel resolves ``path`` to; OSError if it does not exist."""
    flags = os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        return os.readlink(b"/proc/self/fd/%d" % fd)
    except OSError:
        return (
            os.fsencode(os.path.realpath(path))
            if follow
            else os.path.join(os.fsencode(os.path.realpath(os.path.dirname(path) or b".")), os.path.basename(path))
        )
    finally:
        os.close(fd)


def resolved(path: bytes, follow: bool) -> bytes:
    """The canonical path of ``path``. With ``follow`` the last component is resolved too;
    without, only its parent is (a trailing ``/``, ``.`` or ``..`` always resolve)."""
    stripped = path.rstrip(b"/")
    leaf = stripped.rsplit(b"/", 1)[-1]
    follow = follow or not stripped or stripped != path or leaf in (b".", b"..")
    return canonical(path, follow)


def split_leaf(path: bytes, follow: bool) -> Tuple[bytes, bytes]:
    """(canonical parent directory, last component) of ``resolved(path, follow)``; the leaf
    is empty for ``/``."""
    full = resolved(path, follow)
    if full == b"/":
        return b"/", b""
    head, _, leaf = full.rpartition(b"/")
    return head or b"/", leaf
