"""Source matching for ``is_mounted``: does a mount come from the ``source`` the caller
names? A block device or a LABEL=/UUID=/PARTUUID=/PARTLABEL= tag (by device number, as
udev links them), a loop-mounted image file (its backing file), a directory or file (a bind
mount of exactly that path), or the text the kernel reports. Paths are looked at in the
``Where`` of the question (``mountprobe.namespaces``); the mount records come from the
caller's question (``mount_of``), so nothing here asks a question itself."""

from __future__ import annotations

import os
import stat

from . import _lazy
from ._paths import to_bytes
from .errors import Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional, Tuple

    from ._paths import PathArg
    from .model import Mount
    from .namespaces import Where

_TAGS = {b"LABEL": b"by-label", b"UUID": b"by-uuid", b"PARTUUID": b"by-partuuid", b"PARTLABEL": b"by-partlabel"}


_UDEV_SAFE = frozenset(b"#+-.:=@_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _udev_escape(value: bytes) -> bytes:
    # udev keeps UTF-8 and a few punctuation bytes in /dev/disk/by-* names, and writes
    # every other byte as \xNN (encode_devnode_name).
    return b"".join(bytes((c,)) if c in _UDEV_SAFE or c >= 0x80 else b"\\x%02x" % c for c in value)


def _as_path(source: bytes) -> Optional[bytes]:
    """The filesystem path that ``source`` names, like mount(8) resolves it: an absolute or
    ./-relative path, or a LABEL=/UUID=/PARTUUID=/PARTLABEL= tag that udev has linked."""
    tag, eq, value = source.partition(b"=")
    if eq and tag in _TAGS:
        link = b"/dev/disk/" + _TAGS[tag] + b"/" + _udev_escape(value.strip(b"\"'"))
        return link if os.path.lexists(link) else None
    if source.startswith((b"/", b"./", b"../")):
        return source
    return None


def _same_source_text(reported: Optional[str], wanted: bytes) -> bool:
    if reported is None:
        return False
    have = os.fsencode(reported)
    # NFS reports "server:/export/" for "server:/export" (ClusterLabs/resource-agents#74).
    return have == wanted or (have.rstrip(b"/") or b"/") == (wanted.rstrip(b"/") or b"/")


def _loop_backing(m: Mount) -> Optional[bytes]:
    return loop_backing(m.major, m.minor)


def loop_backing(major: int, minor: int) -> Optional[bytes]:
    """The backing file of loop device ``major:minor``; None for any other device."""
    try:
        with open(f"/sys/dev/block/{major}:{minor}/loop/backing_file", "rb") as f:
            return f.read().rstrip(b"\n")
    except OSError:
        return None


def _canonical(path: bytes, where: Where) -> bytes:
    if where is not None:
        return where.canonical(path)
    _lazy.load(f"{__package__}.strategies._resolve")
    from .strategies import _resolve

    return _resolve.canonical(path)


def _is_bind_of(m: Mount, source: bytes, where: Where, mount_of: Callable[[bytes], Mount]) -> bool:
    """Is ``m`` a bind mount of exactly ``source``: same superblock, and its root is the
    path of ``source`` inside that filesystem."""
    holder = mount_of(source)
    at = _canonical(source, where)
    top = os.fsencode(holder.mountpoint)
    rel = at[len(top) :] if top != b"/" else at
    root = os.fsencode(holder.root).rstrip(b"/") + (rel if rel.startswith(b"/") else b"/" + rel)
    return (holder.major, holder.minor) == (m.major, m.minor) and os.fsencode(m.root) == (root.rstrip(b"/") or b"/")


def matches(
    m: Mount, source: PathArg, where: Where, mount_of: Callable[[bytes], Mount], from_root: bool = False
) -> bool:
    """Does the mount ``m`` come from ``source``? ``mount_of`` is the question asked in
    ``where``; ``from_root``: a relative path is taken from the root (``pid=``)."""
    wanted = to_bytes(source)
    path = _as_path(wanted)
    if path is None:
        return _same_source_text(m.source, wanted)
    if from_root and not path.startswith(b"/"):
        path = b"/" + path
    try:
        mode, rdev = where.kind(path) if where is not None else kind(path)
    except (FileNotFoundError, NotADirectoryError):
        return _same_source_text(m.source, wanted)
    if stat.S_ISBLK(mode):
        return bool(rdev == (m.major, m.minor))
    if stat.S_ISREG(mode) and _loop_backing(m) == _canonical(path, where):
        return True
    return _is_bind_of(m, path, where, mount_of)


def kind(path: bytes) -> Tuple[int, Tuple[int, int]]:
    """The file type and device number of ``path`` from statx with AT_STATX_DONT_SYNC, so
    that a source on a dead network or FUSE filesystem is never asked. Without statx
    (< 4.11, or blocked): a directory is recognised without asking its filesystem, and only
    a file is stat(2)ed."""
    _lazy.load(f"{__package__}.strategies._calls")  # and with it kernel.statx
    _lazy.load(f"{__package__}.strategies._resolve")
    from .kernel import statx as k
    from .strategies import _calls, _resolve

    try:
        st = _calls.statx(path, True, k.STATX_TYPE)
        return st.mode, (st.rdev_major, st.rdev_minor)
    except Unsupported:
        pass
    except PermissionError:
        # FUSE refuses attributes to all but its owner (an EACCES from a parent the caller
        # may not search raises here again): the type is unknown, so the path is compared
        # as a bind source (no device node lives on such a filesystem).
        _calls.statx(path, True, 0)
        return 0, (0, 0)
    directory = _resolve.is_directory(path)
    if directory is None:
        return 0, (0, 0)
    if directory:
        return stat.S_IFDIR, (0, 0)
    st_ = os.stat(path)
    return st_.st_mode, (os.major(st_.st_rdev), os.minor(st_.st_rdev))
