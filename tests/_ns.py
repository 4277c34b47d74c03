"""Private mount namespaces for tests, and the mount(2) calls that build scenarios in them
(the benchmarks use them too, so pytest is imported only where a test needs it).

``@isolated`` runs a test in a forked child that enters a new mount namespace (inside a new
user namespace when not root) with every mount private, mounts a fresh tmpfs on the test's
``tmp_path``, and exits. The namespace, and every mount made in it, dies with the child,
whether the test passed or not: the host's mount table is never touched. The test runs as
the init of its own pid namespace (with its own /proc), so no process it started survives it
either.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
from typing import Any, Callable, Optional, TypeVar, Union

from _child import Child, Hung

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)
Pathish = Union[str, bytes, "os.PathLike[str]"]
F = TypeVar("F", bound=Callable[..., Any])
# The deadline of an ``@isolated`` test, only to catch a hang: what the heaviest ordinary test
# does (the dead-FUSE tests of test_no_hang.py: some 60 commands, some 300 forked queries)
# with room to spare, as this machine paces it (tests/_pace.py), and never under 120 s.
TEST_WORK = {"starts": 100, "forks": 1000, "floor": 120.0}


def _b(value: Optional[Pathish]) -> Optional[bytes]:
    return None if value is None else os.fsencode(value)


def _check(result: int, what: str, *paths: Optional[Pathish]) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", *[os.fsdecode(p) for p in paths if p is not None][:1])


def mount(
    source: Optional[Pathish], target: Pathish, fstype: Optional[str] = None, flags: int = 0, data: str = ""
) -> None:
    fs = fstype.encode() if fstype else None
    _check(_libc.mount(_b(source), _b(target), fs, ctypes.c_ulong(flags), data.encode() or None), "mount", target)


def umount(target: Pathish, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), "umount", target)


def tmpfs(target: Pathish, source: str = "tmpfs", data: str = "") -> None:
    mount(source, target, "tmpfs", 0, data)


def bind(source: Pathish, target: Pathish, recursive: bool = False) -> None:
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))


def propagation(target: Pathish, flag: int) -> None:
    mount(None, target, None, flag)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def enter_private_namespace(also: int = 0) -> None:
    """Enter a new mount namespace (and the namespaces in ``also``) with every mount private;
    as a non-root user, inside a new user namespace that maps the caller to root (so it may
    mount tmpfs, binds, overlayfs)."""
    if os.geteuid() == 0:
        unshare(CLONE_NEWNS | also)
    else:
        uid, gid = os.geteuid(), os.getegid()
        unshare(CLONE_NEWUSER | CLONE_NEWNS | also)
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    propagation("/", MS_REC | MS_PRIVATE)


def in_user_namespace() -> bool:
    with open("/proc/self/uid_map") as f:
        return f.read().split() != ["0", "0", "4294967295"]


def need_real_root() -> None:
    import pytest

    if in_user_namespace():
        pytest.skip("needs real root (loop devices cannot be set up inside a user namespace)")


def isolated(test: F, deadline: Optional[Callable[[], float]] = None) -> F:
    """Run ``test`` in a child process inside a private mount namespace (see module doc),
    failing it when it has not finished by ``deadline()`` seconds (by default the deadline
    of ``TEST_WORK``, measured when the test runs)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        import pytest
        from _pace import hang_deadline

        seconds = deadline() if deadline is not None else hang_deadline(**TEST_WORK)

        def run() -> Optional[str]:
            """None when the test passed; why, when it skipped."""
            try:
                test(*args, **kwargs)
            except pytest.skip.Exception as skip:
                return str(skip)
            return None

        with Child(run, lambda: _enter_test_namespaces(kwargs.get("tmp_path"))) as child:
            try:
                ok, skipped, trace = child.report(seconds)
            except Hung:  # killed, and with it the test's pid namespace
                ok, skipped, trace = False, None, f"test did not finish within {seconds:.0f} s (a hang)"
        if not ok:
            pytest.fail(trace or str(skipped), pytrace=False)
        if skipped is not None:
            pytest.skip(skipped)

    return wrapper  # type: ignore[return-value]


def _enter_test_namespaces(tmp_path: Optional[Pathish]) -> None:
    """In the forked child: new mount and pid namespaces, then go on as the pid namespace's
    init (this process waits for it and exits), so that every process the test starts (a
    FUSE server, a query stuck on a dead mount) is killed when it ends or when this process
    is killed at the deadline."""
    enter_private_namespace(CLONE_NEWPID)
    inner = os.fork()
    if inner:
        os.waitpid(inner, 0)
        os._exit(0)
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
    # A /proc of the new pid namespace, so that /proc/<pid> names the test's children.
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if tmp_path is not None:
        tmpfs(tmp_path, "scratch")


def isolated_for(seconds: float = 0.0, starts: float = 0, forks: float = 0, queries: float = 0) -> Callable[[F], F]:
    """``@isolated`` with the deadline of a longer test (the walks, the churn): the larger of
    ``seconds`` and ``hang_deadline`` of its work (tests/_pace.py) and of ``TEST_WORK``, taken
    when the test runs. Give the work wherever it can be counted: a fixed number of seconds
    is too short on a slow enough machine."""

    def deadline() -> float:
        from _pace import hang_deadline

        work = hang_deadline(starts, forks, queries)
        return max(seconds, work, hang_deadline(**TEST_WORK))

    return lambda test: isolated(test, deadline)


def forked(work: Callable[[], Any]) -> int:
    """Run ``work`` in a forked child (in this mount namespace) that exits when it returns
    or raises; the child's pid, for the caller to wait for or kill."""
    return Child(work, report=False).pid
