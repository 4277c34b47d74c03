"""``safe_rmtree``: delete a directory tree without ever crossing into a mount, and without
ever deleting outside the tree.

``rm -rf`` after a weak post-umount check has wiped whole disks (a bind mount still
attached below the tree, a lazy umount, a devtmpfs bound into a chroot). Here the tree is
first checked with ``mounts_under``; an error in that check refuses the delete, it never
reads as "nothing mounted". Then the walk itself refuses every crossing, in case a mount
appears while it runs: each directory is opened from its parent's descriptor with
``openat2(RESOLVE_NO_XDEV)`` (which fails with EXDEV at a mount point), or, where openat2 is
unavailable, opened and then compared by mount id with the top of the tree. Descriptors are
pinned to their mount, so a mount placed over a directory already opened changes nothing:
the walk goes on deleting the directory underneath, which belongs to the tree. The kernel
itself refuses to unlink or rmdir a mount point (EBUSY).

A descriptor follows its directory when that is renamed, so a directory moved out of the
tree during the walk would be emptied at its new place. Before deleting the entries of a
directory, and again before each rmdir in it, the walk climbs its ``..`` links up to the top
of the tree (and checks that the top still sits in the directory it was opened from); a
directory that left the tree is left alone, the rest is deleted, and the call then raises a
``MountprobeError`` naming it. What the walk deleted in it before it moved was in the tree.
"""

from __future__ import annotations

import errno
import os
import stat

from . import _paths
from .errors import MountedBelow, MountprobeError
from .kernel import openat2 as ko
from .kernel._syscall import OFF

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

    from ._paths import PathArg
    from .model import Mount

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_PIN = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC  # any kind of file, its filesystem not asked


def _link(fd: int) -> bytes:
    """The path the kernel gives for ``fd`` (/proc/self/fd)."""
    return os.readlink(b"/proc/self/fd/%d" % fd)


def _link_or_none(fd: int) -> Optional[bytes]:
    try:
        return _link(fd)
    except OSError:
        return None


def _key(fd: int) -> Tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _listed(raw: bytes, where: bytes, top: int) -> List[Mount]:
    """The mounts at or below the tree: ``mounts_under`` of the path as the caller named it
    (a relative path works where the absolute one has a component the caller may not
    search). Where that fails, the whole table filtered by mount point, which holds every
    mount ``mounts_under`` could give, trusted only when it holds the mount that the kernel
    says holds the tree. Every other outcome raises: no error reads as "nothing mounted"."""
    from . import api
    from .strategies._calls import fd_mount_id

    try:
        return api.mounts_under(raw, include_self=True)
    except (OSError, MountprobeError) as exc:
        first = exc
    try:
        table = api.list_mounts()
        holder = fd_mount_id(top)
    except (OSError, MountprobeError):
        raise _cannot_check(where, first) from first
    text = os.fsdecode(where)
    points = [(m, os.fsencode(m.mountpoint)) for m in table]
    if not any(m.id == holder and (point == where or _paths.is_below(where, point)) for m, point in points):
        raise _cannot_check(where, first) from first
    return [m for m, point in points if m.mountpoint == text or _paths.is_below(point, where)]


def _cannot_check(where: bytes, exc: Exception) -> Exception:
    why = "cannot tell whether anything is mounted at or below it; nothing was deleted"
    if isinstance(exc, OSError) and exc.errno:
        return OSError(exc.errno, f"{exc.strerror} ({why})", os.fsdecode(where))
    return MountprobeError(f"refusing to delete {os.fsdecode(where)}: {why} ({exc})")


def _refuse(raw: bytes, where: bytes, top: int, path: bytes, during: bool) -> MountedBelow:
    """MountedBelow for ``path``, listing what is mounted in the tree now (for the message
    only: the refusal stands whatever that listing meets)."""
    try:
        mounts = _listed(raw, where, top)
    except Exception:  # whatever the listing meets, the refusal stands
        mounts = []
    return MountedBelow(os.fsdecode(path), mounts, during)


def _everything() -> List[Mount]:
    from . import api

    try:
        return api.list_mounts()
    except Exception:  # for the message of a refusal only
        return []


def _split(raw: bytes, where: bytes) -> Tuple[bytes, bytes]:
    """(the parent directory as the caller can reach it, the tree's name in it). A relative
    path stays relative: the absolute one may have a component the caller may not search."""
    stripped = raw.rstrip(b"/")
    head, sep, base = stripped.rpartition(b"/")
    if base in (b".", b".."):  # the kernel resolved it: its parent is one ``..`` further
        return stripped + b"/..", where.rsplit(b"/", 1)[-1]
    if not sep:
        return b".", base
    return head or b"/", base


def safe_rmtree(path: PathArg) -> None:
    """Delete the directory ``path`` and everything in it, like ``shutil.rmtree``, but never
    below a mount point: raise ``MountedBelow`` (listing the mounts) and delete nothing while
    anything is mounted at or below ``path``; where that cannot be checked, delete nothing
    and raise the error that stopped the check (an ``OSError`` with its errno, or a
    ``MountprobeError``, never ``Unsupported``). If a mount appears during the deletion,
    stop before touching anything in it and raise ``MountedBelow`` (what was deleted by
    then stays deleted). A directory renamed out of the tree during the deletion is left
    as it is from then on: the rest is deleted, then ``MountprobeError`` names it and where
    it went. Symlinks are removed, never followed; ``path`` itself must not be one."""
    raw = _paths.to_bytes(path)
    from .strategies import _resolve

    where = _resolve.resolved(raw, False)
    if where == b"/":
        raise MountedBelow("/", _everything(), False)
    parent, base = _split(raw, where)
    try:
        parent_fd = os.open(parent, _PATH)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, os.fsdecode(parent)) from None
    try:
        walk = _Walk(raw, where, parent_fd, base)
        try:
            walk.empty()
            walk.finish()
        finally:
            os.close(walk.top)
    finally:
        os.close(parent_fd)


class _Level:
    """A directory of the walk: its descriptor, its path in the tree, the names still to
    delete, a finished subdirectory still to rmdir, and whether it was checked since."""

    __slots__ = ("checked", "fd", "names", "path", "pending")

    def __init__(self, fd: int, path: bytes, names: List[str]) -> None:
        self.fd = fd
        self.path = path
        self.names = names
        self.pending: Optional[bytes] = None
        self.checked = False


class _Walk:
    def __init__(self, raw: bytes, where: bytes, parent_fd: int, base: bytes) -> None:
        from .probe import capabilities

        self.raw = raw
        self.where = where
        self.parent_fd = parent_fd
        self.base = base
        self.xdev = capabilities().openat2.usable
        self.parent_key = _key(parent_fd)
        self.parent_mount: Optional[int] = None
        self.top_mount: Optional[int] = None
        self.left: List[Tuple[bytes, Optional[bytes]]] = []  # (path in the tree, where it is now)
        self.started = False  # has the walk deleted anything yet
        self.top = self._open_top()
        top = self.top
        try:
            self.top_key = _key(top)
            self.top_link = _link_or_none(top)  # None without /proc: each check climbs
            found = _listed(raw, where, top)
            if found:
                raise MountedBelow(os.fsdecode(where), found, False)
        except BaseException:
            os.close(top)
            raise

    def _open_top(self) -> int:
        """The top, opened once by name: first with O_PATH, which asks no filesystem and
        opens any kind of file (so a mount point is refused whatever it holds, a symlink
        is seen, a FIFO never opened for reading), then as a directory through that."""
        try:
            pin = self._open(self.parent_fd, self.base, _PIN, self.where)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, os.fsdecode(self.where)) from None
        if pin < 0:
            raise _refuse(self.raw, self.where, self.parent_fd, self.where, False)
        try:
            symlink = stat.S_ISLNK(os.fstat(pin).st_mode)
            if not symlink:
                return os.open(b".", _DIR, dir_fd=pin)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, os.fsdecode(self.where)) from None
        finally:
            os.close(pin)
        raise NotADirectoryError(
            errno.ENOTDIR, "a symbolic link: safe_rmtree does not follow it", os.fsdecode(self.raw)
        )

    def _mount_id(self, fd: int, path: bytes) -> int:
        from .strategies._calls import fd_mount_id

        found = fd_mount_id(fd)
        if found is None:
            done = "the walk stopped there" if self.started else "nothing was deleted"
            raise MountprobeError(
                f"refusing to delete {os.fsdecode(path)}: cannot tell which mount it is on here"
                f" (no openat2, statx mount id or /proc); {done}"
            )
        return found

    def _open(self, dirfd: int, name: bytes, flags: int, path: bytes) -> int:
        """Open ``name`` (at ``path``) in ``dirfd`` (the top's parent or a directory of the
        tree) without crossing into another mount: -1 back for a crossing. openat2 where
        allowed (and while it stays allowed: a filter installed later falls back), else open
        and compare mount ids."""
        is_top = dirfd == self.parent_fd
        if self.xdev:
            try:
                return ko.openat2(dirfd, name, flags, ko.RESOLVE_NO_XDEV | ko.RESOLVE_NO_SYMLINKS)
            except OSError as exc:
                if exc.errno == errno.EXDEV:
                    return -1
                if exc.errno not in OFF:
                    raise
                self.xdev = False
        fd = os.open(name, flags, dir_fd=dirfd)
        try:
            if is_top:
                if self.parent_mount is None:
                    self.parent_mount = self._mount_id(self.parent_fd, path)
                same = self._mount_id(fd, path) == self.parent_mount
            else:
                if self.top_mount is None:
                    self.top_mount = self._mount_id(self.top, self.where)
                same = self._mount_id(fd, path) == self.top_mount
        except BaseException:
            os.close(fd)
            raise
        if not same:
            os.close(fd)
            return -1
        return fd

    def _top_in_place(self) -> bool:
        """Does the top of the tree still sit where it was opened? With /proc: its path is
        the one it had. Else: its name in the parent names it, or names a mount placed over
        it while its ``..`` is still the parent."""
        if self.top_link is not None:
            try:
                return _link(self.top) == self.top_link
            except OSError:
                self.top_link = None  # /proc went away: climb
        try:
            st = os.stat(self.base, dir_fd=self.parent_fd, follow_symlinks=False)
            if (st.st_dev, st.st_ino) == self.top_key:
                return True
            up = os.open(b"..", _PATH, dir_fd=self.top)
            try:
                if _key(up) != self.parent_key:
                    return False
            finally:
                os.close(up)
            # An O_PATH open asks no filesystem anything (a dead server's mount included).
            over = self._open(self.parent_fd, self.base, _PIN, self.where)
        except (OSError, MountprobeError):
            return False
        if over >= 0:
            os.close(over)
            return False
        return True

    def _inside(self, fd: int, path: bytes) -> bool:
        """Is the directory ``fd`` still inside the tree, the top itself in place? With
        /proc, one readlink each of its /proc/self/fd link and the top's: the kernel builds
        both paths from the dentries (d_path), so a path below the top's is below the top
        (a rename cannot cross mounts, so no other directory shows the top's path). Else
        climb its ``..`` links up to the top."""
        if self.top_link is not None and fd != self.top:
            try:
                below = _link(fd).startswith(self.top_link + b"/")
            except OSError:
                self.top_link = None  # /proc went away: climb
            else:
                return below and self._top_in_place()
        return self._climb(fd, path)

    def _climb(self, fd: int, path: bytes) -> bool:
        """Is the top among the directories the ``..`` links of ``fd`` climb to, the top
        itself in place? An error above the directory: that cannot be proved (False); in the
        directory itself (no search permission), the error, as its unlinks would meet it."""
        here = fd
        try:
            key = _key(here)
            while key != self.top_key:
                try:
                    up = os.open(b"..", _PATH, dir_fd=here)
                except OSError as exc:
                    if here == fd:
                        raise OSError(exc.errno, exc.strerror, os.fsdecode(path)) from None
                    return False
                if here != fd:
                    os.close(here)
                here = up
                above = _key(here)
                if above == key:  # the root, whose ``..`` is itself
                    return False
                key = above
        finally:
            if here != fd:
                os.close(here)
        return self._top_in_place()

    def _leave(self, level: _Level) -> None:
        """Record that ``level`` left the tree (replacing what was recorded below it)."""
        now = _link_or_none(level.fd)
        below = level.path + b"/"
        self.left = [(p, n) for p, n in self.left if not p.startswith(below)]
        self.left.append((level.path, now))

    def _refuse(self, path: bytes) -> MountedBelow:
        return _refuse(self.raw, self.where, self.top, path, True)

    def _failed(self, exc: OSError, path: bytes) -> Exception:
        """What to raise for a failed unlink or rmdir: EBUSY means a mount point (a mount
        that appeared, or a file bind mount); anything else is the error, naming the path."""
        if exc.errno == errno.EBUSY:
            return self._refuse(path)
        return OSError(exc.errno, exc.strerror, os.fsdecode(path))

    def _rmdir(self, dirfd: int, name: bytes, path: bytes) -> None:
        try:
            os.rmdir(name, dir_fd=dirfd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._failed(exc, path) from None

    def _level(self, fd: int, path: bytes) -> _Level:
        try:
            return _Level(fd, path, os.listdir(fd))
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, os.fsdecode(path)) from None

    def empty(self) -> None:
        """Delete everything inside the top, depth first, with one open descriptor per
        level; each level checked to be inside the tree before its entries are deleted and
        again before each rmdir in it."""
        stack = [self._level(self.top, self.where)]
        self.started = True
        try:
            while stack:
                level = stack[-1]
                # Nothing to delete in an empty directory: its check would only refuse
                # one that may not be searched, which rmdir in its parent deletes.
                if not level.checked and (level.names or level.pending is not None):
                    level.checked = True
                    if not self._inside(level.fd, level.path):
                        self._leave(stack.pop())
                        if stack:
                            os.close(level.fd)
                            stack[-1].checked = False
                        continue
                if level.pending is not None:
                    name, level.pending = level.pending, None
                    self._rmdir(level.fd, name, level.path + b"/" + name)
                if not level.names:
                    stack.pop()
                    if stack:
                        os.close(level.fd)
                        stack[-1].pending = level.path.rsplit(b"/", 1)[-1]
                        stack[-1].checked = False
                    continue
                self._step(stack, level)
        finally:
            for level in stack[1:]:
                os.close(level.fd)

    def _step(self, stack: List[_Level], level: _Level) -> None:
        """Delete the next entry of ``level``: unlink it, or open it and go down."""
        name = os.fsencode(level.names.pop())
        path = level.path + b"/" + name
        try:
            os.unlink(name, dir_fd=level.fd)  # a file or symlink; a directory says EISDIR
            return
        except FileNotFoundError:
            return
        except IsADirectoryError:
            pass
        except OSError as exc:
            raise self._failed(exc, path) from None
        try:
            fd = self._open(level.fd, name, _DIR, path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, os.fsdecode(path)) from None
        if fd < 0:
            raise self._refuse(path)
        try:
            stack.append(self._level(fd, path))
        except BaseException:
            os.close(fd)
            raise

    def finish(self) -> None:
        """Remove the emptied top, where it still sits; then name what left the tree."""
        if not self.left or self.left[-1][0] != self.where:
            if self._top_in_place():
                self._rmdir(self.parent_fd, self.base, self.where)
            else:
                self.left = [(self.where, None)]
        if self.left:
            shown = ", ".join(
                os.fsdecode(p) + (f" (now {os.fsdecode(n)})" if n is not None else "") for p, n in self.left
            )
            raise MountprobeError(
                f"{shown}: moved out of the tree during the deletion of {os.fsdecode(self.where)}, and left as it"
                " was from then on; the rest of the tree was deleted"
            )
