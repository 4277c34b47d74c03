"""Questions about other mount namespaces: child processes build their own views (some with
a filesystem leaked into them by a bind mount), answer every question about themselves,
and the same questions asked from outside with pid=/ns= must give the same answers, by
every way in (mnt_ns_fd, mnt_ns_id simulated on a kernel without mnt_ns_fd, mountinfo).
mount_namespaces and holders find exactly those namespaces and mounts."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Set, Tuple

import _child
import pytest
from _ns import (
    CLONE_NEWNS,
    MNT_DETACH,
    bind,
    forked,
    in_user_namespace,
    isolated,
    tmpfs,
    umount,
    unshare,
)
from _oracle import without_unique_ids
from _scenes import loop_ext4
from _seccomp import fail_syscalls, statx_without_unique_ids, without_mnt_ns_fd

import mountprobe
from mountprobe import namespaces, probe
from mountprobe.kernel import mount as kmount
from mountprobe.kernel import nsfs

WAYS = ("ns-fd", "ns-id", "mountinfo")


class Child:
    """A process in a mount namespace of its own, built by ``build``; it answers ``ask`` about
    itself, then waits until released."""

    def __init__(self, build: Callable[[], None], ask: Callable[[], Any]) -> None:
        def setup() -> None:
            unshare(CLONE_NEWNS)
            build()

        self._child = _child.Child(ask, setup, hold=True)
        self.pid = self._child.pid
        try:
            self.answers = self._child.result(60)
            self.inode = os.stat(f"/proc/{self.pid}/ns/mnt").st_ino
        except BaseException:
            self._child.kill()
            raise

    def release(self) -> None:
        self._child.release()


def _answers(paths: List[bytes], call: Callable[..., Any]) -> List[Tuple[str, Any]]:
    """Every question about every path, each answer or the type of its error."""
    questions: Dict[str, Callable[[bytes], Any]] = {
        "is_mountpoint": lambda p: call(mountprobe.is_mountpoint, p),
        "is_mountpoint(bind=False)": lambda p: call(mountprobe.is_mountpoint, p, bind=False),
        "is_mountpoint(nofollow)": lambda p: call(mountprobe.is_mountpoint, p, follow_symlinks=False),
        "mount_of": lambda p: call(mountprobe.mount_of, p),
        "mount_of(nofollow)": lambda p: call(mountprobe.mount_of, p, follow_symlinks=False),
        "mount_at": lambda p: call(mountprobe.mount_at, p),
        "mount_root": lambda p: call(mountprobe.mount_root, p),
        "mounts_under": lambda p: call(mountprobe.mounts_under, p),
        "mounts_under(self)": lambda p: call(mountprobe.mounts_under, p, include_self=True),
        "is_mounted": lambda p: call(mountprobe.is_mounted, p),
        "is_mounted(source)": lambda p: call(mountprobe.is_mounted, p, source="inner", fstype="tmpfs"),
    }
    out: List[Tuple[str, Any]] = []
    for path in paths:
        for name, ask in questions.items():
            try:
                out.append((f"{name} {path!r}", ask(path)))
            except OSError as exc:
                out.append((f"{name} {path!r}", type(exc).__name__))
    table = call(mountprobe.list_mounts)
    out.append(("list_mounts", table))
    out.append(("still_mounted", [call(mountprobe.still_mounted, m) for m in table]))
    return out


def _here(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return f(*args, **kwargs)


def _scene(tmp_path: Path) -> Tuple[Callable[[], None], List[bytes]]:
    """What each child builds (its own tmpfs, a directory only it has, symlinks that lead
    elsewhere in our namespace) and the paths asked about."""
    top = os.fsencode(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "other").mkdir()
    tmpfs(tmp_path / "other", "ours-only")
    os.symlink(top + b"/x/only-there", top + b"/abs-link")

    def build() -> None:
        umount(tmp_path / "other")
        tmpfs(tmp_path / "x", "inner")
        os.mkdir(top + b"/x/only-there")
        bind(tmp_path / "x" / "only-there", tmp_path / "x" / "only-there")
        os.mkdir(top + b"/x/bad\xff name")
        with open(top + b"/x/file", "wb"):
            pass

    paths = [
        b"/",
        top,
        top + b"/x",
        top + b"/x/only-there",
        top + b"/x/bad\xff name",
        top + b"/abs-link",
        top + b"/other",
        top + b"/x/missing",
        top + b"/x/../x/./only-there/",
        top + b"/x/file/",  # a trailing / on a file: NotADirectoryError, never False
        top + b"/x/file//",
        top + b"/x/file/.",
        top + b"/x/only-there/",
    ]
    return build, paths


def _need_way(way: str) -> None:
    """Skip, with the reason and the Linux version, unless this kernel offers ``way`` into
    another namespace (``mountinfo`` is offered everywhere); asked of the kernel, on our own
    namespace's file. ``ns-id`` is then taken with mnt_ns_fd refused, as on 6.11-6.17."""
    if way == "mountinfo":
        return
    caps = mountprobe.capabilities()
    if not (caps.listmount.usable and caps.statmount_records):
        pytest.skip(
            f"the {way} way reads records with statmount, which needs supported_mask (Linux 6.15); "
            f"this is {os.uname().release}: {caps.statmount.detail}"
        )
    with open("/proc/self/ns/mnt", "rb") as own:
        try:
            if way == "ns-fd":
                kmount.listmount(kmount.LSMT_ROOT, count=1, ns_fd=own.fileno())
            else:
                kmount.listmount(kmount.LSMT_ROOT, count=1, ns_id=nsfs.mount_namespace_id(own.fileno()))
        except OSError as exc:
            needs = "mnt_ns_fd (Linux 6.18, 6.12.107)" if way == "ns-fd" else "mnt_ns_id (Linux 6.11)"
            pytest.skip(f"the {way} way needs {needs}; this is {os.uname().release}: {exc}")


def _enter(way: str) -> None:
    if way == "ns-id":
        without_mnt_ns_fd()
    elif way == "mountinfo":
        fail_syscalls({"statmount": errno.ENOSYS, "listmount": errno.ENOSYS})


def _comparable(answers: List[Tuple[str, Any]], way: str) -> List[Tuple[str, Any]]:
    """Without statmount, records carry no unique ids on either side of the comparison."""
    if way != "mountinfo":
        return answers
    return [(name, without_unique_ids(value)) for name, value in answers]


@pytest.mark.parametrize("way", WAYS)
@isolated
def test_every_question_with_pid_gives_the_processs_own_answers(way: str, tmp_path: Path) -> None:
    _need_way(way)
    build, paths = _scene(tmp_path)
    child = Child(build, lambda: _answers(paths, _here))
    try:
        _enter(way)
        with namespaces.Target(pid=child.pid) as target:
            assert target.access == way
        ours = _answers(paths, lambda f, *a, **kw: f(*a, pid=child.pid, **kw))
        assert _comparable(ours, way) == _comparable(child.answers, way)
        # and the namespace really differs from ours
        assert mountprobe.mount_at(tmp_path / "x") is None
        assert mountprobe.mount_at(tmp_path / "x", pid=child.pid) is not None
    finally:
        child.release()


@isolated
def test_ns_as_a_path_or_an_open_descriptor_gives_the_same_answers(tmp_path: Path) -> None:
    build, paths = _scene(tmp_path)
    child = Child(build, lambda: _answers(paths, _here))
    try:
        ns_path = f"/proc/{child.pid}/ns/mnt"
        with namespaces.Target(ns=ns_path) as target:
            way = target.access  # mountinfo before 6.15: records without unique ids from outside
        expected = _comparable(child.answers, way)
        assert _comparable(_answers(paths, lambda f, *a, **kw: f(*a, ns=ns_path, **kw)), way) == expected
        fd = os.open(ns_path, os.O_RDONLY)
        try:
            assert _comparable(_answers(paths, lambda f, *a, **kw: f(*a, ns=fd, **kw)), way) == expected
        finally:
            os.close(fd)
    finally:
        child.release()


@isolated
def test_bad_namespace_arguments_raise_value_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    fd = os.open(tmp_path / "file", os.O_RDONLY)
    try:
        for kwargs in ({"pid": 0}, {"pid": -4}, {"pid": True}, {"ns": "/proc/self/ns/net"}, {"ns": fd}):
            with pytest.raises(ValueError):
                mountprobe.list_mounts(**kwargs)
        with pytest.raises(ValueError, match="either"):
            mountprobe.list_mounts(pid=os.getpid(), ns="/proc/self/ns/mnt")
        with pytest.raises(FileNotFoundError):
            mountprobe.list_mounts(ns=tmp_path / "missing")
    finally:
        os.close(fd)


@isolated
def test_an_exited_pid_raises_process_lookup_error_everywhere(tmp_path: Path) -> None:
    zombie = os.fork()
    if zombie == 0:
        os._exit(0)
    os.waitid(os.P_PID, zombie, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    reaped = os.fork()
    if reaped == 0:
        os._exit(0)
    os.waitpid(reaped, 0)
    calls: List[Callable[[int], Any]] = [
        lambda pid: mountprobe.list_mounts(pid=pid),
        lambda pid: mountprobe.is_mountpoint("/", pid=pid),
        lambda pid: mountprobe.mount_of(tmp_path, pid=pid),
        lambda pid: mountprobe.mount_at(tmp_path, pid=pid),
        lambda pid: mountprobe.mount_root(tmp_path, pid=pid),
        lambda pid: mountprobe.mounts_under(tmp_path, pid=pid),
        lambda pid: mountprobe.is_mounted(tmp_path, pid=pid),
        lambda pid: mountprobe.still_mounted(mountprobe.mount_of("/"), pid=pid),
    ]
    for pid in (zombie, reaped):
        for call in calls:
            with pytest.raises(ProcessLookupError, match=f"no process {pid}"):
                call(pid)
    os.waitpid(zombie, 0)


@pytest.mark.parametrize("way", WAYS)
@isolated
def test_a_namespace_stays_readable_while_its_file_is_open_by_the_ways_that_read_it_by_file(
    way: str, tmp_path: Path
) -> None:
    """The promise needs a way in by the namespace itself (ns-fd, ns-id: records by statmount,
    Linux 6.15); through /proc/<pid>/mountinfo (older kernels) it ends with the namespace's
    last process, and then every question says so instead of answering from elsewhere."""
    _need_way(way)
    build, _ = _scene(tmp_path)
    child = Child(build, lambda: mountprobe.list_mounts())
    _enter(way)
    with namespaces.Target(pid=child.pid) as target:
        assert target.access == way
        expected = without_unique_ids(child.answers) if way == "mountinfo" else child.answers
        got = mountprobe.list_mounts(ns=target.fd)
        assert (without_unique_ids(got) if way == "mountinfo" else got) == expected
        child.release()  # exits; the open namespace file keeps the namespace alive
        gone = "no process lives in that mount namespace"
        if way != "mountinfo":
            table = mountprobe.list_mounts(ns=target.fd)
            assert table == child.answers
            assert all(mountprobe.still_mounted(m, ns=target.fd) for m in table)
        else:
            with pytest.raises(mountprobe.MountprobeError, match=gone):
                mountprobe.list_mounts(ns=target.fd)
        # A path is resolved in a process's root: with none left, a path question says so.
        with pytest.raises(mountprobe.MountprobeError, match=gone):
            mountprobe.mount_at(tmp_path / "x", ns=target.fd)


@isolated
def test_a_namespace_the_caller_may_not_inspect_gives_a_clear_permission_error(tmp_path: Path) -> None:
    if in_user_namespace():
        pytest.skip("must become another uid, which a user namespace mapping only ours cannot")
    build, _ = _scene(tmp_path)
    child = Child(build, lambda: None)
    try:
        mountprobe.holders("/")  # every module imported while still root
        mountprobe.mount_of("/", pid=child.pid)
        os.setresuid(65534, 65534, 65534)
        for call in (
            lambda: mountprobe.list_mounts(pid=child.pid),
            lambda: mountprobe.is_mountpoint("/", pid=child.pid),
            lambda: mountprobe.mount_of("/", pid=child.pid),
        ):
            with pytest.raises(PermissionError) as caught:
                call()
            assert f"process {child.pid}" in str(caught.value) and "ptrace" in str(caught.value)
        assert mountprobe.holders("/") != []  # our own namespace is still ours to read
        assert all(n.pids != (child.pid,) for n in mountprobe.mount_namespaces())
    finally:
        child.release()


@contextlib.contextmanager
def _leaky_children(tmp_path: Path) -> Iterator[Tuple[Path, List[Child], Dict[int, Set[str]]]]:
    """A victim filesystem, and children that keep it in different ways: a leaked copy and a
    bind of a subdirectory; only a bind; nothing (they unmounted it). Each reports the mount
    points that hold the victim's superblock in its namespace."""
    victim = tmp_path / "victim"
    victim.mkdir()
    tmpfs(victim, "victim")
    (victim / "sub").mkdir()
    for name in ("lk", "lk2"):
        (tmp_path / name).mkdir()
    sb = mountprobe.mount_of(victim)
    dev = (sb.major, sb.minor)

    def holding() -> Set[str]:
        return {m.mountpoint for m in mountprobe.list_mounts() if (m.major, m.minor) == dev}

    def copy_and_bind() -> None:
        bind(victim / "sub", tmp_path / "lk")

    def bind_only() -> None:
        bind(victim / "sub", tmp_path / "lk2")
        umount(victim)

    def clean() -> None:
        umount(victim)

    children = [Child(build, holding) for build in (copy_and_bind, bind_only, clean, clean)]
    try:
        yield victim, children, {c.inode: c.answers for c in children if c.answers}
    finally:
        for c in children:
            c.release()


@isolated
def test_holders_finds_exactly_the_namespaces_a_filesystem_leaked_into(tmp_path: Path) -> None:
    with _leaky_children(tmp_path) as (victim, children, expected):
        ours = os.stat("/proc/self/ns/mnt").st_ino
        found = mountprobe.holders(victim)
        got: Dict[int, Set[str]] = {}
        for h in found:
            got.setdefault(h.namespace.inode, set()).add(h.mount.mountpoint)
        assert got == {ours: {str(victim)}, **expected}
        by_inode = {h.namespace.inode: h.namespace for h in found}
        for c in children:
            if c.inode in expected:
                assert c.pid in by_inode[c.inode].pids
        assert mountprobe.holders(victim / "sub") == found  # any path in it: the same superblock
        # Gone from our namespace, still held elsewhere: ask through a holder's root.
        umount(victim, MNT_DETACH)
        leaked = children[0]
        again = mountprobe.holders(f"/proc/{leaked.pid}/root{victim}")
        assert {(h.namespace.inode, h.mount.mountpoint) for h in again} == {
            (inode, point) for inode, points in expected.items() for point in points
        }


@isolated
def test_holders_through_another_namespaces_root_without_statmount_falls_back_to_the_files_device(
    tmp_path: Path,
) -> None:
    """As on Linux 6.1 (no statmount, no listmount, no unique ids from statx): the mount of a
    path through /proc/<pid>/root is in no table of ours, and holders() asks by the device of
    the file itself instead of failing on our mountinfo (issue 16, item 1)."""
    with _leaky_children(tmp_path) as (victim, children, expected):
        umount(victim, MNT_DETACH)
        fail_syscalls({"statmount": errno.ENOSYS, "listmount": errno.ENOSYS})
        statx_without_unique_ids()
        probe.forget()
        assert not mountprobe.capabilities().statmount.usable
        again = mountprobe.holders(f"/proc/{children[0].pid}/root{victim}")
        assert {(h.namespace.inode, h.mount.mountpoint) for h in again} == {
            (inode, point) for inode, points in expected.items() for point in points
        }


@isolated
def test_mount_namespaces_lists_every_child_with_its_pids_and_mount_count(tmp_path: Path) -> None:
    with _leaky_children(tmp_path) as (_, children, _):
        listed = {n.inode: n for n in mountprobe.mount_namespaces()}
        for c in children:
            n = listed[c.inode]
            assert c.pid in n.pids and n.command
            with open(f"/proc/{c.pid}/mountinfo", "rb") as f:
                assert n.mounts == len(f.read().splitlines())
            assert n.id is None or n.id > 0
        ours = listed[os.stat("/proc/self/ns/mnt").st_ino]
        assert os.getpid() in ours.pids


@isolated
def test_the_namespaces_holders_and_find_commands(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "mountprobe", *args], capture_output=True, timeout=60)

    with _leaky_children(tmp_path) as (victim, children, expected):
        done = run("namespaces", "-J")
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout)["namespaces"]
        assert {c.inode for c in children} <= {r["ns"] for r in rows}
        done = run("holders", "-J", str(victim))
        assert done.returncode == 0, done.stderr
        held = json.loads(done.stdout)["holders"]
        assert {(r["ns"], r["target"]) for r in held} >= {(i, p) for i, ps in expected.items() for p in ps}
        table = run("holders", str(victim))
        assert table.returncode == 0 and table.stdout.split(b"\n")[0].split() == [
            b"NS",
            b"PID",
            b"TARGET",
            b"SOURCE",
            b"FSTYPE",
        ]
        clean = children[2]
        found = run("find", "-N", str(clean.pid), "-J", str(tmp_path / "lk2"))
        assert found.returncode == 0 and json.loads(found.stdout)["filesystems"][0]["target"] == str(tmp_path)
        missing = run("find", "-N", "999999999", "/")
        assert missing.returncode == 1 and b"no process 999999999" in missing.stderr
        assert b"Traceback" not in missing.stderr


@isolated
def test_holders_of_a_block_device_finds_the_namespace_that_still_holds_it(tmp_path: Path) -> None:
    target = tmp_path / "mnt"
    loop_ext4(tmp_path / "disk.img", target)
    m = mountprobe.mount_at(target)
    assert m is not None and m.source is not None
    device = m.source
    child = Child(lambda: None, lambda: None)  # its namespace copies the mount, then keeps it
    try:
        umount(target)  # "umount worked", yet the device is still busy
        found = mountprobe.holders(device)
        assert [(h.namespace.inode, h.mount.mountpoint, h.mount.source) for h in found] == [
            (child.inode, str(target), device)
        ]
        assert child.pid in found[0].namespace.pids
    finally:
        child.release()  # the last mount goes with the namespace; autoclear frees the device
    assert mountprobe.holders(device) == []


@isolated
def test_paths_with_dotdot_resolve_while_mounts_change_elsewhere(tmp_path: Path) -> None:
    """openat2(RESOLVE_IN_ROOT) refuses a ".." walked while any mount changed (EAGAIN), to
    be safe against escapes: under churn the answer must still come, by walking again."""
    build, _ = _scene(tmp_path)
    child = Child(build, lambda: mountprobe.mount_of(os.fsencode(tmp_path) + b"/x/../x/only-there"))
    churn_dir = tmp_path / "churn"
    churn_dir.mkdir()

    def churn() -> None:
        while True:
            tmpfs(churn_dir, "churn")
            umount(churn_dir)

    churner = forked(churn)
    try:
        path = os.fsencode(tmp_path) + b"/x/../x/only-there"
        # Another namespace's records carry unique ids where statmount reads it (6.15); before
        # that they come from /proc/PID/mountinfo without them (the child's own have them).
        caps = mountprobe.capabilities()
        expected = child.answers
        if not caps.statmount_records:
            expected = expected._replace(unique_id=None, parent_unique_id=None)
        for _ in range(3000):
            assert mountprobe.mount_of(path, pid=child.pid) == expected
    finally:
        os.kill(churner, 9)
        os.waitpid(churner, 0)
        child.release()


@pytest.mark.parametrize("way", WAYS)
@isolated
def test_last_answer_and_the_info_command_name_the_strategy_of_a_pid_or_ns_question(way: str, tmp_path: Path) -> None:
    _need_way(way)
    build, _ = _scene(tmp_path)
    child = Child(build, lambda: None)
    records = "mountinfo" if way == "mountinfo" else "statmount"
    try:
        _enter(way)
        ns_path = f"/proc/{child.pid}/ns/mnt"
        asked: List[Tuple[Callable[[], Any], str, str]] = [
            (lambda: mountprobe.mount_of(tmp_path / "x", pid=child.pid), "mount_of", records),
            (lambda: mountprobe.mount_at(tmp_path / "x", ns=ns_path), "mount_at", records),
            (lambda: mountprobe.is_mountpoint(tmp_path / "x", pid=child.pid), "is_mountpoint", "statx"),
            (
                lambda: mountprobe.is_mountpoint(tmp_path / "x", bind=False, ns=ns_path),
                "is_mountpoint(bind=False)",
                records,
            ),
            (lambda: mountprobe.mounts_under(tmp_path, pid=child.pid), "mounts_under", records),
            (lambda: mountprobe.list_mounts(ns=ns_path), "list_mounts", records),
            (lambda: mountprobe.is_mounted(tmp_path / "x", source="inner", pid=child.pid), "mount_at", records),
        ]
        for ask, question, strategy in asked:
            mountprobe.is_mountpoint("/")  # a question in our own namespace first: never shown after
            ask()
            answer = mountprobe.last_answer()
            assert answer is not None and (answer.question, answer.strategy) == (question, strategy)
            # what declined before, and why: the strategies that cannot read another namespace
            assert all(why for _, why in answer.declined), answer
        if way == "ns-id":
            return  # its supervisor reads the calls' memory in this process, not in a command's
        shown = subprocess.run(
            [sys.executable, "-m", "mountprobe", "info", "-N", str(child.pid), str(tmp_path / "x")],
            capture_output=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        assert [line.split() for line in shown.stdout.splitlines() if line.startswith(b"answered by")] == [
            [b"answered", b"by", records.encode()]
        ]
    finally:
        child.release()
