"""Canonical paths for the strategies that must compare paths, resolved without touching the
filesystem behind the last component.

The kernel resolves: we open the path with ``O_PATH`` and read the magic link back, so
symlinks, ``..``, ``//`` and relative paths come out as the table spells them. An ``O_PATH``
open neither calls the filesystem's open nor asks it for attributes, and it does not trigger
an automount on the last component (open(2)): a dead FUSE or NFS server at the path is never
asked, and an autofs point stays untriggered. Without /proc the name is rebuilt one
component at a time with readlink(2), never with ``os.path.realpath`` (which stats).

A trailing ``/``, ``/.`` or ``/..`` would make the kernel walk *through* the last component,
which triggers an automount even with ``AT_NO_AUTOMOUNT``; ``tidy`` takes them off first.
"""

from __future__ import annotations

import errno
import os
import stat

from .._paths import parent_dir
from ..kernel import statx as kx
from ..kernel._syscall import OFF

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

OPEN = os.O_PATH | os.O_CLOEXEC
_MAX_LINKS = 40  # the kernel's MAXSYMLINKS
_EMPTY_PATH = kx.AT_EMPTY_PATH | kx.AT_NO_AUTOMOUNT | kx.AT_STATX_DONT_SYNC


def _named(exc: OSError, path: bytes) -> OSError:
    return type(exc)(exc.errno, exc.strerror, os.fsdecode(path)) if exc.errno else exc


def name_of(fd: int, path: bytes, follow: bool) -> bytes:
    try:
        return os.readlink(b"/proc/self/fd/%d" % fd)
    except OSError:
        return _walk(path, follow)


def canonical(path: bytes, follow: bool = True) -> bytes:
    """The absolute path the kernel resolves ``path`` to; OSError if it does not exist."""
    try:
        fd = os.open(path, OPEN | (0 if follow else os.O_NOFOLLOW))
    except OSError as exc:
        raise _named(exc, path) from None
    try:
        return name_of(fd, path, follow)
    finally:
        os.close(fd)


def _walk(path: bytes, follow: bool) -> bytes:
    """``path`` rebuilt without /proc: each symlink read with readlink(2), ``..`` applied to
    the resolved prefix. Existence was checked by the caller's open."""
    todo: List[bytes] = path.split(b"/")[::-1]
    done: List[bytes] = [] if path.startswith(b"/") else [p for p in os.getcwdb().split(b"/") if p]
    links = 0
    while todo:
        part = todo.pop()
        if part in (b"", b"."):
            continue
        if part == b"..":
            del done[-1:]
            continue
        here = b"/" + b"/".join([*done, part])
        if not todo and not follow:
            done.append(part)
            continue
        try:
            target = os.readlink(here)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: not a symlink
                raise _named(exc, path) from None
            done.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.fsdecode(path))
        if target.startswith(b"/"):
            done = []
        todo.extend(target.split(b"/")[::-1])
    return b"/" + b"/".join(done)


def _check_directory(fd: int) -> None:
    """NotADirectoryError unless ``fd`` is a directory: statx with an empty path and
    AT_STATX_DONT_SYNC, or where statx is absent a lookup of ``.`` from it (which needs
    search permission, where statx does not)."""
    try:
        st = kx.statx(fd, b"", _EMPTY_PATH, kx.STATX_TYPE)
    except OSError as exc:
        if exc.errno not in OFF:
            raise
    else:
        if not stat.S_ISDIR(st.mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        return
    os.close(os.open(b".", OPEN, dir_fd=fd))


def is_directory(path: bytes) -> Optional[bool]:
    """True when ``path`` (symlinks followed) is a directory, found without asking its
    filesystem for attributes and without triggering an automount; None when the filesystem
    refuses to say (FUSE, to all but its owner)."""
    try:
        fd = os.open(path, OPEN)
    except OSError as exc:
        raise _named(exc, path) from None
    try:
        _check_directory(fd)
    except NotADirectoryError:
        return False
    except PermissionError:
        return None
    finally:
        os.close(fd)
    return True


def tidy(path: bytes, follow: bool) -> Tuple[bytes, bool]:
    """``(path, follow)`` with a trailing ``/``, ``/.`` or ``/..`` taken off, so that no
    question walks through its last component. The part before must be a directory
    (checked without asking its filesystem: a path lookup of ``.`` from it); ``..`` is then
    applied to its canonical name, as the kernel would. Such paths always follow symlinks."""
    stripped = path.rstrip(b"/")
    if not stripped:
        return b"/", True
    ups = 0
    while True:
        head, sep, last = stripped.rpartition(b"/")
        if not sep or last not in (b".", b".."):
            break
        ups += last == b".."
        stripped = head.rstrip(b"/")
        if not stripped:
            return b"/", True
    try:
        fd = os.open(stripped, OPEN)
        try:
            _check_directory(fd)
            if not ups:
                return stripped, True
            where = name_of(fd, stripped, True)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _named(exc, path) from None
    for _ in range(ups):
        where = parent_dir(where)
    return where, True


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
