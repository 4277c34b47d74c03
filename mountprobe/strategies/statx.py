"""statx ``STATX_ATTR_MOUNT_ROOT`` (Linux 5.8): one syscall says whether a path is the root
of a mount, bind and file bind mounts included, without touching the filesystem behind it;
with ``STATX_MNT_ID`` (5.8), a walk up the canonical path finds the mount point of any path
in O(depth) syscalls, never reading the table (the question ``mount_root`` on 5.8-6.7)."""

from __future__ import annotations

import os

from .. import _paths
from ..errors import OutsideRoot, Unsupported
from ..kernel import statx as k
from ..probe import capabilities
from . import _calls, _resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..namespaces import Target, Where

_ROOT = k.STATX_ATTR_MOUNT_ROOT


def is_mountpoint(path: bytes, follow: bool, where: Where = None) -> bool:
    """True when ``path`` is the root of a mount, or the process root."""
    if where is not None:
        return _elsewhere(path, follow, where)
    # An empty mask: MOUNT_ROOT comes from the VFS, and a FUSE filesystem answers it even to
    # a user it refuses every attribute (another user's mount without allow_other; root too).
    st = _calls.statx(path, follow, 0)  # ENOSYS or EPERM: Unsupported
    if st.attributes & _ROOT:
        return True
    if not st.attributes_mask & _ROOT:
        raise Unsupported("statx has no STATX_ATTR_MOUNT_ROOT (< 5.8)")
    # In a chroot to a plain directory "/" is no mount root, yet it is the root of
    # everything this process sees: compare with "/" (systemd is_mount_point_at).
    if not st.mask & k.STATX_INO:
        st = _calls.statx(path, follow, k.STATX_INO)
    root = _calls.statx(b"/", True, k.STATX_INO)
    return st.ino == root.ino and st.dev_major == root.dev_major and st.dev_minor == root.dev_minor


def _elsewhere(path: bytes, follow: bool, where: Target) -> bool:
    """The same question of a path opened in another namespace's root (``where``)."""
    fd = where.open(path, follow)
    try:
        if where.is_root(fd):
            return True
        try:
            st = where.statx(fd, 0)
        except OSError as exc:
            _calls.refused("statx", exc)
            raise
    finally:
        os.close(fd)
    if not st.attributes & _ROOT and not st.attributes_mask & _ROOT:
        raise Unsupported("statx has no STATX_ATTR_MOUNT_ROOT (< 5.8)")
    return bool(st.attributes & _ROOT)


def mount_root(path: bytes, where: Where = None) -> str:
    """The mount point of the mount holding ``path`` (symlinks followed), without the table
    (Linux 5.8: ``STATX_MNT_ID`` and ``STATX_ATTR_MOUNT_ROOT``): the nearest ancestor-or-self
    of its canonical path that is the root of that same mount. Mount ids, not devices, so
    that a bind within one filesystem and a mount stacked over another are told apart (the
    root of a bind is a mount root, a file bind too). An empty mask: both come from the VFS,
    also for a FUSE filesystem that refuses the caller every attribute."""
    if where is not None:
        raise Unsupported("statx: walks the caller's own paths")
    caps = capabilities()
    if not (caps.statx_mount_root and caps.statx_mnt_id):
        raise Unsupported("statx has no STATX_MNT_ID or STATX_ATTR_MOUNT_ROOT (< 5.8)")
    # One open gives the mount and the canonical name of the same file (a path resolved
    # twice could meet a mount attached in between).
    try:
        fd = os.open(path, _resolve.OPEN)
    except OSError as exc:
        raise _calls.with_path(exc, path) from None
    try:
        st = _statx_fd(fd)
        at = _resolve.name_of(fd, path, True)
    finally:
        os.close(fd)
    if not st.mask & k.STATX_MNT_ID:
        raise Unsupported("statx gave no mount id")
    if not at.startswith(b"/"):  # a pipe, a socket, an anonymous inode: in no table
        raise Unsupported(f"{os.fsdecode(path)} has no path from the root")
    mnt_id = st.mnt_id
    here = at
    while not st.attributes & _ROOT:
        if here == b"/":
            # The same mount as the path, and no mount root: the root of a chroot to a plain
            # directory, whose mount neither mountinfo nor statmount shows from here.
            raise OutsideRoot(path, mnt_id)
        here = _paths.parent_dir(here)
        st = _component(here)
        if st.mnt_id != mnt_id:
            # An ancestor on another mount before the root of this one: a mount attached or
            # moved during the walk. The table answers as of one moment.
            raise Unsupported(f"{os.fsdecode(here)} changed mounts during the walk")
    return os.fsdecode(here)


def _statx_fd(fd: int) -> k.Statx:
    return _calls.statx(b"", True, 0, fd)


def _component(path: bytes) -> k.Statx:
    try:
        return _calls.statx(path, False, 0)
    except OSError as exc:
        raise _calls.with_path(exc, path) from None
