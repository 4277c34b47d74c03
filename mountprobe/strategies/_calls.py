"""Kernel calls as the strategies need them: a syscall that is absent (ENOSYS) or blocked
(EPERM from seccomp) becomes ``Unsupported`` in ``refused``, the one place that decides it;
every other errno stays an ``OSError``."""

from __future__ import annotations

import errno
import os

from .. import probe
from ..errors import Unsupported
from ..kernel import fhandle as _fhandle
from ..kernel import statx as _statx
from ..kernel._syscall import OFF

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn, Optional

# AT_NO_AUTOMOUNT: never trigger an automount; AT_STATX_DONT_SYNC: never ask a network or
# FUSE server ("mounts are a local concept", systemd mountpoint-util.c). Indexed by follow.
STATX_FLAGS = (
    _statx.AT_NO_AUTOMOUNT | _statx.AT_STATX_DONT_SYNC | _statx.AT_SYMLINK_NOFOLLOW,
    _statx.AT_NO_AUTOMOUNT | _statx.AT_STATX_DONT_SYNC,
)


def unsupported(what: str, exc: OSError) -> NoReturn:
    raise Unsupported(f"{what}: {errno.errorcode.get(exc.errno or 0, '?')} ({exc.strerror})") from None


def refused(name: str, exc: OSError, answers: bool = False, flag_unknown: bool = False) -> None:
    """Return at once for an errno that is an answer (the caller raises it). For an errno in
    ``OFF`` from syscall ``name`` (a ``Capabilities`` field), and with ``flag_unknown`` for an
    EINVAL (a flag this kernel does not know): raise Unsupported, so that the next strategy
    answers. The cached probe may predate a seccomp
    filter installed since (a service locking itself down after start-up), so an interface it
    found usable is probed again, which brings ``capabilities()`` up to date. ``answers``: an
    EPERM from ``name`` can also be the kernel's answer about the mount asked for (statmount
    and listmount of one outside this process's root); then this returns when the fresh probe
    finds ``name`` still usable, and the caller takes the EPERM as that answer."""
    if exc.errno not in OFF and not (flag_unknown and exc.errno == errno.EINVAL):
        return
    if getattr(probe.capabilities(), name).usable and probe.recheck(name) and answers and exc.errno == errno.EPERM:
        return
    unsupported(name, exc)


def statx(path: bytes, follow: bool, mask: int, dirfd: int = _statx.AT_FDCWD) -> _statx.Statx:
    """statx of ``path`` relative to ``dirfd`` (b"": ``dirfd`` itself), with the inspection flags."""
    try:
        return _statx.statx(dirfd, path, STATX_FLAGS[follow] | (0 if path else _statx.AT_EMPTY_PATH), mask)
    except OSError as exc:
        refused("statx", exc)
        raise


def in_no_table(path: bytes, mnt_id: int) -> FileNotFoundError:
    """The mount holding ``path`` is in no table of this namespace: statmount's ENOENT ("no
    such mount here"), said plainly, for a path that does exist."""
    why = f"its mount ({mnt_id}) is in no mount table of this namespace: another namespace's, or an internal one"
    return FileNotFoundError(errno.ENOENT, why + " (as of pipes and sockets)", os.fsdecode(path))


def with_path(exc: OSError, path: bytes) -> OSError:
    """The same error, naming ``path``."""
    return OSError(exc.errno, exc.strerror, os.fsdecode(path))


def legacy_mount_id(path: bytes, follow: bool = True, dirfd: int = _statx.AT_FDCWD) -> Optional[int]:
    """The legacy id of the mount holding ``path`` (relative to ``dirfd``; b"": the open
    descriptor ``dirfd``, which pins its mount so that the id cannot be reused meanwhile).
    From statx (5.8) or name_to_handle_at (2.6.39) where allowed, else from the ``mnt_id``
    line of /proc/self/fdinfo (3.15) for an O_PATH descriptor: no syscall a sandbox could
    block. None when none answers. A mount point string is not enough: a mount covered by a
    later one over its parent keeps its line, while its path now leads to a plain directory."""
    caps = probe.capabilities()
    if caps.statx_mnt_id:
        try:
            st = statx(path, follow, 0, dirfd)  # the legacy id comes with any mask
        except Unsupported:
            pass
        else:
            if st.mask & _statx.STATX_MNT_ID:
                return st.mnt_id
    if caps.name_to_handle_at.usable:
        flags = (_fhandle.AT_HANDLE_FID if caps.handle_fid else 0) | (_fhandle.AT_SYMLINK_FOLLOW if follow else 0)
        try:
            return _fhandle.name_to_handle_at(dirfd, path, flags | (0 if path else _fhandle.AT_EMPTY_PATH), 0).mount_id
        except OSError as exc:
            # EOPNOTSUPP: no export operations (procfs, overlayfs) without AT_HANDLE_FID;
            # EINVAL: AT_HANDLE_FID unknown (< 6.5) where the cached probe saw it (a filter since)
            if exc.errno not in OFF and exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
    if not path:
        return fdinfo_mount_id(dirfd)
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW), dir_fd=dirfd)
    except OSError as exc:
        raise with_path(exc, path) from None
    try:
        return fdinfo_mount_id(fd)
    finally:
        os.close(fd)


def fdinfo_mount_id(fd: int) -> Optional[int]:
    """The legacy mount id of an open descriptor from the ``mnt_id`` line of
    /proc/self/fdinfo (3.15). None without /proc."""
    try:
        with open(b"/proc/self/fdinfo/%d" % fd, "rb") as info:
            for line in info:
                if line.startswith(b"mnt_id:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def fd_mount_id(fd: int) -> Optional[int]:
    """The legacy mount id of an open descriptor (``legacy_mount_id`` of it)."""
    return legacy_mount_id(b"", True, fd)
