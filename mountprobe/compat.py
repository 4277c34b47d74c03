"""Drop-in shapes of what Python tools call today, answered by mountprobe.

``from mountprobe import compat``, then replace

- ``os.path.ismount(path)`` with ``compat.ismount(path)``,
- the "walk up until ismount" loop of ansible-core's and Salt's ``find_mount_point`` with
  ``compat.find_mount_point(path)``,
- ``psutil.disk_partitions(all)`` with ``compat.disk_partitions(all)``.

Each keeps the contract of what it replaces (never raises where that never raises, the same
return types and fields) and differs only where the original answers wrong: each function's
docstring lists the differences exactly. Code that wants errors as exceptions should call
``mountprobe.is_mountpoint`` and ``mountprobe.mount_root`` instead.
"""

from __future__ import annotations

import os

from . import api
from ._tuples import Record
from .errors import MountprobeError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import AnyStr, List, Set, Tuple, Union

    from ._paths import PathArg
    from .model import Mount


class sdiskpart(Record):  # psutil's name
    """One partition as psutil.disk_partitions() gives it."""

    device: str
    mountpoint: str
    fstype: str
    opts: str


__all__ = ["disk_partitions", "find_mount_point", "ismount", "sdiskpart"]

# What os.path.ismount swallows (OSError, ValueError), and mountprobe's own "cannot answer
# here" (Unsupported, ProcUnavailable), which os.path.ismount, asking lstat(2), never has.
_QUIET = (OSError, ValueError, MountprobeError)


def ismount(path: PathArg) -> bool:
    """``os.path.ismount(path)``, with the kernel's answer.

    The same contract: True or False, never an exception for a path (False for a missing
    path, an empty one, one with an embedded NUL, one too long, one the caller may not reach,
    and any other error); a symlink is False, even to a mount point, unless written with a
    trailing ``/``, which follows it (lstat(2) does the same); ``str``, ``bytes`` and
    ``os.PathLike`` are accepted, and any other type (``int``, ``None``, ``bytearray``)
    raises ``TypeError``, as ``os.path.ismount`` does on CPython 3.9 to 3.13.

    The differences, each a case where ``os.path.ismount`` answers wrong (it compares the
    device and inode of the path with those of ``path/..``):

    - True for a bind mount of a directory of the same filesystem (CPython #73893) and for
      a file bind mount (same device as the parent: ``os.path.ismount`` says False).
    - False for a btrfs subvolume, which has its own device number but is no mount.
    - It never stats the target: no hang on a dead NFS, CIFS, sshfs or FUSE server (where
      ``os.path.ismount`` blocks in lstat(2)), no automount triggered.
    - The mount table it answers from is the calling thread's mount namespace, as lstat's.
    """
    try:
        return api.is_mountpoint(path, follow_symlinks=False)
    except _QUIET:
        return False


def find_mount_point(path: AnyStr | os.PathLike[AnyStr]) -> AnyStr:
    """The mount point of the mount holding ``path``: what ansible-core's
    ``find_mount_point`` (``module_utils/common/file.py``, formerly
    ``AnsibleModule.find_mount_point``) and Salt's walk-up loops compute with
    ``while not os.path.ismount(p): p = os.path.dirname(p)``, in one call.

    For a path that exists, ``mountprobe.mount_root(path)``: symlinks followed (ansible
    takes ``os.path.realpath`` first), bind mounts counted, the target never statted. For a
    path that does not exist, or cannot be reached (a missing component, ``ENOTDIR``, a
    directory the caller may not search, a symlink loop), the answer is the mount point of
    its nearest ancestor that can be reached, after ``os.path.realpath`` (as ansible walks
    up from the realpath of a missing path). It never raises for a path: at worst the
    answer is ``/``. ``bytes`` in, ``bytes`` out; ``str`` or ``os.PathLike`` in, ``str``
    out. An empty path means the current directory (``os.path.realpath("")``).

    Differences from the walk-up loops: bind mounts and file bind mounts are mount points
    (the loops walk past them), btrfs subvolumes are not (the loops stop at them), a path
    below a dead server's mount point that is itself reachable is answered without asking
    the server about the mount point, and ``~`` and ``$VARS`` are not expanded (ansible
    expands them first: call ``os.path.expanduser(os.path.expandvars(p))`` to keep that).
    """
    given = os.fspath(path)
    if not isinstance(given, (str, bytes)):  # os.fspath already refuses other types
        raise TypeError(f"expected str, bytes or os.PathLike object, not {type(path).__name__}")
    want_bytes = isinstance(given, bytes)
    raw = os.fsencode(given) or b"."
    answer = _mount_root(raw)
    if answer is None:
        answer = _walk_up(raw)
    return answer if want_bytes else os.fsdecode(answer)  # type: ignore[return-value]


def _mount_root(raw: bytes) -> Union[bytes, None]:
    try:
        return os.fsencode(api.mount_root(raw))
    except _QUIET:
        return None


def _walk_up(raw: bytes) -> bytes:
    try:
        here = os.path.realpath(raw)
    except (OSError, ValueError):  # an embedded NUL, a deleted working directory
        here = raw if raw.startswith(b"/") else b"/"
    while True:
        found = _mount_root(here)
        if found is not None:
            return found
        if here == b"/":
            return b"/"
        here = os.path.dirname(here)


def disk_partitions(all: bool = False) -> List[sdiskpart]:
    """``psutil.disk_partitions(all)`` on Linux, from the kernel's mount table.

    The same records: ``sdiskpart(device, mountpoint, fstype, opts)``, the fields of psutil
    6.0 and later (5.7.4 to 5.9 also had ``maxfile`` and ``maxpath``, which psutil 6.0 removed,
    psutil #2109: code that reads them needs ``os.statvfs``), each a ``str``, in the order of the
    mount table, ``opts`` as ``/proc/self/mounts`` writes them (the per-mount and the
    filesystem's options in one comma-separated string). ``all=False`` keeps psutil's
    selection of "physical devices": a non-empty device and a filesystem type that
    ``/proc/filesystems`` does not mark ``nodev``, or ``zfs``; ``all=True`` every mount.
    ``device`` is ``""`` where the kernel reports ``none`` or nothing.

    The differences, each a case where psutil answers wrong (it reads ``/etc/mtab`` or
    ``/proc/self/mounts`` with getmntent(3)):

    - ``/dev/root`` and ``rootfs`` are resolved by the mount's own device number. psutil
      takes the device of ``/`` for every such mount, so in a chroot or container a bind
      mount of the host's root device is named after the chroot's device (psutil #2347).
    - Every escape the kernel writes is decoded: getmntent decodes only ``\\040``,
      ``\\011``, ``\\012`` and ``\\134``, so a ``#`` in a source, which the kernel writes
      ``\\043``, stays ``\\043`` in psutil's ``device``. An empty source gives
      ``device=""`` (getmntent reads the mount point as the device and shifts every field).
    - An ``/etc/mtab`` that is a regular file (written by an old mount(8)) is not read: the
      answer is always the kernel's, of the calling thread's mount namespace.
    - Names are decoded with ``os.fsdecode``, options included (psutil raises
      ``UnicodeDecodeError`` for options that are not UTF-8).

    Bind mounts are listed as psutil lists them, with the device of their filesystem; to
    tell one from the mount of the whole device use ``mountprobe.list_mounts()``, whose
    ``root`` is ``/`` only for the latter.
    """
    physical = None if all else _physical_fstypes()
    found: List[sdiskpart] = []
    for m in api.list_mounts():
        device = "" if m.source in (None, "none") else m.source
        if device in ("/dev/root", "rootfs"):
            device = _device_name(m) or device
        if physical is not None and (not device or m.fstype not in physical):
            continue
        found.append(sdiskpart(device, m.mountpoint, m.fstype, _mounts_options(m)))
    return found


def _physical_fstypes() -> Set[str]:
    """The filesystem types that need a device, as psutil reads them: every line of
    /proc/filesystems without ``nodev``, and ``zfs`` (which has ``nodev`` but lives on disks)."""
    types = set()
    with open("/proc/filesystems", "rb") as f:
        for line in f.read().decode("ascii", "replace").splitlines():
            flag, _, name = line.partition("\t")
            if flag != "nodev":
                types.add(line.strip())
            elif name.strip() == "zfs":
                types.add("zfs")
    return types


def _device_name(m: Mount) -> Union[str, None]:
    """``/dev/NAME`` of the block device ``m.major:m.minor``, from its uevent in sysfs."""
    try:
        with open(f"/sys/dev/block/{m.major}:{m.minor}/uevent", "rb") as f:
            for line in f.read().splitlines():
                if line.startswith(b"DEVNAME="):
                    return "/dev/" + os.fsdecode(line[len(b"DEVNAME=") :])
    except OSError:
        pass
    return None


# The superblock flags and security options that /proc/self/mounts writes before the
# per-mount options (fs/proc_namespace.c: show_sb_opts, then show_mnt_opts, then the
# filesystem's show_options); mountinfo writes them at the head of the super options.
_SB_FLAGS = frozenset(("sync", "dirsync", "mand", "lazytime", "seclabel"))
_SB_KEYS = ("context=", "fscontext=", "defcontext=", "rootcontext=", "smackfs")


def _split_super(options: Tuple[str, ...]) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    n = 0
    while n < len(options) and (options[n] in _SB_FLAGS or options[n].startswith(_SB_KEYS)):
        n += 1
    return options[:n], options[n:]


def _mounts_options(m: Mount) -> str:
    """``m``'s options as the fourth field of ``/proc/self/mounts``: ``ro`` or ``rw`` (``ro``
    when the mount or its superblock is read-only), the superblock flags, the per-mount
    flags, then the filesystem's own options."""
    sb = m.super_options
    read_only = "ro" in m.options or (bool(sb) and sb[0] == "ro")
    flags, own = _split_super(sb[1:] if sb and sb[0] in ("ro", "rw") else sb)
    per_mount = tuple(o for o in m.options if o not in ("ro", "rw"))
    return ",".join(("ro" if read_only else "rw", *flags, *per_mount, *own))
