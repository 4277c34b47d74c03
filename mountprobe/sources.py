"""Source matching for ``is_mounted``: does a mount come from the ``source`` the caller
names? A block device or a LABEL=/UUID=/PARTUUID=/PARTLABEL= tag (by device number, as
udev links them; without a link, read from the mount's own device as libblkid reads it:
``_superblock``), a loop-mounted image file (its backing file), a directory or file (a bind
mount of exactly that path), or the text the kernel reports. Paths are looked at in the
``Where`` of the question (``mountprobe.namespaces``); the mount records come from the
caller's question (``mount_of``), so nothing here asks a question itself."""

from __future__ import annotations

import os
import stat

from . import _lazy, _superblock
from ._paths import to_bytes
from .errors import Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, Optional, Tuple

    from ._paths import PathArg
    from .model import Mount
    from .namespaces import Where

_TAGS = {b"LABEL": b"by-label", b"UUID": b"by-uuid", b"PARTUUID": b"by-partuuid", b"PARTLABEL": b"by-partlabel"}


_UDEV_SAFE = frozenset(b"#+-.:=@_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _udev_escape(value: bytes) -> bytes:
    # udev keeps UTF-8 and a few punctuation bytes in /dev/disk/by-* names, and writes
    # every other byte as \xNN (encode_devnode_name).
    return b"".join(bytes((c,)) if c in _UDEV_SAFE or c >= 0x80 else b"\\x%02x" % c for c in value)


def _tag(source: bytes) -> Optional[Tuple[bytes, bytes]]:
    """The tag and value of a LABEL=/UUID=/PARTUUID=/PARTLABEL= ``source``, quotes off as
    mount(8) takes them off; None for any other source."""
    tag, eq, value = source.partition(b"=")
    return (tag, value.strip(b"\"'")) if eq and tag in _TAGS else None


def _as_path(source: bytes) -> Optional[bytes]:
    """The filesystem path that ``source`` names, like mount(8) resolves it: an absolute or
    ./-relative path, or a LABEL=/UUID=/PARTUUID=/PARTLABEL= tag that udev has linked."""
    tagged = _tag(source)
    if tagged is not None:
        link = b"/dev/disk/" + _TAGS[tagged[0]] + b"/" + _udev_escape(tagged[1])
        return link if os.path.lexists(link) else None
    if source.startswith((b"/", b"./", b"../")):
        return source
    return None


def _reported_device(m: Mount, where: Where) -> Optional[Tuple[int, int]]:
    """The number of the block device that ``m`` reports as its source, for a filesystem
    that gives its mounts an anonymous device number (btrfs: 0:N, whatever its devices)."""
    if m.source is None or not m.source.startswith("/"):
        return None
    try:
        mode, rdev = where.kind(os.fsencode(m.source)) if where is not None else kind(os.fsencode(m.source))
    except OSError:
        return None
    return rdev if stat.S_ISBLK(mode) else None


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
        if _same_source_text(m.source, wanted):
            return True
        tagged = _tag(wanted)
        # No udev link names the tag (none in containers and on hosts without udev): the
        # mount's own device is read, as libblkid's scan reads every device there.
        return tagged is not None and _device_has_tag(m, tagged[0], tagged[1], where)
    if from_root and not path.startswith(b"/"):
        path = b"/" + path
    try:
        mode, rdev = where.kind(path) if where is not None else kind(path)
    except (FileNotFoundError, NotADirectoryError):
        return _same_source_text(m.source, wanted)
    if stat.S_ISBLK(mode):
        return rdev == (m.major, m.minor) or (m.major == 0 and _reported_device(m, where) == rdev)
    if stat.S_ISREG(mode) and _loop_backing(m) == _canonical(path, where):
        return True
    return _is_bind_of(m, path, where, mount_of)


def in_btrfs(rdev: Tuple[int, int]) -> bool:
    """Is the block device ``rdev`` a device of a btrfs filesystem this kernel knows (sysfs
    lists each one's devices under /sys/fs/btrfs/FSID/devices/)?"""
    try:
        name = os.path.basename(os.readlink(f"/sys/dev/block/{rdev[0]}:{rdev[1]}"))
        fsids = os.listdir("/sys/fs/btrfs")
    except OSError:
        return False
    return any(os.path.lexists(f"/sys/fs/btrfs/{fsid}/devices/{name}") for fsid in fsids)


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


# -- tags without udev: the mount's device, read ----------------------------------------------


def _device_has_tag(m: Mount, tag: bytes, value: bytes, where: Where) -> bool:
    """Does the block device of ``m`` carry ``tag=value``? False for a mount without a block
    device; Unsupported, naming the tag, the device and why, where the device cannot tell."""
    what = f"{os.fsdecode(tag)}={os.fsdecode(value)}: no /dev/disk/{os.fsdecode(_TAGS[tag])} link names it"
    found = _block_device(m, where, what)
    if found is None:
        return False
    path, rdev = found
    name = f"{os.fsdecode(path)} ({rdev[0]}:{rdev[1]}, the source of {m.mountpoint})"
    try:
        if tag in (b"LABEL", b"UUID"):
            if m.fstype not in _superblock.FILESYSTEMS:
                shown = ", ".join(_superblock.FILESYSTEMS)
                raise Unsupported(
                    f"{what}, and mountprobe reads the {os.fsdecode(tag)} of {shown}, not of the {m.fstype} on {name}"
                )
            with _open_device(path, rdev, where) as dev:
                tags = _superblock.filesystem_tags(dev, m.fstype)
        else:
            tags = _partition_tags(path, rdev, where, what, name)
    except PermissionError as exc:
        raise Unsupported(
            f"{what}, and {name} cannot be read to look for it: permission denied (reading a device "
            "takes root or its group, such as disk)"
        ) from exc
    except TimeoutError as exc:
        raise Unsupported(f"{what}, and {name} did not answer within {_superblock.WAIT:g} s (a dead device?)") from exc
    except OSError as exc:
        raise Unsupported(f"{what}, and {name} cannot be read to look for it: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise Unsupported(f"{what}, and {name} cannot tell: {exc}") from exc
    return tags.get(tag) == value


def _block_device(m: Mount, where: Where, what: str) -> Optional[Tuple[bytes, Tuple[int, int]]]:
    """The device node to read for ``m`` and its number: the source the kernel reports when
    it is the mount's block device, else the node sysfs names for it; for btrfs, whose
    mounts have an anonymous device number (0:N), the block device it reports as source.
    None for a mount without a block device (tmpfs, overlay, NFS)."""
    source = os.fsencode(m.source) if m.source is not None and m.source.startswith("/") else None
    if m.major == 0:
        if m.fstype != "btrfs":
            return None
        rdev = _reported_device(m, where)
        if source is None or rdev is None:
            raise Unsupported(f"{what}, and the source of {m.mountpoint} ({m.source}) is no block device to read")
        return source, rdev
    devname = _sysfs_devname((m.major, m.minor))
    for path in (source, None if devname is None else b"/dev/" + devname):
        if path is None:
            continue
        try:
            mode, rdev = where.kind(path) if where is not None else kind(path)
        except OSError:
            continue
        if stat.S_ISBLK(mode) and rdev == (m.major, m.minor):
            return path, rdev
    raise Unsupported(f"{what}, and no device node for {m.major}:{m.minor} (the source of {m.mountpoint}) to read")


def _sysfs(rdev: Tuple[int, int], name: str) -> Optional[bytes]:
    try:
        with open(f"/sys/dev/block/{rdev[0]}:{rdev[1]}/{name}", "rb") as f:
            return f.read().strip()
    except OSError:
        return None


def _sysfs_devname(rdev: Tuple[int, int]) -> Optional[bytes]:
    """The kernel's name of the device (``DEVNAME=`` in its uevent: sda1, mapper names are
    dm-0), as devtmpfs names its node."""
    uevent = _sysfs(rdev, "uevent")
    for line in (uevent or b"").splitlines():
        if line.startswith(b"DEVNAME="):
            return line[8:]
    return None


def _open_device(path: bytes, rdev: Tuple[int, int], where: Where) -> _superblock.Device:
    if where is None:
        return _superblock.open_device(path, rdev)
    fd = where.open(path)
    try:
        return _superblock.open_device(path, rdev, fd)
    finally:
        os.close(fd)


def _partition_tags(path: bytes, rdev: Tuple[int, int], where: Where, what: str, name: str) -> Dict[bytes, bytes]:
    """PARTUUID and PARTLABEL of the partition ``rdev`` (none for a device that is not a
    partition), from the partition table of its disk, found through sysfs."""
    if _sysfs(rdev, "dev") is None:
        raise Unsupported(f"{what}, and /sys/dev/block/{rdev[0]}:{rdev[1]} cannot be read to find the disk of {name}")
    number = _sysfs(rdev, "partition")
    if number is None and (_sysfs(rdev, "dm/uuid") or b"").lower().startswith(b"part"):
        # kpartx maps partitions with device-mapper, which sysfs gives no start: libblkid
        # matches them by the number in the dm uuid, which is not done here.
        raise Unsupported(f"{what}, and {name} is a device-mapper partition, whose entry mountprobe does not read")
    if number is None:
        return {}  # a whole disk: no partition entry
    start, size = _sysfs(rdev, "start"), _sysfs(rdev, "size")
    disk = _sysfs(rdev, "../dev")
    whole = tuple(int(n) for n in disk.split(b":")) if disk else ()
    if start is None or size is None or len(whole) != 2:
        raise Unsupported(f"{what}, and sysfs does not say where the partition {name} lies on its disk")
    disk_rdev = (whole[0], whole[1])
    sector = int(_sysfs(disk_rdev, "queue/logical_block_size") or b"512")
    disk_size = int(_sysfs(disk_rdev, "size") or b"0")
    devname = _sysfs_devname(disk_rdev)
    if devname is None:
        raise Unsupported(f"{what}, and sysfs does not name the disk {disk_rdev[0]}:{disk_rdev[1]} of {name}")
    disk_path = b"/dev/" + devname
    try:
        mode, found = where.kind(disk_path) if where is not None else kind(disk_path)
    except OSError as exc:
        raise Unsupported(f"{what}, and no device node {os.fsdecode(disk_path)} for the disk of {name}") from exc
    if not stat.S_ISBLK(mode) or found != disk_rdev:
        raise Unsupported(
            f"{what}, and {os.fsdecode(disk_path)} is not the disk {disk_rdev[0]}:{disk_rdev[1]} of {name}"
        )
    with _open_device(disk_path, disk_rdev, where) as dev:
        return _superblock.partition_tags(dev, sector, disk_size * 512 // sector, int(start), int(size), int(number))
