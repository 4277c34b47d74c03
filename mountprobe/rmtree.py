"""``safe_rmtree``: delete a directory tree without ever crossing into a mount.

``rm -rf`` after a weak post-umount check has wiped whole disks (a bind mount still
attached below the tree, a lazy umount, a devtmpfs bound into a chroot). Here the tree is
first checked with ``mounts_under``; then the walk itself refuses every crossing, in case a
mount appears while it runs: each directory is opened from its parent's descriptor with
``openat2(RESOLVE_NO_XDEV)`` (which fails with EXDEV at a mount point), or, where openat2 is
unavailable, opened and then compared by mount id with the top of the tree. Descriptors are
pinned to their mount, so a mount placed over a directory already opened changes nothing:
the walk goes on deleting the directory underneath, which belongs to the tree. The kernel
itself refuses to unlink or rmdir a mount point (EBUSY).
"""

from __future__ import annotations

import errno
import os

from . import _paths
from .errors import MountedBelow, Unsupported
from .kernel import openat2 as ko
from .kernel import statx as kx

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, List

    from ._paths import PathArg
    from .model import Mount

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _mounts_at_or_below(path: bytes) -> List[Mount]:
    from . import api

    try:
        return api.mounts_under(path, include_self=True)
    except OSError:
        return []


def _refuse(path: bytes, during: bool) -> MountedBelow:
    mounts = _mounts_at_or_below(path)
    return MountedBelow(os.fsdecode(path), mounts, during)


def _mount_id(fd: int) -> int:
    """The mount id of an open directory."""
    from .strategies._calls import fd_mount_id

    found = fd_mount_id(fd)
    if found is None:
        raise Unsupported("cannot tell which mount a directory is on here (no openat2, statx mount id or /proc)")
    return found


def _opener(top_id: int) -> Callable[[int, bytes], int]:
    """How to open a subdirectory without crossing into another mount: None back for a
    crossing. openat2 where allowed, else open and compare mount ids."""
    from .probe import capabilities

    if capabilities().openat2.usable:

        def no_xdev(dirfd: int, name: bytes) -> int:
            try:
                return ko.openat2(dirfd, name, _DIR, ko.RESOLVE_NO_XDEV | ko.RESOLVE_NO_SYMLINKS)
            except OSError as exc:
                if exc.errno == errno.EXDEV:
                    return -1
                raise

        return no_xdev

    def same_mount(dirfd: int, name: bytes) -> int:
        fd = os.open(name, _DIR, dir_fd=dirfd)
        if _mount_id(fd) != top_id:
            os.close(fd)
            return -1
        return fd

    return same_mount


def safe_rmtree(path: PathArg) -> None:
    """Delete the directory ``path`` and everything in it, like ``shutil.rmtree``, but never
    below a mount point: raise ``MountedBelow`` (listing the mounts) and delete nothing while
    anything is mounted at or below ``path``; and if a mount appears during the deletion,
    stop before touching anything in it and raise ``MountedBelow`` (what was deleted by then
    stays deleted). Symlinks are removed, never followed; ``path`` itself must not be one."""
    raw = _paths.to_bytes(path)
    from .strategies import _resolve

    where = _resolve.resolved(raw, False)
    if os.path.islink(where):
        raise NotADirectoryError(errno.ENOTDIR, "a symbolic link: safe_rmtree does not follow it", os.fsdecode(raw))
    found = _mounts_at_or_below(where)
    if found or where == b"/":
        raise MountedBelow(os.fsdecode(where), found, False)
    # The parent as the caller named it: a relative path may work where the absolute one
    # has a component the caller may not search.
    stripped = raw.rstrip(b"/")
    head, _, base = stripped.rpartition(b"/")
    if base in (b".", b".."):
        head, _, base = where.rpartition(b"/")
    parent = head or (b"/" if stripped.startswith(b"/") else b".")
    parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        top = os.open(base, _DIR, dir_fd=parent_fd)
        attributes = kx.statx(top, b"", kx.AT_EMPTY_PATH | kx.AT_STATX_DONT_SYNC, 0).attributes
        if attributes & kx.STATX_ATTR_MOUNT_ROOT:  # mounted since the check
            os.close(top)
            raise _refuse(where, True)
        try:
            _empty(top, where, _opener(_mount_id(top)))
        finally:
            os.close(top)
        _remove_dir(parent_fd, base, where)
    finally:
        os.close(parent_fd)


def _remove_dir(dirfd: int, name: bytes, path: bytes) -> None:
    try:
        os.rmdir(name, dir_fd=dirfd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _failed(exc, path) from None


def _failed(exc: OSError, path: bytes) -> Exception:
    """What to raise for a failed unlink or rmdir: EBUSY means a mount point (a mount that
    appeared, or a file bind mount); anything else is the error, naming the whole path."""
    if exc.errno == errno.EBUSY:
        return _refuse(path, True)
    return OSError(exc.errno, exc.strerror, os.fsdecode(path))


def _empty(top: int, top_path: bytes, open_dir: Callable[[int, bytes], int]) -> None:
    """Delete everything inside the open directory ``top``, depth first, with one open
    descriptor per level."""
    stack = [(top, top_path, os.listdir(top))]
    try:
        while stack:
            dirfd, dir_path, names = stack[-1]
            if not names:
                stack.pop()
                if stack:
                    os.close(dirfd)
                    _remove_dir(stack[-1][0], dir_path.rsplit(b"/", 1)[-1], dir_path)
                continue
            name = os.fsencode(names.pop())
            path = dir_path + b"/" + name
            try:
                os.unlink(name, dir_fd=dirfd)  # a file or symlink; a directory says EISDIR
                continue
            except FileNotFoundError:
                continue
            except IsADirectoryError:
                pass
            except OSError as exc:
                raise _failed(exc, path) from None
            try:
                fd = open_dir(dirfd, name)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, os.fsdecode(path)) from None
            if fd < 0:
                raise _refuse(path, True)
            stack.append((fd, path, os.listdir(fd)))
    finally:
        for dirfd, _, _ in stack[1:]:
            os.close(dirfd)
