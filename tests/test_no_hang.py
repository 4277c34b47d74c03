"""No question about a mount touches the filesystem behind it: a dead FUSE server receives no
request and a direct autofs mount is never triggered, whatever the strategy, and every public
function and command answers. Loops and unsearchable parents raise clear errors.

Each query runs in its own process with a deadline only to catch a hang: 20 times what one
command and one forked query take on this machine, at least 10 s (tests/_pace.py), so that a
slow machine (a kernel under emulation, a loaded host) passes and a hang still fails."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import pytest
from _dead import DeadAutofs, DeadFuse, Timeout, waits_on, within
from _ns import bind, in_user_namespace, isolated
from _oracle import without_unique_ids
from _pace import hang_deadline
from _seccomp import fail_syscalls

import mountprobe
from mountprobe import api, probe

ALL = ("statx", "openat2", "name_to_handle_at", "statmount", "listmount")
LEVELS: Dict[str, Dict[str, int]] = {
    "full": {},
    "no-statmount": {"statmount": errno.ENOSYS, "listmount": errno.ENOSYS},
    "no-statx": {"statx": errno.EPERM},
    "no-statx-no-openat2": {"statx": errno.EPERM, "openat2": errno.ENOSYS},
    "proc-only": {name: errno.EPERM for name in ALL},
}
ENOUGH = 5  # hung queries before a test stops asking
Dead = Union[DeadFuse, DeadAutofs]


def _deadline() -> float:
    """Of one query: a command, or a question in a forked child."""
    return hang_deadline(starts=1, forks=1)


def _cli(*args: Union[str, bytes]) -> Tuple[int, bytes]:
    done = subprocess.run(
        [sys.executable, "-m", "mountprobe", *args], capture_output=True, timeout=_deadline(), check=False
    )
    return done.returncode, done.stdout


def _queries(fs: Dead, parent: Path, link: Path, bound: Optional[Path]) -> List[Tuple[str, Callable[[], Any]]]:
    dead = fs.target
    b = os.fsencode(dead)
    spellings: List[Union[Path, bytes]] = [dead, link, parent]
    if not getattr(fs, "owner", 0):  # paths through another user's FUSE mount: EACCES
        spellings += [b + b"/", b + b"/.", b + b"/.."]
    q: List[Tuple[str, Callable[[], Any]]] = []
    for p in spellings:
        q.append((f"is_mountpoint({p!r})", partial(mountprobe.is_mountpoint, p)))
        q.append((f"is_mountpoint({p!r}, bind=False)", partial(mountprobe.is_mountpoint, p, bind=False)))
        q.append((f"mount_of({p!r})", partial(mountprobe.mount_of, p)))
        q.append((f"mount_at({p!r})", partial(mountprobe.mount_at, p)))
        q.append((f"mount_root({p!r})", partial(mountprobe.mount_root, p)))
        q.append((f"mounts_under({p!r})", partial(mountprobe.mounts_under, p, include_self=True)))
        q.append((f"is_mounted({p!r})", partial(mountprobe.is_mounted, p, source=fs.source, fstype=fs.fstype)))
    for p in (dead, link):
        q.append((f"is_mountpoint({p!r}, nofollow)", partial(mountprobe.is_mountpoint, p, follow_symlinks=False)))
        q.append((f"mount_of({p!r}, nofollow)", partial(mountprobe.mount_of, p, follow_symlinks=False)))
    q += [
        ("mounts_under(parent)", partial(mountprobe.mounts_under, parent)),
        ("list_mounts()", mountprobe.list_mounts),
        ("list_mounts(propagate_from)", partial(mountprobe.list_mounts, propagate_from=True)),
        ("still_mounted", lambda: mountprobe.still_mounted(mountprobe.mount_of(dead))),
        ("is_mounted(fstype)", partial(mountprobe.is_mounted, dead, fstype=fs.fstype.partition(".")[0])),
        ("read_mountinfo", lambda: b"\\040" not in mountprobe.read_mountinfo()),
        ("capabilities", lambda: mountprobe.capabilities().procfs.usable),
    ]
    if bound is not None:
        q.append(("is_mounted(bound, source=dead)", partial(mountprobe.is_mounted, bound, source=dead)))
        q.append(("is_mountpoint(bound, bind=False)", partial(mountprobe.is_mountpoint, bound, bind=False)))
    commands: List[Tuple[Union[str, bytes, Path], ...]] = [
        ("is-mountpoint", dead),
        ("is-mountpoint", "--no-bind", dead),
        ("is-mountpoint", "-d", dead),
        ("is-mountpoint", "--nofollow", link),
        ("find", dead),
        ("find", link),
        ("find", parent),
        ("list", "--under", parent),
        ("list", "--under", parent, "--tree", "-J"),
        ("list", "-o", "TARGET,SOURCE,FSTYPE,PROPAGATION"),
    ]
    for args in commands:
        q.append((f"cli {args}", partial(_cli, *map(os.fsencode, args))))
    q.append(("cli info", lambda: _cli("info", os.fsencode(dead))[0]))
    q.append(("cli doctor", lambda: _cli("doctor")[0]))
    return q


def _ask_everything(fs: Dead, parent: Path) -> Dict[str, Dict[str, Any]]:
    """Every query at every level, each in its own process with a deadline."""
    link = parent / "link"
    link.symlink_to(fs.target)
    bound = None
    if isinstance(fs, DeadFuse):
        bound = parent / "bound"
        bound.mkdir()
        bind(fs.target, bound)
    queries = _queries(fs, parent, link, bound)
    answers: Dict[str, Dict[str, Any]] = {}
    hung = 0
    for level, blocked in LEVELS.items():

        def setup(blocked: Dict[str, int] = blocked) -> None:
            if blocked:
                fail_syscalls(blocked)
            probe.forget()

        answers[level] = got = {}
        for name, query in queries:
            got[name] = within(_deadline(), query, setup)
            hung += isinstance(got[name], Timeout)
            if hung == ENOUGH:  # enough to report: do not wait out every deadline
                return answers
    return answers


def _check(fs: Dead, answers: Dict[str, Dict[str, Any]]) -> None:
    hung = [f"{level}: {name}" for level, got in answers.items() for name, v in got.items() if isinstance(v, Timeout)]
    assert not hung, f"no answer within {_deadline():.0f} s:\n" + "\n".join(hung)
    full = answers["full"]
    assert len(answers) == len(LEVELS)
    failed = {name: v for name, v in full.items() if isinstance(v, BaseException)}
    assert not failed, "\n".join(f"{n}: {v!r}" for n, v in failed.items())
    dead = fs.target
    assert full[f"is_mountpoint({dead!r})"] is True
    if f"is_mountpoint({os.fsencode(dead) + b'/'!r})" in full:
        assert full[f"is_mountpoint({os.fsencode(dead) + b'/'!r})"] is True
    assert full[f"is_mountpoint({dead.parent / 'link'!r}, nofollow)"] is False
    assert full[f"mount_of({dead!r})"].fstype == fs.fstype
    assert full[f"mount_of({dead!r})"].source == fs.source
    assert full[f"mount_at({dead!r})"] == full[f"mount_of({dead!r})"]
    assert full[f"mount_at({dead.parent / 'link'!r})"] == full[f"mount_of({dead!r})"]
    assert full[f"is_mounted({dead!r})"] is True
    assert full["still_mounted"] is True
    assert [m.mountpoint for m in full["mounts_under(parent)"]].count(str(dead)) == 1
    assert full[f"cli ('is-mountpoint', {dead!r})"] == (0, os.fsencode(dead) + b" is a mountpoint\n")
    assert full["cli info"] == full["cli doctor"] == 0
    for level, got in answers.items():
        differ = {
            n: (got[n], v)
            for n, v in full.items()
            if n != "cli doctor" and without_unique_ids(got[n]) != without_unique_ids(v)
        }
        assert not differ, f"{level} differs from the full chain: {differ}"


@isolated
def test_a_dead_fuse_server_receives_no_request_and_every_query_answers(tmp_path: Path) -> None:
    (tmp_path / "dead").mkdir()
    with DeadFuse(tmp_path / "dead") as fs:
        started = time.monotonic()
        answers = _ask_everything(fs, tmp_path)
        _check(fs, answers)
        assert fs.requests() == [], "a query reached the FUSE server"
        print(f"{sum(map(len, answers.values()))} queries in {time.monotonic() - started:.1f} s")
        # The server is really dead: an ordinary stat(2) of its root waits for it.
        outcome, asked = waits_on(fs, lambda: os.stat(fs.target))
        assert isinstance(outcome, Timeout) and asked[:1] == ["GETATTR"], (outcome, asked)


@isolated
def test_another_users_fuse_mount_is_described_though_it_refuses_every_attribute(tmp_path: Path) -> None:
    # Without allow_other FUSE refuses stat(2) to everyone but its owner, root included
    # ("df: /run/user/1000/gvfs: Permission denied"); the mount table still answers.
    (tmp_path / "dead").mkdir()
    with DeadFuse(tmp_path / "dead", owner=1000) as fs:
        assert isinstance(within(_deadline(), lambda: os.stat(fs.target)), PermissionError)
        answers = _ask_everything(fs, tmp_path)
        _check(fs, answers)
        assert fs.requests() == [], "a query reached the FUSE server"
        # A trailing "/." or "/.." walks through the mount, which FUSE refuses, as stat does.
        for spelling in (b"/.", b"/.."):
            with pytest.raises(PermissionError):
                mountprobe.is_mountpoint(os.fsencode(fs.target) + spelling)


@isolated
def test_after_the_fuse_server_dies_queries_still_answer_and_paths_below_raise(tmp_path: Path) -> None:
    (tmp_path / "dead").mkdir()
    with DeadFuse(tmp_path / "dead") as fs:
        fs.kill()
        assert mountprobe.is_mountpoint(fs.target) is True
        assert mountprobe.mount_of(fs.target).fstype == fs.fstype
        assert mountprobe.mount_at(tmp_path / "dead" / "") is not None
        for question in (mountprobe.is_mountpoint, mountprobe.mount_of, mountprobe.mount_at):
            with pytest.raises(OSError) as raised:
                question(fs.target / "below")
            assert raised.value.errno == errno.ENOTCONN, question


@isolated
def test_a_direct_autofs_mount_is_a_mount_point_and_is_never_triggered(tmp_path: Path) -> None:
    (tmp_path / "auto").mkdir()
    with DeadAutofs(tmp_path / "auto") as fs:
        answers = _ask_everything(fs, tmp_path)
        _check(fs, answers)
        assert fs.requests() == b"", "a query triggered the automount"
        # Opening the directory does trigger it, and then waits for the daemon.
        outcome, asked = waits_on(fs, lambda: os.listdir(fs.target))
        assert isinstance(outcome, Timeout) and asked != b"", (outcome, asked)


@isolated
def test_with_timeout_gives_up_on_a_path_below_a_dead_mount(tmp_path: Path) -> None:
    (tmp_path / "dead").mkdir()
    with DeadFuse(tmp_path / "dead") as fs:
        # It gives up without waiting for its stuck child (which would be forever).
        below = fs.target / "below"
        gave_up = within(_deadline(), lambda: mountprobe.with_timeout(0.5, mountprobe.is_mountpoint, below))
        assert isinstance(gave_up, TimeoutError), gave_up
        limit = hang_deadline(starts=1)
        assert mountprobe.with_timeout(limit, mountprobe.is_mountpoint, fs.target) is True
        assert mountprobe.with_timeout(limit, mountprobe.mount_at, fs.target) == mountprobe.mount_at(fs.target)
        with pytest.raises(FileNotFoundError):
            mountprobe.with_timeout(limit, mountprobe.mount_of, tmp_path / "missing")


SYMLINK_LOOP: List[Tuple[str, Callable[[Path], Any]]] = [
    ("is_mountpoint", mountprobe.is_mountpoint),
    ("is_mountpoint(bind=False)", lambda p: mountprobe.is_mountpoint(p, bind=False)),
    ("mount_of", mountprobe.mount_of),
    ("mount_at", mountprobe.mount_at),
    ("mount_root", mountprobe.mount_root),
    ("mounts_under", mountprobe.mounts_under),
    ("is_mounted", lambda p: mountprobe.is_mounted(p, source="/dev/null")),
    ("is_mounted(source=loop)", lambda p: mountprobe.is_mounted("/", source=p)),
]


@pytest.mark.parametrize("level", LEVELS)
@isolated
def test_a_symlink_loop_raises_eloop_naming_the_path(level: str, tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    if LEVELS[level]:
        fail_syscalls(LEVELS[level])
    probe.forget()
    for name, question in SYMLINK_LOOP:
        for path in (tmp_path / "a", tmp_path / "a" / "x", Path(f"{tmp_path}/a/")):
            with pytest.raises(OSError) as raised:
                question(path)
            assert raised.value.errno == errno.ELOOP, (name, path)
            assert raised.value.filename in (str(path), os.fsencode(path)), (name, raised.value)
    assert mountprobe.is_mountpoint(tmp_path / "a", follow_symlinks=False) is False


@pytest.mark.parametrize("level", LEVELS)
@isolated
def test_a_parent_the_caller_may_not_search_raises_permission_error(level: str, tmp_path: Path) -> None:
    if in_user_namespace():
        pytest.skip("needs real root to become uid 65534 without a user namespace")
    bind(tmp_path, "/srv")  # pytest's temporary directory is private to root
    locked = Path("/srv/locked")
    (locked / "inner").mkdir(parents=True)
    locked.chmod(0o700)
    for chain in api.CHAINS:  # load every module while root may read the interpreter's files
        api.strategies(chain)
    if LEVELS[level]:
        fail_syscalls(LEVELS[level])
    os.setgid(65534)
    os.setuid(65534)
    probe.forget()
    for label, question in SYMLINK_LOOP:
        for path in (locked / "inner", Path("/srv/locked/inner/")):
            with pytest.raises(PermissionError) as raised:
                question(path)
            assert raised.value.filename in (str(path), os.fsencode(path)), (label, raised.value)
    assert mountprobe.is_mountpoint(locked) is False  # the locked directory itself is visible
    assert [m.mountpoint for m in mountprobe.mounts_under("/srv")] == []


@pytest.mark.parametrize("level", LEVELS)
def test_as_a_user_without_privilege_an_unsearchable_parent_raises_permission_error(level: str, tmp_path: Path) -> None:
    for chain in api.CHAINS:  # load every module while this user may read the interpreter's files
        api.strategies(chain)
    # A directory nobody but a privileged process may search, made here rather than looked
    # for on the machine: mode 000, and as root the query becomes uid 65534 (not its owner).
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        if os.geteuid() != 0 and os.access(locked, os.X_OK):
            pytest.skip("this user may search a directory of mode 000 (a capability such as CAP_DAC_OVERRIDE)")
        limit = hang_deadline(forks=1, queries=len(SYMLINK_LOOP) * 2, floor=30)
        assert within(limit, _ask(locked), _nobody(level)) == []
    finally:
        locked.chmod(0o700)


def _ask(locked: Path) -> Callable[[], List[str]]:
    def ask() -> List[str]:
        wrong = []
        for label, question in SYMLINK_LOOP:
            for path in (Path(locked, "x"), Path(f"{locked}/x/")):
                try:
                    question(path)
                except PermissionError as exc:
                    if exc.filename not in (str(path), os.fsencode(path)):
                        wrong.append(f"{label}({path}): names {exc.filename!r}")
                except Exception as exc:
                    wrong.append(f"{label}({path}): {exc!r}")
                else:
                    wrong.append(f"{label}({path}): no error")
        return wrong

    return ask


def _nobody(level: str) -> Callable[[], None]:
    def setup() -> None:
        if os.geteuid() == 0:  # as root: become nobody, with no user namespace
            os.setgid(65534)
            os.setuid(65534)
        if LEVELS[level]:
            fail_syscalls(LEVELS[level])
        probe.forget()

    return setup
