"""``is_mounted`` without a record, from what statx (5.8) and statmount's always-filled
fields (6.8) prove: the mount root, the device, the inode of a bind's root, the type.

Before 6.15 (no ``supported_mask``) a clear bit of a statmount reply is ambiguous: the
kernel may lack the field, or the mount have it empty. Only the fields every statmount fills
(``SB_BASIC``: the device; ``FS_TYPE``; ``MNT_ROOT``) are taken without proof; a source
text or an fs subtype is taken when its bit is set, or when the probe proved the kernel
has it. Whatever cannot be proved here is left to the records (``api.is_mounted``).
"""

from __future__ import annotations

import errno
import os
import stat

from .._paths import to_bytes
from ..errors import Unsupported
from ..kernel import mount as km
from ..kernel import statx as kx
from ..kernel._syscall import OFF
from ..probe import capabilities
from ..sources import _as_path, _same_source_text, _tag, in_btrfs, kind, loop_backing
from . import _calls, _resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from .._paths import PathArg
    from ..namespaces import Where

_ROOT = kx.STATX_ATTR_MOUNT_ROOT
# The fields every reply fills since 6.8 (do_statmount() in fs/namespace.c), and the two an
# answer may need whose clear bit proves nothing before 6.15.
_ASKED = km.STATMOUNT_SB_BASIC | km.STATMOUNT_FS_TYPE | km.STATMOUNT_FS_SUBTYPE | km.STATMOUNT_SB_SOURCE
_SUBTYPED = ("fuse", "fuseblk")  # the filesystems with FS_HAS_SUBTYPE


def _statx_fd(fd: int, mask: int) -> kx.Statx:
    try:
        return _calls.statx(b"", True, mask, fd)
    except PermissionError as exc:  # FUSE refuses a mask to all but its owner
        _calls.unsupported("statx", exc)


def _reply(mnt_id: int) -> km.StatmountReply:
    try:
        return km.statmount(mnt_id, _ASKED)
    except OSError as exc:
        if exc.errno in OFF or exc.errno in (errno.EINVAL, errno.ENOENT):
            # blocked; or the mount detached since the statx (its fd pins it, but not to
            # this namespace): the records say what is at the path now
            _calls.unsupported("statmount", exc)
        raise


class _Target:
    """What is proved about the mount at the target: its device, and (6.8+) its statmount
    reply; the open ``fd`` of its root for a comparison of inodes."""

    def __init__(self, fd: int, st: kx.Statx, reply: Optional[km.StatmountReply]) -> None:
        self.fd = fd
        self.reply = reply
        self.device = (reply.sb_dev_major, reply.sb_dev_minor) if reply else (st.dev_major, st.dev_minor)


def is_mounted(
    path: bytes, source: Optional[PathArg], fstype: Optional[str], from_root: bool, where: Where = None
) -> bool:
    """Is a mount of ``source`` (and type ``fstype``) at ``path``? Unsupported where the
    answer needs a field this kernel does not prove."""
    if where is not None:
        raise Unsupported("attrs: looks at the caller's own paths")
    caps = capabilities()
    if not (caps.statx_mount_root and caps.statx_mnt_id):
        raise Unsupported("statx has no STATX_MNT_ID or STATX_ATTR_MOUNT_ROOT (< 5.8)")
    by_statmount = caps.statx_unique_id and caps.statmount.usable
    if fstype is not None and not by_statmount:
        raise Unsupported("the fs type needs statmount (6.8): statfs's f_type names no type exactly")
    try:
        fd = os.open(path, _resolve.OPEN)
    except OSError as exc:
        raise _calls.with_path(exc, path) from None
    try:
        st = _statx_fd(fd, kx.STATX_MNT_ID_UNIQUE if by_statmount else 0)
        if not st.attributes & _ROOT:
            if _resolve.name_of(fd, path, True) == b"/":  # the root of a plain-directory chroot
                raise Unsupported("/ is no mount root here: a chroot to a plain directory")
            return False
        reply = None
        if by_statmount:
            if not st.mask & kx.STATX_MNT_ID_UNIQUE:
                raise Unsupported("statx ignored STATX_MNT_ID_UNIQUE")
            reply = _reply(st.mnt_id)
            if fstype is not None and not _same_type(
                reply, fstype, bool(caps.statmount_fields & km.STATMOUNT_FS_SUBTYPE)
            ):
                return False
        if source is None:
            return True
        return _from(_Target(fd, st, reply), source, bool(caps.statmount_fields & km.STATMOUNT_SB_SOURCE))
    finally:
        os.close(fd)


def _same_type(reply: km.StatmountReply, fstype: str, proved: bool) -> bool:
    main, dot, sub = fstype.partition(".")
    have = (reply.fs_type or b"").decode(errors="surrogateescape")
    if main != have:
        return False
    if not dot:
        return True  # the main type of a type.subtype matches, as the records compare
    if have not in _SUBTYPED:
        return False  # no subtype: only FS_HAS_SUBTYPE filesystems take one (fs_context.c)
    if reply.fs_subtype is not None:
        return os.fsencode(sub) == reply.fs_subtype
    if not proved:
        raise Unsupported("statmount's FS_SUBTYPE bit is clear, and this kernel cannot say it is empty (< 6.15)")
    return False


def _text(target: _Target, wanted: bytes, proved: bool) -> bool:
    reply = target.reply
    if reply is None:
        raise Unsupported("a source text needs statmount's SB_SOURCE (6.13)")
    if reply.sb_source is None and not proved:
        raise Unsupported("statmount's SB_SOURCE bit is clear, and this kernel cannot say it is empty (< 6.15)")
    return _same_source_text(None if reply.sb_source is None else os.fsdecode(reply.sb_source), wanted)


def _from(target: _Target, source: PathArg, proved: bool) -> bool:
    wanted = to_bytes(source)
    path = _as_path(wanted)
    if path is None:
        if _text(target, wanted, proved):
            return True
        if _tag(wanted) is not None:  # no udev link names it: the records read the device
            raise Unsupported("a LABEL=/UUID= tag without a udev link needs the mount's device read")
        return False
    try:
        mode, rdev = kind(path)
    except (FileNotFoundError, NotADirectoryError):
        return _text(target, wanted, proved)
    if stat.S_ISBLK(mode):
        # The device of the superblock; before 6.8 the root's stx_dev, which differs from
        # it only where a filesystem reports per-subvolume devices (btrfs, bcachefs), whose
        # superblocks have anonymous devices that no block device node carries.
        if rdev == target.device:
            return True
        if target.device[0] == 0 and in_btrfs(rdev):
            # btrfs gives its mounts an anonymous device: only the source they report names it
            raise Unsupported("a device of a btrfs filesystem: the records compare the mount's source")
        return False
    if stat.S_ISREG(mode) and loop_backing(*target.device) == _resolve.canonical(path):
        return True
    return _bind_of(target, path)


def _bind_of(target: _Target, path: bytes) -> bool:
    """Is the mount a bind of exactly the directory ``path``? Its root is then the very
    dentry ``path`` names, so the same inode, and a directory's inode has one path inside
    its filesystem. A file may have several links, whose binds differ only by the root's
    name: the records compare those."""
    try:
        fd = os.open(path, _resolve.OPEN)
    except OSError as exc:
        raise _calls.with_path(exc, path) from None
    try:
        theirs = _statx_fd(fd, kx.STATX_INO | kx.STATX_TYPE)
    finally:
        os.close(fd)
    mine = _statx_fd(target.fd, kx.STATX_INO)
    if not (theirs.mask & mine.mask & kx.STATX_INO and theirs.mask & kx.STATX_TYPE):
        raise Unsupported("statx gave no inode number or file type")
    if (theirs.ino, theirs.dev_major, theirs.dev_minor) != (mine.ino, mine.dev_major, mine.dev_minor):
        return False
    if stat.S_ISDIR(theirs.mode):
        return True
    raise Unsupported(f"{os.fsdecode(path)} is no directory: only its mount's root path tells which link was bound")
