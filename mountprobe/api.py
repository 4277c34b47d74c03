"""One function per question. Each runs its chain of strategies (``mountprobe.chain``) in
the caller's mount namespace, or with ``pid=``/``ns=`` in another one (``_elsewhere``, the
one place those are routed), so ``last_answer()`` says which strategy answered either way."""

from __future__ import annotations

from . import _lazy
from ._paths import to_bytes
from .chain import CHAINS as CHAINS  # the runner's names, kept here for callers
from .chain import last_answer as last_answer
from .chain import run as _run
from .chain import strategies as strategies
from .errors import Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, List, Optional, Tuple, Union

    from ._paths import PathArg
    from .filters import FsTypes, Needle
    from .model import Mount
    from .namespaces import Where

    NsArg = Union[int, PathArg]  # an open file descriptor or the path of a /proc/<pid>/ns/mnt


def _path(path: PathArg, follow: bool = True) -> Tuple[bytes, bool]:
    """The caller's path as bytes, without a trailing ``/``, ``/.`` or ``/..`` (through
    which the kernel would walk, triggering an automount); those always follow symlinks."""
    raw = to_bytes(path)
    if raw.endswith((b"/", b"/.", b"/..")):
        _lazy.load(f"{__package__}.strategies._resolve")
        from .strategies._resolve import tidy

        return tidy(raw, follow)
    return raw, follow


def _elsewhere(
    pid: Optional[int],
    ns: Optional[NsArg],
    body: Callable[..., Any],
    path: Optional[PathArg],
    follow: Optional[bool],
    *rest: Any,
) -> Any:
    """``body([path, [follow,]] *rest, where)`` in the namespace that ``pid`` or ``ns``
    names, closed after: the one place ``pid=`` and ``ns=`` are routed. A path there is
    resolved by the strategies in the process's root (``Target.open`` takes a trailing
    ``/`` off). The caller's own pid without /proc is the caller's own namespace (``where``
    None), a relative path then taken from the root as every ``pid=`` takes it."""
    _lazy.load(f"{__package__}.namespaces")
    from .namespaces import target

    where = target(pid, ns)
    try:
        if path is None:
            return body(*rest, where)
        raw = to_bytes(path)
        if where is None:
            raw, tidied = _path(raw if raw.startswith(b"/") else b"/" + raw, True if follow is None else follow)
            follow = None if follow is None else tidied
        if follow is None:
            return body(raw, *rest, where)
        return body(raw, follow, *rest, where)
    finally:
        if where is not None:
            where.close()


def _is_mountpoint(path: bytes, follow: bool, bind: bool, where: Where) -> bool:
    result: bool = _run("is_mountpoint", path, follow, where)
    if bind or not result:
        return result
    other: bool = _run("is_mountpoint(bind=False)", path, follow, where)
    return other


def _mount_of(path: bytes, follow: bool, propagate_from: bool, where: Where) -> Mount:
    found: Mount = _run("mount_of", path, follow, propagate_from, where)
    return found


def _mount_at(path: bytes, propagate_from: bool, where: Where) -> Optional[Mount]:
    found: Optional[Mount] = _run("mount_at", path, propagate_from, where)
    return found


def _mounts_under(path: bytes, include_self: bool, propagate_from: bool, where: Where) -> List[Mount]:
    found: List[Mount] = _run("mounts_under", path, include_self, propagate_from, where)
    return found


def _list_mounts(propagate_from: bool, where: Where) -> List[Mount]:
    found: List[Mount] = _run("list_mounts", propagate_from, where)
    return found


def _still_mounted(m: Mount, where: Where) -> bool:
    alive: bool = _run("still_mounted", m, where)
    return alive


def is_mountpoint(
    path: PathArg,
    *,
    bind: bool = True,
    follow_symlinks: bool = True,
    pid: Optional[int] = None,
    ns: Optional[NsArg] = None,
) -> bool:
    """True when ``path`` is the root of a mount. ``bind=True`` counts every mount, bind and
    file bind mounts included; ``bind=False`` only mounts of another filesystem than the
    parent directory's. ``/`` is a mount point. Errors raise (FileNotFoundError,
    PermissionError, ...); they are never answered with False.

    Every question takes ``pid=`` (the mount namespace of that process, ``path`` resolved in
    its root) or ``ns=`` (an open descriptor or the path of a ``/proc/<pid>/ns/mnt`` file);
    see ``mountprobe.namespaces``."""
    if pid is None and ns is None:
        return _is_mountpoint(*_path(path, follow_symlinks), bind, None)
    answer: bool = _elsewhere(pid, ns, _is_mountpoint, path, follow_symlinks, bind)
    return answer


def mount_of(
    path: PathArg,
    *,
    follow_symlinks: bool = True,
    propagate_from: bool = False,
    pid: Optional[int] = None,
    ns: Optional[NsArg] = None,
) -> Mount:
    """The visible (topmost) mount that contains ``path`` (findmnt ``--target``).
    ``propagate_from=True`` fills that field, which costs the kernel a peer-group walk."""
    if pid is None and ns is None:
        return _mount_of(*_path(path, follow_symlinks), propagate_from, None)
    found: Mount = _elsewhere(pid, ns, _mount_of, path, follow_symlinks, propagate_from)
    return found


def mount_at(
    path: PathArg, *, propagate_from: bool = False, pid: Optional[int] = None, ns: Optional[NsArg] = None
) -> Optional[Mount]:
    """The visible mount whose mount point is exactly ``path`` (findmnt ``--mountpoint``),
    or None when nothing is mounted there. Symlinks in ``path`` are followed."""
    if pid is None and ns is None:
        return _mount_at(_path(path)[0], propagate_from, None)
    found: Optional[Mount] = _elsewhere(pid, ns, _mount_at, path, None, propagate_from)
    return found


def mount_root(path: PathArg, *, pid: Optional[int] = None, ns: Optional[NsArg] = None) -> str:
    """The mount point of the mount that contains ``path`` (symlinks followed): the
    ``mountpoint`` of ``mount_of(path)``, found without building its record."""
    if pid is None and ns is None:
        return _mount_root(_path(path)[0], None)
    # The same chain there: the caller's own pid without /proc is the caller's namespace,
    # where the statx walk answers without any record (a record needs the table on < 6.15).
    found: str = _elsewhere(pid, ns, _mount_root, path, None)
    return found


def _mount_root(path: bytes, where: Where) -> str:
    found: str = _run("mount_root", path, where)
    return found


def mounts_under(
    path: PathArg,
    *,
    include_self: bool = False,
    source: Optional[PathArg] = None,
    fstype: Optional[FsTypes] = None,
    propagate_from: bool = False,
    pid: Optional[int] = None,
    ns: Optional[NsArg] = None,
) -> List[Mount]:
    """Every mount reachable below ``path`` whose mount point lies below it component-wise
    (``/a`` is not below ``/ab``), stacked and shadowed ones included, parents before
    children: the set of findmnt ``--submounts``. A mount hidden under the mount that holds
    ``path`` (attached beneath it before it was covered) is not reachable through ``path``
    and is not listed. With ``include_self``, the mounts at ``path`` itself too. ``source``
    and ``fstype`` keep only the mounts that match them, as ``list_mounts`` takes them."""
    found: List[Mount]
    if source is None and fstype is None:
        if pid is None and ns is None:
            return _mounts_under(_path(path)[0], include_self, propagate_from, None)
        found = _elsewhere(pid, ns, _mounts_under, path, None, include_self, propagate_from)
        return found
    if pid is None and ns is None:
        return _mounts_under_matching(_path(path)[0], include_self, source, fstype, propagate_from, False, None)
    found = _elsewhere(pid, ns, _mounts_under_matching, path, None, include_self, source, fstype, propagate_from, True)
    return found


def _mounts_under_matching(
    path: bytes,
    include_self: bool,
    source: Optional[PathArg],
    fstype: Optional[FsTypes],
    propagate_from: bool,
    from_root: bool,
    where: Where,
) -> List[Mount]:
    needle = _needle(source, fstype, None, from_root, where)
    found: List[Mount] = _run("mounts_under(source=, fstype=)", path, include_self, needle, propagate_from, where)
    return needle.found(found)


def list_mounts(
    *,
    source: Optional[PathArg] = None,
    fstype: Optional[FsTypes] = None,
    root: Optional[PathArg] = None,
    propagate_from: bool = False,
    pid: Optional[int] = None,
    ns: Optional[NsArg] = None,
) -> List[Mount]:
    """Every mount of the caller's mount namespace, as ``/proc/self/mountinfo`` lists them
    (with ``pid`` or ``ns``: of that namespace).

    ``source``, ``fstype`` and ``root`` keep only the mounts that match, and records are
    built for those alone (mountinfo lines are sifted on their raw bytes first). ``source``
    and ``fstype`` mean what they mean to ``is_mounted``: every mount of that block device
    (by device number, whatever name the kernel shows), of that image file, bind mounts of
    exactly that directory or file, or the mounts reporting that source text; ``fstype`` a
    type or several, matched exactly or as the main type (``fuse`` for ``fuse.sshfs``).
    ``root="/"`` keeps only mounts of a filesystem's root, not binds of a directory in it:
    with ``source=DEVICE``, where the device itself is mounted."""
    found: List[Mount]
    if source is None and fstype is None and root is None:
        if pid is None and ns is None:
            return _list_mounts(propagate_from, None)
        found = _elsewhere(pid, ns, _list_mounts, None, None, propagate_from)
        return found
    if pid is None and ns is None:
        return _list_matching(source, fstype, root, propagate_from, False, None)
    found = _elsewhere(pid, ns, _list_matching, None, None, source, fstype, root, propagate_from, True)
    return found


def _holder_in(where: Where) -> Callable[[bytes], Mount]:
    """``mount_of`` asked in ``where``, for source matching."""

    def holder(p: bytes) -> Mount:
        if where is None:  # as the caller's question: a trailing / tidied first
            return _mount_of(*_path(p), False, None)
        return _mount_of(p, True, False, where)

    return holder


def _needle(
    source: Optional[PathArg], fstype: Optional[FsTypes], root: Optional[PathArg], from_root: bool, where: Where
) -> Needle:
    _lazy.load(f"{__package__}.filters")
    from .filters import needle

    return needle(source, fstype, root, where, _holder_in(where), from_root)


def _list_matching(
    source: Optional[PathArg],
    fstype: Optional[FsTypes],
    root: Optional[PathArg],
    propagate_from: bool,
    from_root: bool,
    where: Where,
) -> List[Mount]:
    needle = _needle(source, fstype, root, from_root, where)
    found: List[Mount] = _run("list_mounts(source=, fstype=, root=)", needle, propagate_from, where)
    return needle.found(found)


def still_mounted(m: Mount, *, pid: Optional[int] = None, ns: Optional[NsArg] = None) -> bool:
    """True while the very mount ``m`` describes is attached (the check after umount(2)).
    By unique id where the kernel has one (6.8+), immune to the reuse of legacy ids. After a
    lazy umount the answer is False although the filesystem may live on behind open fds."""
    _check_record(m)
    if pid is None and ns is None:
        return _still_mounted(m, None)
    alive: bool = _elsewhere(pid, ns, _still_mounted, None, None, m)
    return alive


def _check_record(m: Mount) -> None:
    """TypeError or ValueError for a record whose ids no kernel call could take: legacy ids
    are 32-bit, unique ids 64-bit and above every legacy one (Linux 6.8)."""
    from .model import Mount

    if not isinstance(m, Mount):
        raise TypeError(f"still_mounted() needs a Mount, not {type(m).__name__}")
    for name, low, high in (("id", 0, 1 << 32), ("parent_id", 0, 1 << 32), ("unique_id", (1 << 31) + 1, 1 << 64)):
        value = getattr(m, name)
        if value is None and name == "unique_id":
            continue
        if type(value) is not int:
            raise TypeError(f"Mount.{name} must be an int, not {type(value).__name__}")
        if not low <= value < high:
            raise ValueError(f"Mount.{name} {value} is out of range: mount ids lie in [{low}, {high})")


def is_mounted(
    target: PathArg,
    *,
    source: Optional[PathArg] = None,
    fstype: Optional[str] = None,
    root: Optional[PathArg] = None,
    pid: Optional[int] = None,
    ns: Optional[NsArg] = None,
) -> bool:
    """True when a matching mount is visible at ``target`` (the check before mount(2)).

    ``fstype`` matches exactly, or the main type of a ``type.subtype``. ``source`` may be a
    block device or a LABEL=/UUID=/PARTUUID=/PARTLABEL= tag (matched by device number, so
    symlinked device names and ``/dev/root`` work), a loop-mounted image file, a directory or
    file (then: a bind mount of exactly that path), or any other text the kernel reports as
    the source (``tmpfs``, ``server:/export``; a trailing ``/`` is ignored). ``root`` is the
    directory of the filesystem mounted there: ``root="/"`` with a device asks whether the
    device itself is mounted at ``target``, not a bind of a directory on it. A source that
    differs from what the kernel reports means False, not an error; a tag that neither a udev
    link nor the mount's own device can resolve (an unreadable device, a filesystem whose
    superblock is not read) raises ``Unsupported`` naming the tag and why. With ``pid`` or ``ns``,
    in that mount namespace, both paths resolved in its root."""
    if pid is None and ns is None:
        return _is_mounted(_path(target)[0], source, fstype, root, False, None)
    answer: bool = _elsewhere(pid, ns, _is_mounted, target, None, source, fstype, root, True)
    return answer


def _is_mounted(
    path: bytes,
    source: Optional[PathArg],
    fstype: Optional[str],
    root: Optional[PathArg],
    from_root: bool,
    where: Where,
) -> bool:
    wanted_root = None
    if root is not None:
        _lazy.load(f"{__package__}.filters")
        from .filters import root_text

        wanted_root = root_text(root)
    elif where is None:
        try:  # what statx and statmount's always-filled fields prove, without a record
            answer: bool = _run("is_mounted", path, source, fstype, from_root, where)
            return answer
        except Unsupported:
            pass
    m = _mount_at(path, False, where)
    if m is None:
        return False
    if fstype is not None and fstype not in (m.fstype, m.fstype.partition(".")[0]):
        return False
    if wanted_root is not None and m.root != wanted_root:
        return False
    if source is None:
        return True
    _lazy.load(f"{__package__}.sources")
    from .sources import matches

    return matches(m, source, where, _holder_in(where), from_root)
