"""statx ``STATX_ATTR_MOUNT_ROOT`` (Linux 5.8): one syscall says whether a path is the root
of a mount, bind and file bind mounts included, without touching the filesystem behind it."""

from __future__ import annotations

from ..errors import Unsupported
from ..kernel import statx as k
from . import _calls

_ROOT = k.STATX_ATTR_MOUNT_ROOT


def is_mountpoint(path: bytes, follow: bool) -> bool:
    """True when ``path`` is the root of a mount, or the process root."""
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
