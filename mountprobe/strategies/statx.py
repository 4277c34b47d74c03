"""statx ``STATX_ATTR_MOUNT_ROOT`` (Linux 5.8): one syscall says whether a path is the root
of a mount, bind and file bind mounts included, without touching the filesystem behind it."""

from __future__ import annotations

import os

from ..errors import Unsupported
from ..kernel import statx as k
from . import _calls

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
