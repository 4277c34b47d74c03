"""statx ``STATX_ATTR_MOUNT_ROOT`` (Linux 5.8): one syscall says whether a path is the root
of a mount, bind and file bind mounts included, without touching the filesystem behind it."""

from __future__ import annotations

from ..errors import Unsupported
from ..kernel import statx as k
from . import _calls

_MASK = k.STATX_TYPE | k.STATX_INO
_ROOT = k.STATX_ATTR_MOUNT_ROOT


def is_mountpoint(path: bytes, follow: bool) -> bool:
    """True when ``path`` is the root of a mount, or the process root."""
    st = _calls.statx(path, follow, _MASK)  # ENOSYS or EPERM: Unsupported
    if st.attributes & _ROOT:
        return True
    if not st.attributes_mask & _ROOT:
        raise Unsupported("statx has no STATX_ATTR_MOUNT_ROOT (< 5.8)")
    # In a chroot to a plain directory "/" is no mount root, yet it is the root of
    # everything this process sees: compare with "/" (systemd is_mount_point_at).
    root = _calls.statx(b"/", True, _MASK)
    return st.ino == root.ino and st.dev_major == root.dev_major and st.dev_minor == root.dev_minor
