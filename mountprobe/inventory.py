"""Across the host's mount namespaces: the inventory (``mount_namespaces``) and who holds a
filesystem or a device (``holders``). Built on the questions (``mountprobe.api``) and on the
``Target`` of each namespace (``mountprobe.namespaces``). Not named ``holders.py``: importing
a submodule sets the package attribute of its name, which would hide ``mountprobe.holders()``."""

from __future__ import annotations

import os
import stat
import warnings

from . import api
from ._paths import to_bytes
from ._tuples import Record
from .errors import Unsupported
from .kernel import mount as k
from .kernel import nsfs
from .kernel import statx as kx
from .model import Mount
from .namespaces import MOUNTINFO, Target, no_proc, ns_inode, proc_unavailable, psutil
from .namespaces import pids as all_pids
from .sources import kind
from .strategies.statmount import RECORD, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

    from ._paths import PathArg


class Namespace(Record):
    """One mount namespace of the host and the processes in it."""

    inode: int  # the nsfs inode: lsns's NS, ``readlink /proc/PID/ns/mnt``
    id: Optional[int]  # the 64-bit mount namespace id (6.11), statmount's mnt_ns_id
    mounts: int
    pids: Tuple[int, ...]
    command: Optional[str]  # the name of its lowest pid, as lsns shows it


class Holder(Record):
    """A mount, in ``namespace``, of the filesystem or device given to ``holders()``."""

    namespace: Namespace
    mount: Mount


def _by_namespace() -> Dict[int, List[int]]:
    """Every visible process, grouped by mount namespace inode (pids in ascending order)."""
    if no_proc():
        return {}
    groups: Dict[int, List[int]] = {}
    for pid in sorted(all_pids()):
        inode = ns_inode(pid)
        if inode is not None:
            groups.setdefault(inode, []).append(pid)
    return groups


def _command(pid: int) -> Optional[str]:
    try:
        name: str = psutil().Process(pid).name()  # type: ignore[attr-defined]
    except Exception:  # psutil.Error: exited, or not ours to look at
        return None
    return name


def _own_namespace(what: str) -> Target:
    """Without /proc: the caller's own namespace, from a pidfd (6.11); a warning that no
    other one can be seen."""
    try:
        pidfd = os.pidfd_open(os.getpid())
    except (AttributeError, OSError):  # Python without it, < 5.3, or blocked
        raise proc_unavailable("/proc", what) from None
    try:
        fd = nsfs.pidfd_mount_namespace(pidfd)
    except OSError:  # ENOTTY: < 6.11
        raise proc_unavailable("/proc", what) from None
    finally:
        os.close(pidfd)
    try:
        target = Target(ns=fd)
    finally:
        os.close(fd)
    target.pid = os.getpid()
    warnings.warn(
        f"{what}: no /proc is mounted: only the caller's own mount namespace can be seen", RuntimeWarning, stacklevel=4
    )
    return target


def _targets(groups: Dict[int, List[int]], what: str) -> Iterator[Tuple[Target, List[int]]]:
    """One open Target per namespace, through the first of its processes that still lives
    (and is still in it: the inode is checked again once the namespace file is open).
    Without /proc, the caller's own namespace only."""
    if no_proc():
        with _own_namespace(what) as own:
            yield own, [os.getpid()]
        return
    for inode, pids in groups.items():
        target = None
        for pid in pids:
            try:
                target = Target(pid=pid)
            except (ProcessLookupError, PermissionError):
                continue
            if target.inode == inode:
                break
            target.close()
            target = None
        if target is None:
            continue
        with target:
            yield target, pids


def _namespace(target: Target, pids: List[int], count: Optional[int] = None) -> Namespace:
    ns_id: Optional[int] = None
    try:
        count_here, ns_id = nsfs.mount_namespace_info(target.fd)
        count = count if count is not None else count_here
    except OSError:
        try:
            ns_id = nsfs.mount_namespace_id(target.fd)
        except OSError:
            ns_id = None
    if count is None:
        count = len(target.ids()) if target.access != MOUNTINFO else len(target.table())
    return Namespace(target.inode, ns_id, count, tuple(pids), _command(pids[0]))


def mount_namespaces() -> List[Namespace]:
    """Every mount namespace that holds a process the caller may look at (all of them for
    root), with its id, its number of mounts and its processes (lowest pid first).
    A namespace that no process is in (kept by a bind mount of its nsfs file, or an open
    descriptor) is not listed."""
    found: List[Namespace] = []
    for target, pids in _targets(_by_namespace(), "mount_namespaces()"):
        try:
            found.append(_namespace(target, pids))
        except (ProcessLookupError, PermissionError):
            continue  # exited or changed hands while being read
    return found


# -- holders -----------------------------------------------------------------------------------


def _what(path_or_device: PathArg) -> Tuple[Optional[Tuple[int, int]], Optional[Tuple[int, int]]]:
    """(superblock device, block device) that ``holders`` looks for: a block device node
    gives the device (whose superblock may be anonymous: btrfs), any other path the
    superblock of the mount that holds it."""
    raw = to_bytes(path_or_device)
    mode, rdev = kind(raw)
    if stat.S_ISBLK(mode):
        return rdev, rdev
    try:
        m = api.mount_of(raw)
    except (FileNotFoundError, Unsupported):
        # A mount of another namespace (a path through /proc/<pid>/root): the device of
        # the file itself, which is the superblock's on all but btrfs subvolumes.
        st = kx.statx(kx.AT_FDCWD, raw, kx.AT_NO_AUTOMOUNT | kx.AT_STATX_DONT_SYNC, 0)
        return (st.dev_major, st.dev_minor), None
    return (m.major, m.minor), None


_sb_cache: Dict[int, Tuple[int, int]] = {}


def _matcher(
    sb: Optional[Tuple[int, int]], device: Optional[Tuple[int, int]]
) -> Callable[[int, int, Optional[bytes]], bool]:
    sources: Dict[bytes, bool] = {}

    def names_device(source: Optional[bytes]) -> bool:
        if device is None or not source or not source.startswith(b"/"):
            return False
        hit = sources.get(source)
        if hit is None:
            try:
                st = os.stat(source)
                hit = stat.S_ISBLK(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == device
            except OSError:
                hit = False
            sources[source] = hit
        return hit

    def matches(major: int, minor: int, source: Optional[bytes]) -> bool:
        return (major, minor) == sb or names_device(source)

    return matches


def _holding(
    target: Target, sb: Optional[Tuple[int, int]], device: Optional[Tuple[int, int]], live: Set[int]
) -> List[Mount]:
    """The mounts of ``target`` whose superblock is ``sb``, or that ``device`` holds; the
    unique ids it lists are added to ``live``."""
    if target.access == MOUNTINFO:
        matches = _matcher(sb, device)
        return [m for m in target.table() if matches(m.major, m.minor, os.fsencode(m.source or ""))]
    ids = target.ids()
    live.update(ids)
    cache = _sb_cache
    unknown = [i for i in ids if i not in cache]
    if unknown:
        ns_id, ns_fd = target.ns_args()
        for mnt_id, dev in zip(unknown, k.superblock_devices(unknown, ns_id, ns_fd)):
            # Unique ids are never reused and a mount never changes its superblock: what is
            # learnt of an id stays true (gone ones fail: ENOENT, or EPERM outside the root).
            if isinstance(dev, tuple):
                cache[mnt_id] = dev
    hits = [i for i in ids if cache.get(i) == sb]
    if device is not None:  # a device may back a superblock of another number (btrfs): by source
        names, held = _matcher(None, device), set(hits)
        hits += [i for i in ids if i in cache and i not in held and names(0, 0, _source(target, i))]
    found: List[Mount] = []
    for mnt_id in hits:
        try:
            m = record(target.statmount_raw(mnt_id, RECORD), False)
        except (FileNotFoundError, PermissionError):
            continue
        if m is not None:
            found.append(m)
    return found


_source_cache: Dict[int, Optional[bytes]] = {}


def _source(target: Target, mnt_id: int) -> Optional[bytes]:
    if mnt_id in _source_cache:
        return _source_cache[mnt_id]
    try:
        source = k.decode_reply(target.statmount_raw(mnt_id, k.STATMOUNT_SB_SOURCE)).sb_source
    except (FileNotFoundError, PermissionError):
        return None
    _source_cache[mnt_id] = source
    return source


def holders(path_or_device: PathArg) -> List[Holder]:
    """Every (namespace, mount) that keeps mounted the filesystem of ``path_or_device`` (a
    path: the superblock of the mount holding it, bind mounts and subvolumes included) or
    the block device it names (matched by the superblock's device, or by a mount source that
    is that device node). What keeps ``umount`` or a device removal busy across the host:
    every namespace whose process the caller may look at, with the processes in it."""
    sb, device = _what(path_or_device)
    found: List[Holder] = []
    live: Set[int] = set()
    for target, pids in _targets(_by_namespace(), "holders()"):
        try:
            mounts = _holding(target, sb, device, live)
        except (ProcessLookupError, PermissionError):
            continue
        if mounts:
            namespace = _namespace(target, pids)
            found += [Holder(namespace, m) for m in mounts]
    _forget_gone(live)
    return found


def _forget_gone(live: Set[int]) -> None:
    """Drop what the caches know of mounts no namespace listed in this pass (gone, or in a
    namespace no longer looked at): a long-lived agent on a host whose mounts come and go
    keeps at most one entry per mount that exists."""
    for cache in (_sb_cache, _source_cache):
        for mnt_id in [mnt_id for mnt_id in cache if mnt_id not in live]:
            del cache[mnt_id]
