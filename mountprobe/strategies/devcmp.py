"""Device comparison with the parent directory: the ``bind=False`` question, "is another
filesystem mounted here?" (the classic two-stat test of ``os.path.ismount``).

Asked only about paths already known to be mount roots, so a btrfs subvolume or a file on
overlayfs (own ``st_dev``, no mount) is never mistaken for one. Device numbers come from
statx with ``AT_STATX_DONT_SYNC``, so no network or FUSE server is consulted. Without
statx (< 4.11, or blocked) stat(2) would ask that server: the superblock devices of the
mount table are compared instead, which differ from ``st_dev`` only on btrfs subvolumes.
"""

from __future__ import annotations

from .._paths import parent_dir
from ..errors import MountprobeError, Unsupported
from ..probe import capabilities
from . import _calls, _resolve, mountinfo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..namespaces import Where


def _device(path: bytes, follow: bool) -> tuple[int, int]:
    st = _calls.statx(path, follow, 0)  # the device needs no mask (nor FUSE's consent)
    return st.dev_major, st.dev_minor


def _superblock(path: bytes) -> tuple[int, int]:
    here = mountinfo.mount_at(path, False)
    if here is None:  # unmounted since the caller found a mount root here
        raise MountprobeError(f"{path.decode(errors='replace')}: no longer a mount point")
    return here.major, here.minor


def differs_from_parent(path: bytes, follow: bool, where: Where = None) -> bool:
    """True when the device of ``path`` differs from that of the directory holding it
    (always True for ``/``)."""
    if where is not None:
        raise Unsupported("devcmp: compares paths of the caller's namespace only")
    at = _resolve.resolved(path, follow)
    if at == b"/":
        return True
    if capabilities().statx.usable:
        try:
            return _device(at, False) != _device(parent_dir(at), True)
        except Unsupported:
            pass  # statx blocked since the probe (which is now up to date)
    above = mountinfo.mount_of(parent_dir(at), True, False)
    return _superblock(at) != (above.major, above.minor)
