"""The "where" of a question: the caller's own mount namespace, or another one named by a
process (``pid=``) or a namespace file (``ns=``). No question is answered here: the
strategies are given the ``Where`` and read the namespace through it (``mountprobe.chain``).

``Where`` is None for the caller's own namespace, so that the common question pays nothing
for the others, and a ``Target`` for another one. How a ``Target`` is read, best first
(``Target.access`` says which):

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
itself can: ``pid=<own pid>`` is answered as a question about the caller's own namespace
(``target`` returns None), and ``holders`` and ``mount_namespaces`` look in that namespace
only (with a warning), whose file the kernel hands out through a pidfd
(``PIDFD_GET_MNT_NAMESPACE``, 6.11). What needs /proc and cannot do without raises
``ProcUnavailable``.
"""

from __future__ import annotations

import errno
import os
import stat

from . import _lazy
from ._paths import to_bytes
from .errors import MountprobeError, ProcUnavailable
from .kernel import mount as k
from .kernel import nsfs
from .kernel import openat2 as ko
from .kernel import statx as kx
from .kernel._syscall import OFF
from .mountinfo import parse_mountinfo
from .probe import capabilities
from .strategies import _resolve
from .strategies._calls import fd_mount_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Tuple, Union

    from ._paths import PathArg
    from .model import Mount

    Where = Optional["Target"]  # None: the caller's own mount namespace

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


def no_proc() -> bool:
    """True when no procfs of this process's pid namespace is mounted on /proc."""
    try:
        os.stat("/proc/self/ns")
    except FileNotFoundError:
        return True
    except OSError:
        pass
    return False


def proc_unavailable(path: str, what: str) -> ProcUnavailable:
    return ProcUnavailable(f"{path}: no /proc is mounted here: {what} needs it")


def _open_proc(pid: int, name: str, flags: int) -> int:
    path = f"/proc/{pid}/{name}"
    try:
        if flags & os.O_PATH:
            return os.open(path, flags | os.O_CLOEXEC)
        return _open_regular(path, f"/proc/{pid}/{name}")
    except (FileNotFoundError, ProcessLookupError):
        if no_proc():
            raise proc_unavailable(path, f"asking about process {pid}") from None
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


def pids() -> List[int]:
    """Every visible process (psutil: ``mountprobe[namespaces]``)."""
    if no_proc():  # psutil would fail with an IndexError
        raise proc_unavailable("/proc", "listing processes")
    found: List[int] = psutil().pids()  # type: ignore[attr-defined]
    return found


def psutil() -> object:
    try:
        return _lazy.load("psutil")
    except ImportError:
        raise MountprobeError("listing every process needs psutil: pip install 'mountprobe[namespaces]'") from None


def ns_inode(pid: int) -> Optional[int]:
    """The inode of ``pid``'s mount namespace; None when it has exited or may not be looked at."""
    try:
        return os.stat(f"/proc/{pid}/ns/mnt").st_ino
    except OSError:
        return None


class Target:
    """One other mount namespace, named by a process (``pid``) or a namespace file
    (``ns``: an open descriptor or a path), and how to read it: its listmount/statmount
    arguments, its mountinfo, paths resolved in its root. Use it in a ``with``: it holds
    descriptors."""

    def __init__(self, pid: Optional[int] = None, ns: Optional[Union[int, PathArg]] = None) -> None:
        self.fd = -1
        self._root = -1
        if (pid is None) == (ns is None):
            raise ValueError("give either pid= or ns=")
        if pid is not None:
            if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
                raise ValueError(f"pid must be a positive int, not {pid!r}")
            self.fd = _open_proc(pid, "ns/mnt", os.O_RDONLY)
        elif isinstance(ns, int):
            if isinstance(ns, bool) or ns < 0:
                raise ValueError(f"ns must be a file descriptor or a path, not {ns!r}")
            self.fd = os.dup(ns)  # dup sets O_CLOEXEC
        else:
            assert ns is not None
            self.fd = _open_regular(to_bytes(ns), os.fsdecode(ns))
        self.pid = pid
        try:
            kind = nsfs.CLONE_NEWNS if pid is not None else nsfs.namespace_type(self.fd)
        except OSError:
            kind = 0
        if kind != nsfs.CLONE_NEWNS:
            self.close()
            raise ValueError(f"{ns!r} is not a mount namespace file (/proc/<pid>/ns/mnt)")
        if self.fd == 0:  # 0 means "unset" to the kernel: never pass it
            self.fd, zero = os.dup(0), self.fd
            os.close(zero)
        self.inode = os.fstat(self.fd).st_ino
        self._access: Optional[str] = None
        self._ns_id = 0

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        for fd in (self.fd, self._root):
            if fd >= 0:
                os.close(fd)
        self.fd = self._root = -1

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
            k.listmount(k.LSMT_ROOT, count=1, ns_fd=self.fd)
            _ns_fd_works = True
            return NS_FD
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.E2BIG):  # EINVAL: no mnt_ns_fd (< 6.18)
                return MOUNTINFO
        try:
            self._ns_id = nsfs.mount_namespace_id(self.fd)
            k.listmount(k.LSMT_ROOT, count=1, ns_id=self._ns_id)
            return NS_ID
        except OSError:  # ENOTTY: < 6.11; ENOENT/EPERM: no CAP_SYS_ADMIN over it
            return MOUNTINFO

    @property
    def by_mountinfo(self) -> bool:
        """Read through a process's mountinfo: listmount and statmount cannot read it here."""
        return self.access == MOUNTINFO

    def ns_args(self) -> Tuple[int, int]:
        """The (mnt_ns_id, mnt_ns_fd) pair for listmount and statmount."""
        return (0, self.fd) if self.access == NS_FD else (self._ns_id, 0)

    def ids(self) -> List[int]:
        """The unique ids of every mount (statmount access only)."""
        ns_id, ns_fd = self.ns_args()
        return k.listmount_all(k.LSMT_ROOT, ns_id, ns_fd)

    def statmount_raw(self, mnt_id: int, param: int) -> bytes:
        ns_id, ns_fd = self.ns_args()
        return k.statmount_raw(mnt_id, param, ns_id, ns_fd)

    def a_pid(self) -> int:
        """A process in this namespace: the one named, else one found by the namespace's inode."""
        if self.pid is not None:
            return self.pid
        for pid in pids():
            if ns_inode(pid) == self.inode:
                self.pid = pid
                return pid
        raise MountprobeError("no process lives in that mount namespace: paths cannot be resolved in it")

    def table(self) -> List[Mount]:
        """The namespace's mount table, from the mountinfo of a process in it."""
        pid = self.a_pid()
        with open(_open_proc(pid, "mountinfo", os.O_RDONLY), "rb") as f:
            data = f.read()
        if not data and ns_inode(pid) is None:  # a zombie: its namespace is gone
            raise _gone(pid)
        return parse_mountinfo(data)

    # -- paths -------------------------------------------------------------------------------

    def root_fd(self) -> int:
        if self._root < 0:
            self._root = _open_proc(self.a_pid(), "root", os.O_PATH | os.O_DIRECTORY)
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
                return ko.openat2(self.root_fd(), raw, flags, _IN_ROOT)
            except OSError as exc:
                # EAGAIN: a ".." met a rename or mount anywhere on the system while it was
                # walked, so the kernel could not prove it stayed in the root: walk again.
                if exc.errno == errno.EAGAIN and attempt < _RETRIES - 1:
                    continue
                if exc.errno not in OFF:
                    raise OSError(exc.errno, exc.strerror, os.fsdecode(path)) from None
                break
        # Before 5.6: through the magic link, where an absolute symlink would escape the root.
        try:
            return os.open(b"/proc/%d/root/" % self.a_pid() + raw.lstrip(b"/"), flags)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, os.fsdecode(path)) from None

    def name(self, fd: int) -> bytes:
        """The path of the open ``fd`` as the namespace spells it."""
        return os.readlink(b"/proc/self/fd/%d" % fd)

    def canonical(self, path: bytes) -> bytes:
        """``path`` as the namespace spells it (symlinks and ``..`` resolved in its root)."""
        fd = self.open(path)
        try:
            return self.name(fd)
        finally:
            os.close(fd)

    def statx(self, fd: int, mask: int) -> kx.Statx:
        """statx of the open ``fd`` with the inspection flags (no automount, no sync)."""
        return kx.statx(fd, b"", _EMPTY, mask)

    def kind(self, path: bytes) -> Tuple[int, Tuple[int, int]]:
        """The file type and device number of ``path``."""
        fd = self.open(path)
        try:
            st = self.statx(fd, kx.STATX_TYPE)
        finally:
            os.close(fd)
        return st.mode, (st.rdev_major, st.rdev_minor)

    def is_root(self, fd: int) -> bool:
        """Is the open ``fd`` the process's root (a mount point to it, mount root or not)?"""
        a, b = os.fstat(fd), os.fstat(self.root_fd())
        return (a.st_dev, a.st_ino, fd_mount_id(fd)) == (b.st_dev, b.st_ino, fd_mount_id(self.root_fd()))


def target(pid: Optional[int], ns: Optional[Union[int, PathArg]]) -> Where:
    """The namespace that ``pid=`` or ``ns=`` names, to close after use; None for the
    caller's own pid where no /proc is mounted (then answered in the caller's namespace,
    relative paths taken from the root)."""
    if ns is None and type(pid) is int and pid == os.getpid() and no_proc():
        return None
    return Target(pid, ns)
