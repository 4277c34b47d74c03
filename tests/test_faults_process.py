"""Faults of the process around the questions (issue 15): a fork while another thread probes
or imports, a namespace file that would block its open, a process without /proc, and one
that lost access to its installation (chroot) after importing mountprobe.

Each test runs in a private namespace (``@isolated``); the fork tests start a fresh
interpreter per trial, so that every import the questions make is a cold one."""

from __future__ import annotations

import errno
import json
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
from _child import run
from _ns import isolated, tmpfs
from _seccomp import CONTINUE, _hand_over, _supervise, as_linux_6_1

import mountprobe
from mountprobe.kernel import nsfs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEADLINE = 60.0


def _python(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, *args], capture_output=True, timeout=timeout, env=env, cwd=ROOT)


def _reap(pids: List[int], seconds: float) -> Tuple[int, int]:
    """(hung, failed) of the children ``pids``: hung ones are killed after ``seconds``."""
    hung = failed = 0
    until = time.monotonic() + seconds
    for pid in pids:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                failed += os.waitstatus_to_exitcode(status) != 0
                break
            if time.monotonic() > until:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                hung += 1
                break
            time.sleep(0.01)
    return hung, failed


# -- 6: fork while another thread probes or imports -------------------------------------------

# Run in a fresh interpreter: a thread asks its first question (every import cold) while the
# main thread forks, as often as it can while that thread runs; each child asks the same.
_FORK_TRIAL = r"""
import json, os, sys, threading, time
sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
question, scratch = sys.argv[1], sys.argv[2]
import mountprobe

def fresh_dir():
    path = os.path.join(scratch, f"{os.getpid()}-{time.monotonic_ns()}")
    os.makedirs(os.path.join(path, "a", "b"))
    return path

def watch():
    with mountprobe.watch() as w:
        w.read(0)

QUESTIONS = {
    "is_mountpoint": lambda: mountprobe.is_mountpoint("/"),
    "mount_of": lambda: mountprobe.mount_of("/"),
    "list_mounts": lambda: mountprobe.list_mounts(),
    "mounts_under": lambda: mountprobe.mounts_under(scratch + "/"),
    "pid": lambda: mountprobe.mount_of("/", pid=os.getpid()),
    "holders": lambda: mountprobe.holders("/"),
    "safe_rmtree": lambda: mountprobe.safe_rmtree(fresh_dir()),
    "watch": watch,
    "parse_mountinfo": lambda: mountprobe.parse_mountinfo(b""),
    "capabilities": lambda: mountprobe.capabilities(),
    "preload": lambda: mountprobe.preload(),
}
ask = QUESTIONS[question]
thread = threading.Thread(target=ask)
thread.start()
children = []
while not children or (thread.is_alive() and len(children) < 20):
    pid = os.fork()
    if pid == 0:
        try:
            ask()
        except BaseException:
            os._exit(3)
        os._exit(0)
    children.append(pid)
thread.join()
hung = failed = 0
until = time.monotonic() + 60
for pid in children:
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            failed += os.waitstatus_to_exitcode(status) != 0
            break
        if time.monotonic() > until:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            hung += 1
            break
        time.sleep(0.01)
print(json.dumps({"forked": len(children), "hung": hung, "failed": failed}))
"""

FORK_QUESTIONS = (
    "is_mountpoint",
    "mount_of",
    "list_mounts",
    "mounts_under",
    "pid",
    "holders",
    "safe_rmtree",
    "watch",
    "parse_mountinfo",
    "capabilities",
    "preload",
)


@pytest.mark.parametrize("question", FORK_QUESTIONS)
@isolated
def test_children_forked_while_a_thread_asks_its_first_question_never_hang(question: str, tmp_path: Path) -> None:
    hung = failed = forked = 0
    for _ in range(2):  # two cold interpreters
        done = _python("-c", _FORK_TRIAL, question, str(tmp_path))
        assert done.returncode == 0, done.stderr.decode()
        trial = json.loads(done.stdout)
        hung, failed, forked = hung + trial["hung"], failed + trial["failed"], forked + trial["forked"]
    assert (hung, failed) == (0, 0), f"{hung} of {forked} children hung, {failed} failed"


@isolated
def test_a_child_forked_while_another_thread_is_inside_the_first_probe_answers() -> None:
    """The probing thread is held inside the kernel (its name_to_handle_at handed to a
    seccomp supervisor that waits) while the main thread forks: every child must probe for
    itself at once, although the probe's lock was held when it was forked."""
    inside, release = threading.Event(), threading.Event()

    def hold(_nr: int, _flags: int, _args: Tuple[int, ...]) -> object:
        inside.set()
        release.wait(DEADLINE)
        return CONTINUE

    def first_probe() -> None:
        _supervise(_hand_over("name_to_handle_at"), hold)  # on this thread only
        mountprobe.capabilities()

    thread = threading.Thread(target=first_probe)
    thread.start()
    assert inside.wait(DEADLINE), "the probe never reached name_to_handle_at"
    children = []
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            try:
                ok = mountprobe.capabilities().name_to_handle_at.usable
            except BaseException:
                os._exit(3)
            os._exit(0 if ok else 4)
        children.append(pid)
    release.set()
    thread.join()
    assert _reap(children, DEADLINE) == (0, 0)


# -- 7: a namespace file that is no regular file is never opened -------------------------------


def _questions_with_ns(ns: Any) -> List[Callable[[], Any]]:
    return [
        lambda: mountprobe.list_mounts(ns=ns),
        lambda: mountprobe.is_mountpoint("/", ns=ns),
        lambda: mountprobe.mount_of("/", ns=ns),
        lambda: mountprobe.still_mounted(mountprobe.mount_of("/"), ns=ns),
    ]


@isolated
def test_ns_naming_a_fifo_a_socket_or_a_device_raises_value_error_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "socket"))
    (tmp_path / "file").write_bytes(b"")
    for path in (fifo, tmp_path / "socket", "/dev/null", tmp_path, tmp_path / "file"):
        for ask in _questions_with_ns(path):
            with pytest.raises(ValueError, match="not a mount namespace file"):
                run(ask, DEADLINE)
    # The FIFO never had a reader: a writer that does not wait finds none.
    with pytest.raises(OSError) as caught:
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    assert caught.value.errno == errno.ENXIO
    listener.close()


@isolated
def test_pid_in_a_fake_proc_whose_namespace_file_is_a_fifo_raises_without_hanging(tmp_path: Path) -> None:
    """A /proc replaced by files of someone's choosing (a tmpfs over it): the namespace file
    of a pid is a FIFO. pid= must not block in its open either."""
    tmpfs("/proc", "fake-proc")
    os.makedirs("/proc/self/ns")
    os.makedirs("/proc/1/ns")
    os.mkfifo("/proc/1/ns/mnt")
    with pytest.raises(ValueError, match="not a mount namespace file"):
        run(lambda: mountprobe.list_mounts(pid=1), DEADLINE)


# -- 14: without /proc ------------------------------------------------------------------------


def _outcome(ask: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return ask(*args, **kwargs)
    except (OSError, mountprobe.MountprobeError) as exc:
        return type(exc).__name__


def _own_namespace_file_without_proc() -> bool:
    try:
        pidfd = os.pidfd_open(os.getpid())
    except OSError:
        return False
    try:
        os.close(nsfs.pidfd_mount_namespace(pidfd))
        return True
    except OSError:  # ENOTTY before 6.11
        return False
    finally:
        os.close(pidfd)


@pytest.mark.parametrize("kernel", ["this", "linux-6.1"])
@isolated
def test_without_proc_the_own_pid_is_answered_as_the_callers_own_namespace(kernel: str, tmp_path: Path) -> None:
    if kernel == "linux-6.1":  # no record without the table: mount_root(pid=) walked by statx
        as_linux_6_1()
    (tmp_path / "sub").mkdir()
    tmpfs(tmp_path / "sub", "sub")
    (tmp_path / "sub" / "file").write_bytes(b"")
    sub = mountprobe.mount_of(tmp_path / "sub")  # before 6.15 a record needs the table
    tmpfs("/proc", "no-proc")
    me = os.getpid()
    relative = os.fsencode(tmp_path).lstrip(b"/") + b"/sub"
    paths = [b"/", os.fsencode(tmp_path), os.fsencode(tmp_path / "sub"), os.fsencode(tmp_path / "sub" / "file")]
    paths += [os.fsencode(tmp_path / "sub" / "file") + b"/", os.fsencode(tmp_path / "missing")]
    questions: List[Callable[..., Any]] = [
        lambda p, **kw: mountprobe.is_mountpoint(p, **kw),
        lambda p, **kw: mountprobe.is_mountpoint(p, bind=False, **kw),
        lambda p, **kw: mountprobe.mount_of(p, **kw),
        lambda p, **kw: mountprobe.mount_at(p, **kw),
        lambda p, **kw: mountprobe.mount_root(p, **kw),
        lambda p, **kw: mountprobe.mounts_under(p, **kw),
        lambda p, **kw: mountprobe.is_mounted(p, source="sub", fstype="tmpfs", **kw),
    ]
    for path in paths:
        for ask in questions:
            ours = _outcome(ask, path, pid=me)
            assert ours == _outcome(ask, path), (path, ours)
            assert ours != "ProcessLookupError"
    # a relative path, as with every pid=, is taken from the process's root
    assert _outcome(lambda: mountprobe.mount_of(relative, pid=me)) == _outcome(
        lambda: mountprobe.mount_of(b"/" + relative)
    )
    assert mountprobe.is_mountpoint(relative, pid=me)
    table = _outcome(lambda: mountprobe.list_mounts(pid=me))
    assert table == _outcome(mountprobe.list_mounts)
    assert _outcome(lambda: mountprobe.still_mounted(sub, pid=me)) == _outcome(lambda: mountprobe.still_mounted(sub))


@isolated
def test_without_proc_another_pid_raises_proc_unavailable_naming_proc(tmp_path: Path) -> None:
    child = os.fork()
    if child == 0:
        time.sleep(DEADLINE)
        os._exit(0)
    try:
        tmpfs("/proc", "no-proc")
        for ask in (
            lambda: mountprobe.list_mounts(pid=child),
            lambda: mountprobe.mount_of("/", pid=child),
            lambda: mountprobe.is_mountpoint("/", pid=child),
        ):
            with pytest.raises(mountprobe.ProcUnavailable, match=f"/proc/{child}/"):
                ask()
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)


@isolated
def test_without_proc_holders_and_mount_namespaces_see_the_callers_namespace_or_say_why(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    tmpfs(victim, "victim")
    held = mountprobe.mount_of(victim)
    ns_inode = os.stat("/proc/self/ns/mnt").st_ino
    count = len(mountprobe.list_mounts())
    tmpfs("/proc", "no-proc")
    if not _own_namespace_file_without_proc():
        for ask in (lambda: mountprobe.holders(victim), mountprobe.mount_namespaces):
            with pytest.raises(mountprobe.ProcUnavailable, match="/proc"):
                ask()
        pytest.skip("the caller's namespace file without /proc needs PIDFD_GET_MNT_NAMESPACE (Linux 6.11)")
    caps = mountprobe.capabilities()
    if caps.statx_unique_id and caps.statmount_records:
        with pytest.warns(RuntimeWarning, match="only the caller's own mount namespace"):
            found = mountprobe.holders(victim)
        assert [(h.namespace.inode, h.namespace.pids, h.mount) for h in found] == [(ns_inode, (os.getpid(),), held)]
    else:  # the victim's record needs the table before 6.15: refused, saying why
        with pytest.raises(mountprobe.ProcUnavailable, match="mountinfo"):
            mountprobe.holders(victim)
    with pytest.warns(RuntimeWarning, match="only the caller's own mount namespace"):
        namespaces = mountprobe.mount_namespaces()
    assert [(n.inode, n.pids, n.mounts) for n in namespaces] == [(ns_inode, (os.getpid(),), count + 1)]  # + /proc's
    records = caps.statx_unique_id and caps.statmount_records
    for command in (["holders", str(victim)], ["holders", "-J", str(victim)], ["namespaces"], ["namespaces", "-J"]):
        done = _python("-m", "mountprobe", *command, timeout=DEADLINE)
        assert done.returncode == (0 if records or command[0] == "namespaces" else 1), (command, done.stderr)
        assert b"Traceback" not in done.stderr and b"IndexError" not in done.stderr


# -- 15: the process loses access to its installation after importing mountprobe --------------

# Run in a fresh interpreter: import mountprobe (and preload when asked), note the answers,
# chroot into a directory without Python in it, then call every public function.
_CHROOT_TRIAL = r"""
import os, pickle, sys
jail, preload = sys.argv[1], sys.argv[2] == "preload"
import mountprobe
if preload:
    mountprobe.preload()
inside = os.path.join(jail, "sub")
before, names = {}, []
if preload:
    before = {"mount_of": mountprobe.mount_of(inside), "under": mountprobe.mounts_under(jail)}
    names = sorted(n for n in mountprobe.__all__ if n[0].islower() and callable(getattr(mountprobe, n)))
os.chroot(jail)
os.chdir("/")

def outcome(name, ask):
    try:
        return name, "ok", ask()
    except BaseException as exc:
        return name, type(exc).__name__, str(exc)

def watch():
    with mountprobe.watch() as w:
        return w.read(0)

def rmtree():
    os.makedirs("/sub/tree/a")
    mountprobe.safe_rmtree("/sub/tree")
    return os.path.exists("/sub/tree")

m = lambda: mountprobe.mount_of("/sub/file")
CALLS = {
    "is_mountpoint": lambda: (mountprobe.is_mountpoint("/"), mountprobe.is_mountpoint("/sub"),
                              mountprobe.is_mountpoint("/sub/file"), mountprobe.is_mountpoint("/sub", bind=False)),
    "mount_of": m,
    "mount_at": lambda: mountprobe.mount_at("/sub"),
    "mount_root": lambda: mountprobe.mount_root("/sub/file"),
    "mounts_under": lambda: mountprobe.mounts_under("/"),
    "list_mounts": lambda: mountprobe.list_mounts(),
    "is_mounted": lambda: mountprobe.is_mounted("/sub", source="inside", fstype="tmpfs"),
    "still_mounted": lambda: mountprobe.still_mounted(before["mount_of"]),
    "last_answer": lambda: mountprobe.last_answer(),
    "capabilities": lambda: mountprobe.capabilities(),
    "parse_mountinfo": lambda: mountprobe.parse_mountinfo(
        b"36 35 98:0 / /a\\043b rw - ext3 /dev/root rw\n"),
    "read_mountinfo": lambda: mountprobe.read_mountinfo(),
    "with_timeout": lambda: mountprobe.with_timeout(10, os.getpid),
    "safe_rmtree": rmtree,
    "wait_for_mount": lambda: mountprobe.wait_for_mount("/sub", timeout=10),
    "wait_for_unmount": lambda: mountprobe.wait_for_unmount("/sub/empty", timeout=10),
    "watch": watch,
    "holders": lambda: mountprobe.holders("/sub"),
    "mount_namespaces": lambda: mountprobe.mount_namespaces(),
    "preload": lambda: mountprobe.preload(),
}
if preload:
    results = [outcome(name, ask) for name, ask in CALLS.items()]
else:
    results = [outcome(name, lambda: getattr(mountprobe, name)) for name in mountprobe.__all__]
sys.stdout.buffer.write(pickle.dumps((before, results, names)))
"""

# What may be refused in a jail without /proc or Python: with a clear error, never an ImportError.
_MAY_REFUSE: Dict[str, Tuple[str, ...]] = {
    "list_mounts": ("ProcUnavailable",),  # where listmount cannot answer alone
    "read_mountinfo": ("ProcUnavailable",),
    "with_timeout": ("FileNotFoundError", "MountprobeError"),  # no interpreter in the jail
    "safe_rmtree": ("ProcUnavailable", "MountprobeError"),
    # the watchers want /proc (fanotify marks /proc/thread-self/ns/mnt; poll reads mountinfo)
    "watch": ("Unsupported",),
    "wait_for_mount": ("Unsupported",),
    "wait_for_unmount": ("Unsupported",),
    "holders": ("ProcUnavailable",),
    "mount_namespaces": ("ProcUnavailable",),
}


def _jail(tmp_path: Path) -> Path:
    jail = tmp_path / "jail"
    jail.mkdir()
    tmpfs(jail, "jail")
    (jail / "sub").mkdir()
    tmpfs(jail / "sub", "inside")
    (jail / "sub" / "file").write_bytes(b"")
    (jail / "sub" / "empty").mkdir()
    return jail


@isolated
def test_after_preload_every_function_answers_in_a_chroot_without_python(tmp_path: Path) -> None:
    jail = _jail(tmp_path)
    done = _python("-c", _CHROOT_TRIAL, str(jail), "preload")
    assert done.returncode == 0, done.stderr.decode()
    before, results, names = pickle.loads(done.stdout)
    assert sorted(name for name, _, _ in results) == names  # every public function was asked
    may_refuse = dict(_MAY_REFUSE)
    caps = mountprobe.capabilities()
    if not (caps.statx_unique_id and caps.statmount_records):
        # Before 6.15 a record comes from the table, which needs /proc (and so does still_mounted
        # of a record without a unique id, before 6.8): refused, saying so.
        for name in ("mount_of", "mount_at", "mounts_under", "is_mounted", "still_mounted"):
            may_refuse[name] = ("ProcUnavailable",)
        for name in ("wait_for_mount", "wait_for_unmount"):
            may_refuse[name] = ("Unsupported", "ProcUnavailable")
    answers = {}
    for name, kind, value in results:
        assert kind == "ok" or kind in may_refuse.get(name, ()), (name, kind, value)
        assert "No module named" not in str(value), (name, value)
        answers[name] = value if kind == "ok" else kind
    answered = {name for name, value in answers.items() if value not in may_refuse.get(name, ())}
    held = before["mount_of"]
    assert answers["is_mountpoint"] == (True, True, False, True)
    assert answers["mount_root"] == "/sub"
    if "mount_of" in answered:
        assert answers["mount_of"] == held._replace(mountpoint="/sub")
    if "mount_at" in answered:
        assert answers["mount_at"] == held._replace(mountpoint="/sub")
    if "mounts_under" in answered:
        assert [m.unique_id for m in answers["mounts_under"]] == [m.unique_id for m in before["under"]]
        assert [m.mountpoint for m in answers["mounts_under"]] == ["/sub"]
    if "is_mounted" in answered:
        assert answers["is_mounted"] is True
    if "still_mounted" in answered:
        assert answers["still_mounted"] is True
    assert answers["parse_mountinfo"][0].mountpoint == "/a#b"
    assert answers["safe_rmtree"] in (False, "ProcUnavailable", "MountprobeError")
    assert answers["wait_for_mount"] in (held._replace(mountpoint="/sub"), *may_refuse["wait_for_mount"])
    assert answers["wait_for_unmount"] in (None, *may_refuse["wait_for_unmount"])


@isolated
def test_without_preload_a_chroot_gives_a_clear_error_naming_preload_never_module_not_found(tmp_path: Path) -> None:
    jail = _jail(tmp_path)
    done = _python("-c", _CHROOT_TRIAL, str(jail), "no")
    assert done.returncode == 0, done.stderr.decode()
    _, results, _ = pickle.loads(done.stdout)
    refused = 0
    for name, kind, value in results:
        assert kind in ("ok", "MountprobeError"), (name, kind, value)
        if kind == "MountprobeError":
            assert "preload()" in value and "lost access" in value, value
            refused += 1
    assert refused  # the functions were not imported: each says what happened and what to do
