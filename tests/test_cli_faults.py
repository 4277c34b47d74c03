"""Every failure of every command is one line on stderr and exit 1: errors of the library, a
full disk or a closed pipe on stdout, a closed stdout, bad timeouts, odd paths and arguments,
and a bug in mountprobe itself. Each command runs as a program, as a user runs it, with the
signal dispositions it inherits set here explicitly (never the test runner's own)."""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import pytest
from _ns import MNT_DETACH, bind, isolated, tmpfs, umount
from _pace import hang_deadline
from _seccomp import fail_syscalls

Arg = Union[str, bytes, "os.PathLike[str]"]


def _deadline() -> float:
    """Of one command, only to catch a hang (tests/_pace.py)."""
    return hang_deadline(starts=1, floor=60)


# Python writes stdout through a buffer unless PYTHONUNBUFFERED is set (as it may be where the
# tests run): both ways, since a buffered write fails only at the flush, after the command.
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
UNBUFFERED = {**BUFFERED, "PYTHONUNBUFFERED": "1"}
ENVS = {"buffered": BUFFERED, "unbuffered": UNBUFFERED}
FULL = "mountprobe: write error on standard output: No space left on device\n"
# A caller that runs the command in its own process, with SIGPIPE ignored (as a service under
# systemd's default IgnoreSIGPIPE=yes, or any Python program, has it).
IGNORING_SIGPIPE = (
    "import signal, sys; signal.signal(signal.SIGPIPE, signal.SIG_IGN); "
    "from mountprobe.cli import main; sys.exit(main(sys.argv[1:]))"
)
# Commands that print something wherever the tests run (a namespace of their own or not).
PRINTING = [
    ["is-mountpoint", "/"],
    ["is-mountpoint", "-d", "/"],
    ["find", "/"],
    ["list"],
    ["list", "-J"],
    ["list", "--tree"],
    ["info", "/"],
    ["namespaces"],
    ["namespaces", "-J"],
    ["holders", "/"],
    ["holders", "-J", "/"],
    ["doctor"],
    ["--help"],
    ["--version"],
    ["list", "--help"],
    ["is-mountpoint", "--help"],
]


def _ids(args: Sequence[str]) -> str:
    return " ".join(repr(a) if not a or " " in a else a for a in args) or "(nothing)"


def _prepare(sigpipe: signal.Handlers, then: Optional[Callable[[], None]]) -> Callable[[], None]:
    def preexec() -> None:
        signal.signal(signal.SIGPIPE, sigpipe)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if then is not None:
            then()

    return preexec


def command(
    *args: Arg,
    stdout: Union[int, None] = subprocess.PIPE,
    env: Optional[Dict[str, str]] = None,
    sigpipe: signal.Handlers = signal.SIG_DFL,
    then: Optional[Callable[[], None]] = None,
    program: Sequence[str] = ("-m", "mountprobe"),
) -> subprocess.CompletedProcess[bytes]:
    """``mountprobe ARGS`` as a program (SIGPIPE and SIGINT as given, whatever pytest has),
    run in the child after ``then``; a deadline only to catch a hang."""
    return subprocess.run(
        [sys.executable, *program, *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env or BUFFERED,
        preexec_fn=_prepare(sigpipe, then),
        timeout=_deadline(),
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[bytes], *words: str) -> str:
    """The command failed with exit 1 and one line on stderr, which contains ``words``."""
    text = result.stderr.decode("utf-8", "replace")
    lines = text.splitlines()
    assert len(lines) == 1 and text.endswith("\n") and lines[0].startswith("mountprobe: "), text
    assert "Traceback" not in text and "Exception ignored" not in text and ": :" not in text, text
    assert result.returncode == 1, (result.returncode, text)
    for word in words:
        assert word in lines[0], (word, text)
    return lines[0]


@functools.cache
def prints(args: Sequence[str], env: str) -> bool:
    """Whether ``mountprobe ARGS`` prints something here (namespaces and holders need psutil
    and processes they may look at)."""
    return args[0] not in ("namespaces", "holders") or bool(command(*args, env=ENVS[env]).stdout)


def closed_pipe() -> int:
    """The write end of a pipe whose reader has gone: any write gets SIGPIPE or EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


@pytest.mark.parametrize("env", ENVS, ids=str)
@pytest.mark.parametrize("args", PRINTING, ids=_ids)
def test_every_command_writing_to_a_full_disk_says_so_in_one_line_and_exits_1(args: List[str], env: str) -> None:
    if not prints(tuple(args), env):
        pytest.skip(f"{_ids(args)} prints nothing here")
    with open("/dev/full", "wb") as full:
        result = command(*args, stdout=full.fileno(), env=ENVS[env])
    one_line(result)
    assert result.stderr.decode() == FULL


@pytest.mark.parametrize("inherited", [signal.SIG_DFL, signal.SIG_IGN], ids=["SIGPIPE-default", "SIGPIPE-ignored"])
@pytest.mark.parametrize("args", PRINTING, ids=_ids)
def test_a_closed_pipe_ends_the_program_by_sigpipe_whatever_it_inherited(
    args: List[str], inherited: signal.Handlers
) -> None:
    if not prints(tuple(args), "buffered"):
        pytest.skip(f"{_ids(args)} prints nothing here")
    # CPython ignores SIGPIPE before any Python code runs, so the program cannot see what it
    # inherited: it restores the default of every program and ends by the signal, as
    # `mountprobe list | head` must (141 from a shell, like coreutils).
    pipe = closed_pipe()
    try:
        result = command(*args, stdout=pipe, sigpipe=inherited)
    finally:
        os.close(pipe)
    assert (result.returncode, result.stderr) == (-signal.SIGPIPE, b""), result.stderr.decode()


@pytest.mark.parametrize("env", ENVS, ids=str)
@pytest.mark.parametrize("args", PRINTING, ids=_ids)
def test_a_closed_pipe_in_a_process_ignoring_sigpipe_is_a_one_line_write_error(args: List[str], env: str) -> None:
    if not prints(tuple(args), env):
        pytest.skip(f"{_ids(args)} prints nothing here")
    pipe = closed_pipe()
    try:
        result = command(*args, stdout=pipe, env=ENVS[env], program=("-c", IGNORING_SIGPIPE))
    finally:
        os.close(pipe)
    assert result.stderr.decode() == "mountprobe: write error on standard output: Broken pipe\n"
    one_line(result)


@pytest.mark.parametrize("args", [["list"], ["is-mountpoint", "/"], ["find", "/"], ["--help"], ["doctor"]], ids=_ids)
def test_a_closed_standard_output_is_a_one_line_write_error(args: List[str]) -> None:
    result = command(*args, then=lambda: os.close(1))
    assert result.stderr.decode() == "mountprobe: write error on standard output: Bad file descriptor\n"
    one_line(result)


def test_is_mountpoint_quiet_with_stdout_closed_or_full_prints_nothing_and_answers() -> None:
    assert command("is-mountpoint", "-q", "/", then=lambda: os.close(1)).returncode == 0
    with open("/dev/full", "wb") as full:
        result = command("is-mountpoint", "-q", "/", stdout=full.fileno())
    assert (result.returncode, result.stderr) == (0, b"")


ALL_SYSCALLS = {name: errno.EPERM for name in ("statx", "openat2", "name_to_handle_at", "statmount", "listmount")}


@isolated
def test_without_proc_and_syscalls_every_command_fails_in_one_line_and_quiet_prints_nothing(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    tmpfs("/proc", "no-proc")  # this namespace's /proc, hidden: nothing is left to ask

    def blocked(*args: Arg) -> subprocess.CompletedProcess[bytes]:
        return command(*args, then=lambda: fail_syscalls(ALL_SYSCALLS))

    for args in (
        ["is-mountpoint", plain],
        ["is-mountpoint", "--no-bind", plain],
        ["is-mountpoint", "-d", tmp_path],
        ["find", plain],
        ["info", plain],
        ["list"],
        ["list", "--under", tmp_path],
        ["holders", plain],
        ["watch", "--under", tmp_path, "--timeout", "1"],
    ):
        one_line(blocked(*args))
    quiet = blocked("is-mountpoint", "-q", plain)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (1, b"", b"")
    namespaces = blocked("namespaces")
    if namespaces.returncode == 0:  # the caller's own namespace, through a pidfd (6.11), with a warning
        lines = namespaces.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mountprobe: warning: "), lines
        assert namespaces.stdout.startswith(b"NS ")
    else:
        one_line(namespaces)
    doctor = blocked("doctor")  # its report, on stdout, says what fails
    assert (doctor.returncode, doctor.stderr) == (1, b"") and b"ERROR" in doctor.stdout


PLANTED_BUG = (
    "import sys, mountprobe.api as api\n"
    "def bug(*args, **kwargs): raise KeyError('planted')\n"
    "api.mount_of = api.is_mountpoint = bug\n"
    "from mountprobe.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize("args", [["find", "/"], ["info", "/"], ["is-mountpoint", "/"]], ids=_ids)
def test_a_bug_in_mountprobe_is_one_line_naming_the_exception_and_its_traceback_on_request(args: List[str]) -> None:
    result = command(*args, program=("-c", PLANTED_BUG))
    assert one_line(result) == "mountprobe: internal error: KeyError: 'planted' (MOUNTPROBE_TRACEBACK=1 shows where)"
    shown = command(*args, program=("-c", PLANTED_BUG), env={**BUFFERED, "MOUNTPROBE_TRACEBACK": "1"})
    text = shown.stderr.decode()
    assert shown.returncode == 1 and text.startswith("Traceback") and 'File "<string>", line 2, in bug' in text, text
    assert text.endswith("mountprobe: internal error: KeyError: 'planted'\n"), text


def test_a_bug_under_is_mountpoint_quiet_prints_nothing() -> None:
    result = command("is-mountpoint", "-q", "/", program=("-c", PLANTED_BUG))
    assert (result.returncode, result.stdout, result.stderr) == (1, b"", b"")


@pytest.mark.parametrize("timeout", ["nan", "-nan", "-1", "-0.5", "-inf", "abc", "", "1e15x", "0x10"], ids=repr)
def test_watch_timeouts_that_are_not_seconds_are_one_line_errors(timeout: str) -> None:
    one_line(command("watch", "--timeout", timeout), "--timeout", repr(timeout))


@isolated
def test_watch_timeouts_of_inf_and_beyond_any_clock_wait_for_the_event(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    for timeout in ("inf", "1e15", "1e300", "1e400"):
        watch = subprocess.Popen(
            [sys.executable, "-m", "mountprobe", "watch", "-J", "--first-only", "--under", str(tmp_path)]
            + ["--timeout", timeout],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_prepare(signal.SIG_DFL, None),
        )
        until, mounted = time.monotonic() + _deadline(), False
        while watch.poll() is None and time.monotonic() < until:  # until the command is up and sees one
            if mounted:
                umount(target, MNT_DETACH)
            else:
                tmpfs(target, "seen")
            mounted = not mounted
            time.sleep(0.2)  # each state lasts: the poll watcher compares tables
        if watch.poll() is None:
            watch.kill()
        if mounted:
            umount(target)
        out, err = watch.communicate()
        assert (watch.returncode, err) == (0, b""), (timeout, err.decode())
        (line,) = out.splitlines()
        assert json.loads(line)["action"] in ("mount", "umount"), timeout


def mountpoint(*args: Arg) -> subprocess.CompletedProcess[bytes]:
    path = shutil.which("mountpoint")
    if path is None:
        pytest.skip("mountpoint(1) is not installed")
    return subprocess.run([path, *args], capture_output=True, timeout=_deadline(), check=False)


def same_as_mountpoint(*args: Arg) -> None:
    ours, theirs = command("is-mountpoint", *args), mountpoint(*args)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), args
    if theirs.returncode == 1:  # an error: theirs names the path as ours does
        assert ours.stderr.replace(b"mountprobe: ", b"mountpoint: ") == theirs.stderr, args


@isolated
def test_a_fifo_or_a_file_where_a_directory_may_stand_is_answered_without_blocking(tmp_path: Path) -> None:
    fifo, file, bound = tmp_path / "fifo", tmp_path / "file", tmp_path / "bound-fifo"
    os.mkfifo(fifo)
    os.mkfifo(bound)
    file.write_bytes(b"data")
    bind(file, bound)  # a file mounted on a FIFO: a mount point that is no directory
    for path in (fifo, file, bound):
        same_as_mountpoint(path)
        same_as_mountpoint("--nofollow", path)
        found = command("find", path, "-o", "TARGET")
        assert (found.returncode, found.stderr) == (0, b""), found.stderr
        assert found.stdout.split()[1] == os.fsencode(bound if path == bound else tmp_path)
        asks: List[List[Arg]] = [["info", path], ["holders", path]]
        for args in asks:
            done = command(*args)
            assert (done.returncode, done.stderr) == (0, b""), (args, done.stderr)
        listed = command("list", "--under", path, "-o", "TARGET")  # like findmnt -R: 1 when none is below
        assert (listed.returncode, listed.stderr) == (0 if path == bound else 1, b""), listed.stderr
        assert listed.stdout.split()[1:] == ([os.fsencode(bound)] if path == bound else []), path
        quiet = command("watch", "--under", path, "--timeout", "0.3")
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (1, b"", b"")


@isolated
def test_a_trailing_slash_means_a_directory_for_every_command(tmp_path: Path) -> None:
    file, mounted = tmp_path / "file", tmp_path / "mounted"
    file.write_bytes(b"")
    mounted.mkdir()
    tmpfs(mounted, "slash")
    slashed = os.fsencode(file) + b"/"
    same_as_mountpoint(slashed)
    for command_name in (["find"], ["info"], ["list", "--under"], ["holders"]):
        one_line(command(*command_name, slashed), os.fsdecode(slashed), "Not a directory")
    one_line(command("watch", "--under", slashed, "--timeout", "1"), os.fsdecode(slashed), "Not a directory")
    for spelling in (os.fsencode(mounted) + b"/", os.fsencode(mounted) + b"//", os.fsencode(mounted) + b"/."):
        same_as_mountpoint(spelling)
        for words in (["find", "-o", "TARGET,ID"], ["info"], ["list", "-o", "TARGET,ID", "--under"]):
            assert command(*words, spelling).stdout == command(*words, mounted).stdout, (words, spelling)


@pytest.mark.parametrize(
    "args",
    [
        [""],
        ["is-mountpoint", ""],
        ["find", ""],
        ["info", ""],
        ["holders", ""],
        ["list", "--under", ""],
        ["list", "--under="],
        ["watch", "--under", "", "--timeout", "1"],
        ["list", "-o", ""],
        ["list", "-o", ","],
        ["list", "--output="],
        ["find", "/", "-o", ""],
        ["holders", "/", "-o", ""],
        ["watch", "-o", "", "--timeout", "1"],
        ["watch", "-o", ",", "--timeout", "1"],
        ["watch", "--timeout", ""],
        ["watch", "--action", ""],
        ["watch", "--action", ","],
        ["find", "-N", "", "/"],
        ["list", "-N", ""],
        ["find", "/no\nsuch"],
        ["is-mountpoint", "/no\nsuch"],
    ],
    ids=_ids,
)
def test_empty_and_odd_arguments_are_one_line_errors(args: List[str]) -> None:
    one_line(command(*args))


@pytest.mark.parametrize(
    "args",
    [
        *(
            [name, option]
            for name in ("find", "list", "info", "namespaces", "holders", "watch", "doctor")
            for option in ("--bogus", "-x", "--json=yes", "-")
        ),
        ["is-mountpoint", "--bogus", "/"],
        ["is-mountpoint", "-z", "/"],
        ["is-mountpoint", "-q", "--bogus", "/"],
        ["list", "--tree=1"],
        ["list", "--under"],
        ["watch", "--timeout"],
        ["find", "-N"],
        ["find", "-o"],
        ["--bogus"],
        ["-x"],
        ["--version=1"],
    ],
    ids=_ids,
)
def test_unknown_or_incomplete_options_are_one_line_errors(args: List[str]) -> None:
    result = command(*args)
    one_line(result)
    assert result.stdout == b""


def test_a_double_dash_ends_the_options_of_every_command() -> None:
    assert command("find", "--", "/").stdout == command("find", "/").stdout != b""
    assert command("info", "--", "/").stdout == command("info", "/").stdout != b""
    assert (
        command("list", "-o", "ID", "--under", "/proc", "--").stdout
        == command("list", "-o", "ID", "--under", "/proc").stdout
    )
    one_line(command("find", "--", "-J"), "-J: No such file or directory")
    one_line(command("list", "--", "--tree"), "unexpected argument '--tree'")
    same_as_mountpoint("--", "/proc")
    same_as_mountpoint("-q", "--", "/proc")
    same_as_mountpoint("--", "-q")
    one_line(command("is-mountpoint", "--", "-q"), "-q: No such file or directory")
    one_line(command("is-mountpoint", "--", "/", "/"), "expected one PATH")
