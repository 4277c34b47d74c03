"""One function per question. Each runs its chain of strategies, cheapest first, and the
first strategy that can answer here answers; ``last_answer()`` says which one and why the
ones before it could not."""

from __future__ import annotations

import os
import stat
from _thread import _local

from . import _lazy
from ._paths import to_bytes
from .errors import Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

    from ._paths import PathArg
    from .model import Answer, Mount
    from .namespaces import Own, Target

    Chain = Sequence[Tuple[str, str]]
    NsArg = Union[int, PathArg]  # an open file descriptor or the path of a /proc/<pid>/ns/mnt

# Each question's chain: (strategy module, function), cheapest first. Modules are imported
# when a question first reaches them, so a command loads only what answers it. Every import
# made inside a function here goes through ``_lazy.load`` first (fork, chroot: see there);
# the ``from ... import`` after it then only reads ``sys.modules``.
CHAINS: Dict[str, Chain] = {
    "is_mountpoint": (
        ("statx", "is_mountpoint"),
        ("openat2", "is_mountpoint"),
        ("handle", "is_mountpoint"),
        ("mountinfo", "is_mountpoint"),
    ),
    "is_mountpoint(bind=False)": (("devcmp", "differs_from_parent"),),
    "mount_of": (("statmount", "mount_of"), ("mountinfo", "mount_of")),
    "mount_at": (("statmount", "mount_at"), ("mountinfo", "mount_at")),
    "mounts_under": (("statmount", "mounts_under"), ("mountinfo", "mounts_under")),
    "list_mounts": (("statmount", "list_mounts"), ("mountinfo", "list_mounts")),
    "still_mounted": (("statmount", "still_mounted"), ("mountinfo", "still_mounted")),
}

_functions: Dict[Tuple[str, str], Callable[..., Any]] = {}
_state = _local()


def _function(module: str, name: str) -> Callable[..., Any]:
    found = _functions.get((module, name))
    if found is None:
        strategy = _lazy.load(f"{__package__}.strategies.{module}")
        found = _functions[(module, name)] = getattr(strategy, name)
    return found


def strategies(question: str) -> List[Tuple[str, Callable[..., Any]]]:
    """The chain of ``question`` (a key of ``CHAINS``) as (strategy, function) pairs."""
    return [(module, _function(module, name)) for module, name in CHAINS[question]]


def _run(question: str, *args: Any) -> Any:
    declined: List[Tuple[str, str]] = []
    for module, name in CHAINS[question]:
        try:
            result = (_functions.get((module, name)) or _function(module, name))(*args)
        except Unsupported as why:
            declined.append((module, str(why)))
            continue
        _state.last = (question, module, declined)
        return result
    _state.last = (question, "", declined)
    raise Unsupported(f"{question}: no strategy can answer here: " + "; ".join(f"{n}: {w}" for n, w in declined))


def last_answer() -> Optional[Answer]:
    """Which strategy answered this thread's last question, and why earlier ones declined."""
    _lazy.load(f"{__package__}.model")
    from .model import Answer

    last = getattr(_state, "last", None)
    if last is None:
        return None
    return Answer(last[0], last[1], tuple(last[2]))


def _path(path: PathArg, follow: bool = True) -> Tuple[bytes, bool]:
    """The caller's path as bytes, without a trailing ``/``, ``/.`` or ``/..`` (through
    which the kernel would walk, triggering an automount); those always follow symlinks."""
    raw = to_bytes(path)
    if raw.endswith((b"/", b"/.", b"/..")):
        _lazy.load(f"{__package__}.strategies._resolve")
        from .strategies._resolve import tidy

        return tidy(raw, follow)
    return raw, follow


def _elsewhere(pid: Optional[int], ns: Optional[NsArg]) -> Union[Target, Own]:
    """The other mount namespace named by ``pid`` or ``ns`` (closed at the end of a ``with``)."""
    _lazy.load(f"{__package__}.namespaces")
    from .namespaces import target

    return target(pid, ns)


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
    if pid is not None or ns is not None:
        with _elsewhere(pid, ns) as there:
            return there.is_mountpoint(to_bytes(path), bind, follow_symlinks)
    raw, follow_symlinks = _path(path, follow_symlinks)
    result: bool = _run("is_mountpoint", raw, follow_symlinks)
    if bind or not result:
        return result
    other: bool = _run("is_mountpoint(bind=False)", raw, follow_symlinks)
    return other


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
    if pid is not None or ns is not None:
        with _elsewhere(pid, ns) as there:
            return there.mount_of(to_bytes(path), follow_symlinks, propagate_from)
    found: Mount = _run("mount_of", *_path(path, follow_symlinks), propagate_from)
    return found


def mount_at(
    path: PathArg, *, propagate_from: bool = False, pid: Optional[int] = None, ns: Optional[NsArg] = None
) -> Optional[Mount]:
    """The visible mount whose mount point is exactly ``path`` (findmnt ``--mountpoint``),
    or None when nothing is mounted there. Symlinks in ``path`` are followed."""
    if pid is not None or ns is not None:
        with _elsewhere(pid, ns) as there:
            return there.mount_at(to_bytes(path), propagate_from)
    found: Optional[Mount] = _run("mount_at", _path(path)[0], propagate_from)
    return found


def mount_root(path: PathArg, *, pid: Optional[int] = None, ns: Optional[NsArg] = None) -> str:
    """The mount point of the mount that contains ``path``."""
    return mount_of(path, pid=pid, ns=ns).mountpoint


def mounts_under(
    path: PathArg,
    *,
    include_self: bool = False,
    propagate_from: bool = False,
    pid: Optional[int] = None,
    ns: Optional[NsArg] = None,
) -> List[Mount]:
    """Every mount reachable below ``path`` whose mount point lies below it component-wise
    (``/a`` is not below ``/ab``), stacked and shadowed ones included, parents before
    children: the set of findmnt ``--submounts``. A mount hidden under the mount that holds
    ``path`` (attached beneath it before it was covered) is not reachable through ``path``
    and is not listed. With ``include_self``, the mounts at ``path`` itself too."""
    if pid is not None or ns is not None:
        with _elsewhere(pid, ns) as there:
            return there.mounts_under(to_bytes(path), include_self, propagate_from)
    found: List[Mount] = _run("mounts_under", _path(path)[0], include_self, propagate_from)
    return found


def list_mounts(*, propagate_from: bool = False, pid: Optional[int] = None, ns: Optional[NsArg] = None) -> List[Mount]:
    """Every mount of the caller's mount namespace, as ``/proc/self/mountinfo`` lists them
    (with ``pid`` or ``ns``: of that namespace)."""
    if pid is not None or ns is not None:
        with _elsewhere(pid, ns) as there:
            return there.list_mounts(propagate_from)
    found: List[Mount] = _run("list_mounts", propagate_from)
    return found


def still_mounted(m: Mount, *, pid: Optional[int] = None, ns: Optional[NsArg] = None) -> bool:
    """True while the very mount ``m`` describes is attached (the check after umount(2)).
    By unique id where the kernel has one (6.8+), immune to the reuse of legacy ids. After a
    lazy umount the answer is False although the filesystem may live on behind open fds."""
    _check_record(m)
    if pid is not None or ns is not None:
        with _elsewhere(pid, ns) as there:
            return there.still_mounted(m)
    alive: bool = _run("still_mounted", m)
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
    try:
        with open(f"/sys/dev/block/{m.major}:{m.minor}/loop/backing_file", "rb") as f:
            return f.read().rstrip(b"\n")
    except OSError:
        return None


class _Here:
    """How ``is_mounted`` looks at paths in the caller's own namespace (``namespaces.Target``
    offers the same four methods for another one)."""

    @staticmethod
    def mount_at(path: bytes) -> Optional[Mount]:
        return mount_at(path)

    @staticmethod
    def mount_of(path: bytes) -> Mount:
        return mount_of(path)

    @staticmethod
    def canonical(path: bytes) -> bytes:
        _lazy.load(f"{__package__}.strategies._resolve")
        from .strategies import _resolve

        return _resolve.canonical(path)

    @staticmethod
    def kind(path: bytes) -> Tuple[int, Tuple[int, int]]:
        return _kind(path)


def _is_bind_of(m: Mount, source: bytes, view: Any) -> bool:
    """Is ``m`` a bind mount of exactly ``source``: same superblock, and its root is the
    path of ``source`` inside that filesystem."""
    holder = view.mount_of(source)
    where = view.canonical(source)
    top = os.fsencode(holder.mountpoint)
    rel = where[len(top) :] if top != b"/" else where
    root = os.fsencode(holder.root).rstrip(b"/") + (rel if rel.startswith(b"/") else b"/" + rel)
    return (holder.major, holder.minor) == (m.major, m.minor) and os.fsencode(m.root) == (root.rstrip(b"/") or b"/")


def is_mounted(
    target: PathArg,
    *,
    source: Optional[PathArg] = None,
    fstype: Optional[str] = None,
    pid: Optional[int] = None,
    ns: Optional[NsArg] = None,
) -> bool:
    """True when a matching mount is visible at ``target`` (the check before mount(2)).

    ``fstype`` matches exactly, or the main type of a ``type.subtype``. ``source`` may be a
    block device or a LABEL=/UUID=/PARTUUID=/PARTLABEL= tag (matched by device number, so
    symlinked device names and ``/dev/root`` work), a loop-mounted image file, a directory or
    file (then: a bind mount of exactly that path), or any other text the kernel reports as
    the source (``tmpfs``, ``server:/export``; a trailing ``/`` is ignored). A source that
    differs from what the kernel reports means False, not an error. With ``pid`` or ``ns``,
    in that mount namespace, both paths resolved in its root."""
    if pid is not None or ns is not None:
        with _elsewhere(pid, ns) as there:
            return _is_mounted(there, to_bytes(target), source, fstype)
    return _is_mounted(_Here, _path(target)[0], source, fstype)


def _is_mounted(view: Any, target: bytes, source: Optional[PathArg], fstype: Optional[str]) -> bool:
    m = view.mount_at(target)
    if m is None:
        return False
    if fstype is not None and fstype not in (m.fstype, m.fstype.partition(".")[0]):
        return False
    if source is None:
        return True
    wanted = to_bytes(source)
    path = _as_path(wanted)
    if path is None:
        return _same_source_text(m.source, wanted)
    try:
        mode, rdev = view.kind(path)
    except (FileNotFoundError, NotADirectoryError):
        return _same_source_text(m.source, wanted)
    if stat.S_ISBLK(mode):
        return bool(rdev == (m.major, m.minor))
    if stat.S_ISREG(mode) and _loop_backing(m) == view.canonical(path):
        return True
    return _is_bind_of(m, path, view)


def _kind(path: bytes) -> Tuple[int, Tuple[int, int]]:
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
