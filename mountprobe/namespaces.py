"""Other mount namespaces: every question asked about another process's view (``pid=``,
``ns=``), the inventory of the host's mount namespaces, and who holds a filesystem.

How a namespace is read, best first (``Target.access`` says which):

- ``ns-fd``: listmount/statmount with ``mnt_ns_fd`` (6.18, also 6.12.107): holding the
  namespace file is the permission.
- ``ns-id``: with ``mnt_ns_id`` (6.11): needs CAP_SYS_ADMIN over the namespace's owner.
- ``mountinfo``: ``/proc/<pid>/mountinfo`` of a process in it (any kernel).

Opening ``/proc/<pid>/ns/mnt`` needs ptrace read access to the process (the same user, or
CAP_SYS_PTRACE): without it every question raises PermissionError saying so. Paths are
resolved in the process's root with ``openat2(RESOLVE_IN_ROOT)``, so an absolute symlink in
its tree stays in its tree. Mount points are relative to the namespace's root, which is the
process's root for every process not chrooted inside its namespace. ``setns`` is never
called: it fails in any threaded process.

Without /proc (a chroot, a minimal container) no other process can be named, but the caller
itself can: ``pid=<own pid>`` is answered as a question about the caller's own namespace,
and ``holders`` and ``mount_namespaces`` look in that namespace only (with a warning), whose
file the kernel hands out through a pidfd (``PIDFD_GET_MNT_NAMESPACE``, 6.11). What needs
/proc and cannot do without raises ``ProcUnavailable``.
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from collections import namedtuple

from . import _lazy, api
from ._paths import to_bytes
from .errors import MountprobeError, Unsupported
from .kernel import mount as k
from .kernel import nsfs
from .kernel import openat2 as ko
from .kernel import statx as kx
from .model import Mount
from .mountinfo import ProcUnavailable, parse_mountinfo
from .probe import capabilities
from .strategies import _resolve, statmount
from .strategies._calls import fd_mount_id
from .strategies.mountinfo import reachable_below

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

    from ._paths import PathArg

    Matcher = Callable[[int, int, Optional[bytes]], bool]  # (sb major, sb minor, source) -> held?

    class _NamespaceFields(NamedTuple):
        inode: int  # the nsfs inode: lsns's NS, ``readlink /proc/PID/ns/mnt``
        id: Optional[int]  # the 64-bit mount namespace id (6.11), statmount's mnt_ns_id
        mounts: int
        pids: Tuple[int, ...]
        command: Optional[str]  # the name of its lowest pid, as lsns shows it

    class _HolderFields(NamedTuple):
        namespace: Namespace
        mount: Mount

else:
    _NamespaceFields = namedtuple("Namespace", "inode id mounts pids command", module=__name__)
    _HolderFields = namedtuple("Holder", "namespace mount", module=__name__)


class Namespace(_NamespaceFields):
    """One mount namespace of the host and the processes in it."""

    __slots__ = ()


class Holder(_HolderFields):
    """A mount, in ``namespace``, of the filesystem or device given to ``holders()``."""

    __slots__ = ()


NS_FD, NS_ID, MOUNTINFO = "ns-fd", "ns-id", "mountinfo"
_ns_fd_works = False  # listmount took a mnt_ns_fd once: this kernel has it (dropped in a fork)


def _forget() -> None:
    global _ns_fd_works
    _ns_fd_works = False


os.register_at_fork(after_in_child=_forget)
_IN_ROOT = ko.RESOLVE_IN_ROOT | ko.RESOLVE_NO_MAGICLINKS
_RETRIES = 64
_EMPTY = kx.AT_EMPTY_PATH | kx.AT_NO_AUTOMOUNT | kx.AT_STATX_DONT_SYNC


def _gone(pid: int) -> ProcessLookupError:
    return ProcessLookupError(errno.ESRCH, f"no process {pid}: it has exited, or never was")


def _denied(pid: Optional[int], path: str) -> PermissionError:
    who = f"process {pid}" if pid is not None else "that namespace"
    return PermissionError(
        errno.EACCES,
        f"may not inspect the mount namespace of {who}: "
        "ptrace read access is needed (the same user, or CAP_SYS_PTRACE)",
        path,
    )


def _no_proc() -> bool:
    """True when no procfs of this process's pid namespace is mounted on /proc."""
    try:
        os.stat("/proc/self/ns")
    except FileNotFoundError:
        return True
    except OSError:
        pass
    return False


def _proc_unavailable(path: str, what: str) -> ProcUnavailable:
    return ProcUnavailable(f"{path}: no /proc is mounted here: {what} needs it")


def _open_proc(pid: int, name: str, flags: int) -> int:
    path = f"/proc/{pid}/{name}"
    try:
        if flags & os.O_PATH:
            return os.open(path, flags | os.O_CLOEXEC)
        return _open_regular(path, f"/proc/{pid}/{name}")
    except (FileNotFoundError, ProcessLookupError):
        if _no_proc():
            raise _proc_unavailable(path, f"asking about process {pid}") from None
        raise _gone(pid) from None
    except PermissionError:
        raise _denied(pid, path) from None


def _open_regular(path: PathArg, what: str) -> int:
    """``path`` opened for reading only if it is a regular file, as namespace files
    (nsfs) and /proc files are: checked through an O_PATH descriptor first, which opens
    nothing, so a FIFO (whose open blocks until a writer comes), a device or a socket named
    by mistake or malice is never opened. O_NONBLOCK guards against the file being replaced
    by a FIFO in between, which the inode comparison then refuses."""
    probe = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        st = os.fstat(probe)
    finally:
        os.close(probe)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{os.fsdecode(path)!r} is not a mount namespace file (/proc/<pid>/ns/mnt): {_kind_of(st)}")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    again = os.fstat(fd)
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise ValueError(f"{what}: replaced by another file while it was opened")
    return fd


def _kind_of(st: os.stat_result) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device")):
        if test(st.st_mode):
            return name
    if stat.S_ISBLK(st.st_mode):
        return "a block device"
    return "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"


class Target:
    """One other mount namespace, named by a process (``pid``) or a namespace file
    (``ns``: an open descriptor or a path). Use it in a ``with``: it holds descriptors."""

    def __init__(self, pid: Optional[int] = None, ns: Optional[Union[int, PathArg]] = None) -> None:
        self._fd = -1
        self._root = -1
        if (pid is None) == (ns is None):
            raise ValueError("give either pid= or ns=")
        if pid is not None:
            if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
                raise ValueError(f"pid must be a positive int, not {pid!r}")
            self._fd = _open_proc(pid, "ns/mnt", os.O_RDONLY)
        elif isinstance(ns, int):
            if isinstance(ns, bool) or ns < 0:
                raise ValueError(f"ns must be a file descriptor or a path, not {ns!r}")
            self._fd = os.dup(ns)  # dup sets O_CLOEXEC
        else:
            assert ns is not None
            self._fd = _open_regular(to_bytes(ns), os.fsdecode(ns))
        self.pid = pid
        try:
            kind = nsfs.CLONE_NEWNS if pid is not None else nsfs.namespace_type(self._fd)
        except OSError:
            kind = 0
        if kind != nsfs.CLONE_NEWNS:
            self.close()
            raise ValueError(f"{ns!r} is not a mount namespace file (/proc/<pid>/ns/mnt)")
        if self._fd == 0:  # 0 means "unset" to the kernel: never pass it
            self._fd, zero = os.dup(0), self._fd
            os.close(zero)
        self.inode = os.fstat(self._fd).st_ino
        self._access: Optional[str] = None
        self._ns_id = 0

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        for fd in (self._fd, self._root):
            if fd >= 0:
                os.close(fd)
        self._fd = self._root = -1

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # -- how to read it ----------------------------------------------------------------------

    @property
    def access(self) -> str:
        """How this namespace is read here: ns-fd, ns-id or mountinfo."""
        if self._access is None:
            self._access = self._probe()
        return self._access

    def _probe(self) -> str:
        global _ns_fd_works
        caps = capabilities()
        if not (caps.listmount.usable and caps.statmount_records):
            return MOUNTINFO
        if _ns_fd_works:  # holding the namespace file is the permission: no need to ask again
            return NS_FD
        try:
            k.listmount(k.LSMT_ROOT, count=1, ns_fd=self._fd)
            _ns_fd_works = True
            return NS_FD
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.E2BIG):  # EINVAL: no mnt_ns_fd (< 6.18)
                return MOUNTINFO
        try:
            self._ns_id = nsfs.mount_namespace_id(self._fd)
            k.listmount(k.LSMT_ROOT, count=1, ns_id=self._ns_id)
            return NS_ID
        except OSError:  # ENOTTY: < 6.11; ENOENT/EPERM: no CAP_SYS_ADMIN over it
            return MOUNTINFO

    def _ns(self) -> Tuple[int, int]:
        """The (mnt_ns_id, mnt_ns_fd) pair for listmount and statmount."""
        return (0, self._fd) if self.access == NS_FD else (self._ns_id, 0)

    def ids(self) -> List[int]:
        """The unique ids of every mount (statmount access only)."""
        ns_id, ns_fd = self._ns()
        return k.listmount_all(k.LSMT_ROOT, ns_id, ns_fd)

    def statmount_raw(self, mnt_id: int, param: int) -> bytes:
        ns_id, ns_fd = self._ns()
        return k.statmount_raw(mnt_id, param, ns_id, ns_fd)

    def _record(self, mnt_id: int, with_propagate_from: bool) -> Optional[Mount]:
        param = statmount.RECORD | (k.STATMOUNT_PROPAGATE_FROM if with_propagate_from else 0)
        return statmount.record(self.statmount_raw(mnt_id, param), with_propagate_from)

    def _a_pid(self) -> int:
        """A process in this namespace: the one named, else one found by the namespace's inode."""
        if self.pid is not None:
            return self.pid
        for pid in _pids():
            if _ns_inode(pid) == self.inode:
                self.pid = pid
                return pid
        raise MountprobeError("no process lives in that mount namespace: paths cannot be resolved in it")

    def _table(self) -> List[Mount]:
        pid = self._a_pid()
        with open(_open_proc(pid, "mountinfo", os.O_RDONLY), "rb") as f:
            data = f.read()
        if not data and _ns_inode(pid) is None:  # a zombie: its namespace is gone
            raise _gone(pid)
        return parse_mountinfo(data)

    # -- paths -------------------------------------------------------------------------------

    def _root_fd(self) -> int:
        if self._root < 0:
            self._root = _open_proc(self._a_pid(), "root", os.O_PATH | os.O_DIRECTORY)
        return self._root

    def open(self, path: bytes, follow: bool = True) -> int:
        """An O_PATH descriptor of ``path`` resolved in the process's root. A trailing ``/``
        is taken off (the kernel would walk through the last component, triggering an
        automount) and means what it means to the kernel: follow a symlink, and the result
        must be a directory (NotADirectoryError)."""
        raw = path.rstrip(b"/") or b"/"
        if raw != path:
            fd = self.open(raw)
            try:
                _resolve._check_directory(fd)
            except NotADirectoryError as exc:
                os.close(fd)
                raise NotADirectoryError(exc.errno, exc.strerror, os.fsdecode(path)) from None
            except BaseException:
                os.close(fd)
                raise
            return fd
        flags = os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
        for attempt in range(_RETRIES):
            try:
                return ko.openat2(self._root_fd(), raw, flags, _IN_ROOT)
            except OSError as exc:
                # EAGAIN: a ".." met a rename or mount anywhere on the system while it was
                # walked, so the kernel could not prove it stayed in the root: walk again.
                if exc.errno == errno.EAGAIN and attempt < _RETRIES - 1:
                    continue
                if exc.errno not in (errno.ENOSYS, errno.EPERM):
                    raise OSError(exc.errno, exc.strerror, os.fsdecode(path)) from None
                break
        # Before 5.6: through the magic link, where an absolute symlink would escape the root.
        try:
            return os.open(b"/proc/%d/root/" % self._a_pid() + raw.lstrip(b"/"), flags)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, os.fsdecode(path)) from None

    def canonical(self, path: bytes) -> bytes:
        """``path`` as the namespace spells it (symlinks and ``..`` resolved in its root)."""
        fd = self.open(path)
        try:
            return os.readlink(b"/proc/self/fd/%d" % fd)
        finally:
            os.close(fd)

    def _statx(self, fd: int, mask: int) -> kx.Statx:
        return kx.statx(fd, b"", _EMPTY, mask)

    def kind(self, path: bytes) -> Tuple[int, Tuple[int, int]]:
        fd = self.open(path)
        try:
            st = self._statx(fd, kx.STATX_TYPE)
        finally:
            os.close(fd)
        return st.mode, (st.rdev_major, st.rdev_minor)

    # -- the questions -------------------------------------------------------------------------

    def mount_of(self, path: bytes, follow: bool = True, with_propagate_from: bool = False) -> Mount:
        fd = self.open(path, follow)
        try:
            return self._holder(fd, path, with_propagate_from)
        finally:
            os.close(fd)

    def _holder(self, fd: int, path: bytes, with_propagate_from: bool) -> Mount:
        if self.access != MOUNTINFO:
            st = self._statx(fd, kx.STATX_MNT_ID_UNIQUE)
            if st.mask & kx.STATX_MNT_ID_UNIQUE:
                try:
                    found = self._record(st.mnt_id, with_propagate_from)
                except FileNotFoundError:
                    gone = "the mount vanished while being read"
                    raise FileNotFoundError(errno.ENOENT, gone, os.fsdecode(path)) from None
                if found is not None:
                    return found
        legacy = fd_mount_id(fd)
        for m in self._table():
            if m.id == legacy:
                return m if with_propagate_from else m._replace(propagate_from=None)
        raise MountprobeError(f"{os.fsdecode(path)}: its mount is not in the namespace's table")

    def is_mountpoint(self, path: bytes, bind: bool = True, follow: bool = True) -> bool:
        fd = self.open(path, follow)
        try:
            top = self._is_root(fd)
            if not top:
                try:
                    attributes = self._statx(fd, 0).attributes
                except OSError as exc:
                    if exc.errno not in (errno.ENOSYS, errno.EPERM):
                        raise
                    m = self._holder(fd, path, False)
                    attributes = kx.STATX_ATTR_MOUNT_ROOT if os.fsencode(m.mountpoint) == self._name(fd) else 0
                if not attributes & kx.STATX_ATTR_MOUNT_ROOT:
                    return False
            if bind:
                return True
            m = self._holder(fd, path, False)
        finally:
            os.close(fd)
        parent = self._parent(m)
        return parent is None or (parent.major, parent.minor) != (m.major, m.minor)

    def _is_root(self, fd: int) -> bool:
        a, b = os.fstat(fd), os.fstat(self._root_fd())
        return (a.st_dev, a.st_ino, fd_mount_id(fd)) == (b.st_dev, b.st_ino, fd_mount_id(self._root_fd()))

    def _name(self, fd: int) -> bytes:
        return os.readlink(b"/proc/self/fd/%d" % fd)

    def _parent(self, m: Mount) -> Optional[Mount]:
        if m.parent_unique_id is not None and self.access != MOUNTINFO:
            try:
                return self._record(m.parent_unique_id, False)
            except (FileNotFoundError, PermissionError):
                return None
        return next((p for p in self._table() if p.id == m.parent_id and p.id != m.id), None)

    def mount_at(self, path: bytes, with_propagate_from: bool = False) -> Optional[Mount]:
        if not self.is_mountpoint(path):
            return None
        return self.mount_of(path, True, with_propagate_from)

    def list_mounts(self, with_propagate_from: bool = False) -> List[Mount]:
        if self.access == MOUNTINFO:
            table = self._table()
            return table if with_propagate_from else [m._replace(propagate_from=None) for m in table]
        found: List[Mount] = []
        for mnt_id in self.ids():
            try:
                m = self._record(mnt_id, with_propagate_from)
            except (FileNotFoundError, PermissionError):
                continue  # gone since it was listed, or outside the namespace's root
            if m is not None:
                found.append(m)
        return found

    def mounts_under(self, path: bytes, include_self: bool = False, with_propagate_from: bool = False) -> List[Mount]:
        fd = self.open(path)
        try:
            holder = self._holder(fd, path, with_propagate_from)
            where = self._name(fd)
        finally:
            os.close(fd)
        table = self.list_mounts(with_propagate_from)
        return reachable_below(table, holder, where, include_self)

    def still_mounted(self, m: Mount) -> bool:
        if m.unique_id is not None and self.access != MOUNTINFO:
            try:
                self.statmount_raw(m.unique_id, k.STATMOUNT_MNT_BASIC)
            except FileNotFoundError:
                return False
            return True
        identity = _identity(m)
        return any(_identity(t) == identity for t in self._table())


class Own:
    """The caller's own namespace named by its own pid where no /proc is mounted: the same
    methods as ``Target``, answered by the questions about the caller's namespace, with a
    relative path taken from the root as ``pid=`` always does."""

    def __enter__(self) -> Own:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    @staticmethod
    def _root(path: bytes) -> bytes:
        return path if path.startswith(b"/") else b"/" + path

    def is_mountpoint(self, path: bytes, bind: bool = True, follow: bool = True) -> bool:
        return api.is_mountpoint(self._root(path), bind=bind, follow_symlinks=follow)

    def mount_of(self, path: bytes, follow: bool = True, with_propagate_from: bool = False) -> Mount:
        return api.mount_of(self._root(path), follow_symlinks=follow, propagate_from=with_propagate_from)

    def mount_at(self, path: bytes, with_propagate_from: bool = False) -> Optional[Mount]:
        return api.mount_at(self._root(path), propagate_from=with_propagate_from)

    def mounts_under(self, path: bytes, include_self: bool = False, with_propagate_from: bool = False) -> List[Mount]:
        return api.mounts_under(self._root(path), include_self=include_self, propagate_from=with_propagate_from)

    def list_mounts(self, with_propagate_from: bool = False) -> List[Mount]:
        return api.list_mounts(propagate_from=with_propagate_from)

    def still_mounted(self, m: Mount) -> bool:
        return api.still_mounted(m)

    def canonical(self, path: bytes) -> bytes:
        return api._Here.canonical(self._root(path))

    def kind(self, path: bytes) -> Tuple[int, Tuple[int, int]]:
        return api._kind(self._root(path))


def target(pid: Optional[int], ns: Optional[Union[int, PathArg]]) -> Union[Target, Own]:
    """The namespace that ``pid=`` or ``ns=`` names, to use in a ``with``."""
    if ns is None and type(pid) is int and pid == os.getpid() and _no_proc():
        return Own()
    return Target(pid, ns)


def _identity(m: Mount) -> tuple:  # type: ignore[type-arg]
    return (m.id, m.parent_id, m.major, m.minor, m.root, m.mountpoint, m.fstype, m.source, m.super_options)


# -- the inventory ---------------------------------------------------------------------------


def _psutil() -> object:
    try:
        return _lazy.load("psutil")
    except ImportError:
        raise MountprobeError("listing every process needs psutil: pip install 'mountprobe[namespaces]'") from None


def _pids() -> List[int]:
    if _no_proc():  # psutil would fail with an IndexError
        raise _proc_unavailable("/proc", "listing processes")
    pids: List[int] = _psutil().pids()  # type: ignore[attr-defined]
    return pids


def _ns_inode(pid: int) -> Optional[int]:
    """The inode of ``pid``'s mount namespace; None when it has exited or may not be looked at."""
    try:
        return os.stat(f"/proc/{pid}/ns/mnt").st_ino
    except OSError:
        return None


def _by_namespace() -> Dict[int, List[int]]:
    """Every visible process, grouped by mount namespace inode (pids in ascending order)."""
    if _no_proc():
        return {}
    groups: Dict[int, List[int]] = {}
    for pid in sorted(_pids()):
        inode = _ns_inode(pid)
        if inode is not None:
            groups.setdefault(inode, []).append(pid)
    return groups


def _command(pid: int) -> Optional[str]:
    try:
        name: str = _psutil().Process(pid).name()  # type: ignore[attr-defined]
    except Exception:  # psutil.Error: exited, or not ours to look at
        return None
    return name


def _own_namespace(what: str) -> Target:
    """Without /proc: the caller's own namespace, from a pidfd (6.11); a warning that no
    other one can be seen."""
    try:
        pidfd = os.pidfd_open(os.getpid())
    except (AttributeError, OSError):  # Python without it, < 5.3, or blocked
        raise _proc_unavailable("/proc", what) from None
    try:
        fd = nsfs.pidfd_mount_namespace(pidfd)
    except OSError:  # ENOTTY: < 6.11
        raise _proc_unavailable("/proc", what) from None
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
    if _no_proc():
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
        count_here, ns_id = nsfs.mount_namespace_info(target._fd)
        count = count if count is not None else count_here
    except OSError:
        try:
            ns_id = nsfs.mount_namespace_id(target._fd)
        except OSError:
            ns_id = None
    if count is None:
        count = len(target.ids()) if target.access != MOUNTINFO else len(target._table())
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
    mode, rdev = api._kind(raw)
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


def _holding(target: Target, sb: Optional[Tuple[int, int]], device: Optional[Tuple[int, int]]) -> List[Mount]:
    """The mounts of ``target`` whose superblock is ``sb``, or that ``device`` holds."""
    if target.access == MOUNTINFO:
        matches = _matcher(sb, device)
        return [m for m in target._table() if matches(m.major, m.minor, os.fsencode(m.source or ""))]
    ids = target.ids()
    cache = _sb_cache
    unknown = [i for i in ids if i not in cache]
    if unknown:
        ns_id, ns_fd = target._ns()
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
            m = target._record(mnt_id, False)
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
    for target, pids in _targets(_by_namespace(), "holders()"):
        try:
            mounts = _holding(target, sb, device)
        except (ProcessLookupError, PermissionError):
            continue
        if mounts:
            namespace = _namespace(target, pids)
            found += [Holder(namespace, m) for m in mounts]
    if len(_sb_cache) > 1_000_000:  # ids of mounts long gone: start again
        _sb_cache.clear()
        _source_cache.clear()
    return found
