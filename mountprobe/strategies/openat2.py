"""openat2 ``RESOLVE_NO_XDEV`` (Linux 5.6), moby/sys ``mountedByOpenat2``: opening the last
component from its parent fails with EXDEV exactly when it crosses into another mount.

Worth it only where statx lacks MOUNT_ROOT (5.6-5.7) or is blocked: three syscalls, and the
parent must be resolved first, so that crossings above the leaf do not count (moby/sys #25).
"""

from __future__ import annotations

import errno
import os

from ..errors import Unsupported
from ..kernel import openat2 as k
from ..kernel.statx import AT_FDCWD
from ..probe import capabilities
from . import _calls, _resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..namespaces import Where


def is_mountpoint(path: bytes, follow: bool, where: Where = None) -> bool:
    """True when the last component of ``path`` is the root of another mount."""
    if where is not None:
        raise Unsupported("openat2: resolves parents in the caller's namespace only")
    if not capabilities().openat2.usable:
        raise Unsupported(f"openat2 {capabilities().openat2.status}")
    parent, leaf = _resolve.split_leaf(path, follow)
    if not leaf:
        return True  # openat2 cannot test "/": ".." from a mount root is also EXDEV
    try:
        dirfd = k.openat2(AT_FDCWD, parent, os.O_PATH | os.O_CLOEXEC | os.O_DIRECTORY)
    except OSError as exc:
        _calls.refused("openat2", exc)
        raise
    try:
        fd = k.openat2(dirfd, leaf, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW, k.RESOLVE_NO_XDEV)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            return True
        _calls.refused("openat2", exc)
        raise _calls.with_path(exc, path) from None
    finally:
        os.close(dirfd)
    os.close(fd)
    return False
