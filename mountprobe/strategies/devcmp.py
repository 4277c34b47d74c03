"""Device comparison with the parent directory: the ``bind=False`` question, "is another
filesystem mounted here?" (the classic two-stat test of ``os.path.ismount``).

Asked only about paths already known to be mount roots, so a btrfs subvolume or a file on
overlayfs (own ``st_dev``, no mount) is never mistaken for one. Device numbers come from
statx with ``AT_STATX_DONT_SYNC`` where possible, so no network filesystem is consulted.
"""

from __future__ import annotations

import os
from typing import Tuple

from .._paths import parent_dir
from ..kernel import statx as k
from ..probe import capabilities
from . import _calls, _resolve


def _device(path: bytes, follow: bool) -> Tuple[int, int]:
    if capabilities().statx.usable:
        st = _calls.statx(path, follow, k.STATX_TYPE)
        return st.dev_major, st.dev_minor
    dev = (os.stat if follow else os.lstat)(path).st_dev
    return os.major(dev), os.minor(dev)


def differs_from_parent(path: bytes, follow: bool) -> bool:
    """True when the device of ``path`` differs from that of the directory holding it
    (always True for ``/``)."""
    where = _resolve.resolved(path, follow)
    if where == b"/":
        return True
    return _device(where, False) != _device(parent_dir(where), True)
