"""The timeout arguments of the waits, ``Watcher.read`` and ``with_timeout`` (issue 15):
``inf`` and numbers too large for poll, epoll or select wait until the event, on real
mounts; nan, negatives and what is no number are clear errors naming the function and the
argument. And what ``with_timeout`` cannot send to its child or back is said as such."""

from __future__ import annotations

import math
import os
import signal
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
from _ns import MNT_DETACH, isolated, tmpfs, umount
from _oracle import unique_id
from _pace import hang_deadline
from _waiting import when_waiting

import mountprobe

NO_LIMIT = [math.inf, 1e300, 1e15, 2**31, 86400 * 365.0]


@pytest.mark.parametrize("timeout", NO_LIMIT)
@isolated
def test_wait_for_mount_with_no_practical_limit_returns_when_the_mount_comes(timeout: float, tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    pid = when_waiting(lambda: tmpfs(target, "awaited"))
    m = mountprobe.wait_for_mount(target, timeout=timeout)
    assert m.source == "awaited"
    if m.unique_id is not None:
        assert m.unique_id == unique_id(target)
    os.waitpid(pid, 0)


@pytest.mark.parametrize("timeout", NO_LIMIT)
@isolated
def test_wait_for_unmount_with_no_practical_limit_returns_when_the_mount_goes(timeout: float, tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    tmpfs(target, "lower")
    tmpfs(target, "upper")
    upper = mountprobe.mount_at(target)
    assert upper is not None
    pid = when_waiting(lambda: umount(target, MNT_DETACH))
    assert mountprobe.wait_for_unmount(upper, timeout=timeout) == upper
    os.waitpid(pid, 0)
    pid = when_waiting(lambda: umount(target))
    last = mountprobe.wait_for_unmount(target, timeout=timeout)
    assert last is not None and last.source == "lower"
    os.waitpid(pid, 0)


@pytest.mark.parametrize("backend", ["fanotify", "poll"])
@pytest.mark.parametrize("timeout", NO_LIMIT)
@isolated
def test_watcher_read_with_no_practical_limit_returns_the_event(timeout: float, backend: str, tmp_path: Path) -> None:
    try:
        w = mountprobe.watch(under=tmp_path, backend=backend)
    except mountprobe.Unsupported as exc:
        release = tuple(int("".join(c for c in part if c.isdigit()) or 0) for part in os.uname().release.split(".")[:2])
        if backend == "fanotify" and release < (6, 15):
            pytest.skip(f"fanotify mount marks need Linux 6.15 (this is {os.uname().release}): {exc}")
        raise
    with w:
        pid = when_waiting(lambda: tmpfs(tmp_path, "seen"))
        (e,) = w.read(timeout)
        assert e.action == "mount" and e.mount == mountprobe.mount_at(tmp_path)
        os.waitpid(pid, 0)


@pytest.mark.parametrize("timeout", NO_LIMIT)
def test_with_timeout_with_no_practical_limit_returns_the_answer(timeout: float) -> None:
    assert mountprobe.with_timeout(timeout, mountprobe.is_mountpoint, "/") is True


def _calls(tmp_path: Path) -> Dict[str, Callable[[Any], object]]:
    def read(timeout: Any) -> object:
        with mountprobe.watch(under=tmp_path, backend="poll") as w:
            return w.read(timeout)

    return {
        "wait_for_mount": lambda t: mountprobe.wait_for_mount(tmp_path / "never", timeout=t),
        "wait_for_unmount": lambda t: mountprobe.wait_for_unmount(tmp_path, timeout=t),
        "Watcher.read": read,
        "with_timeout": lambda t: mountprobe.with_timeout(t, mountprobe.is_mountpoint, tmp_path),
    }


BAD = [
    (math.nan, ValueError, "nan"),
    (-1, ValueError, "-1"),
    (-math.inf, ValueError, "-inf"),
    (-1e-9, ValueError, "-1e-09"),
    ("1", TypeError, "str '1'"),
    (b"1", TypeError, "bytes b'1'"),
    (True, TypeError, "bool True"),
    ([1], TypeError, "list"),
    (1j, TypeError, "complex"),
]


@pytest.mark.parametrize(("value", "error", "shown"), BAD, ids=[repr(b[0]) for b in BAD])
@isolated
def test_a_timeout_that_is_no_number_of_seconds_is_a_clear_error_naming_the_argument(
    value: object, error: type, shown: str, tmp_path: Path
) -> None:
    tmpfs(tmp_path, "there")
    for where, call in _calls(tmp_path).items():
        argument = "seconds" if where == "with_timeout" else "timeout"
        with pytest.raises(error) as raised:
            call(value)
        assert str(raised.value).startswith(f"{where}: {argument} must be"), raised.value
        assert shown in str(raised.value), raised.value


@isolated
def test_every_kind_of_number_of_seconds_is_a_timeout(tmp_path: Path) -> None:
    tmpfs(tmp_path, "there")
    calls = _calls(tmp_path)
    for value in (0, 0.0, -0.0, Fraction(1, 100), Decimal("0.01"), 0.01):
        with pytest.raises(TimeoutError):
            calls["wait_for_mount"](value)
        with pytest.raises(TimeoutError):
            calls["wait_for_unmount"](value)  # the tmpfs stays there
        assert calls["Watcher.read"](value) == []
    for value in (60, 60.0, Fraction(60), Decimal(60)):
        assert calls["with_timeout"](value) is True
    with mountprobe.watch(under=tmp_path, backend="poll") as w:
        assert w.read() == [] and w.read(0) == []


# -- what with_timeout cannot send --------------------------------------------------------


class TwoArguments(Exception):
    """Pickles, and cannot be unpickled: its ``__init__`` wants two arguments, its ``args``
    holds one (the message)."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


def raise_two_arguments() -> None:
    raise TwoArguments("here", "there")


def raise_holding_a_file() -> None:
    exc = RuntimeError("with a file")
    exc.file = sys.stdin  # type: ignore[attr-defined]
    raise exc


def _tests_importable_in_the_child() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))


@isolated
def test_with_timeout_of_print_prints_to_the_callers_stdout_and_returns_none(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sys.stdout.flush()
    saved = os.dup(1)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
    os.dup2(fd, 1)
    os.close(fd)
    try:
        assert mountprobe.with_timeout(hang_deadline(starts=1), print, "hello", "world") is None
        assert mountprobe.with_timeout(hang_deadline(starts=1), os.write, 1, b"raw\n") == 4
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    assert out.read_bytes() == b"hello world\nraw\n"
    os.close(1)  # no stdout at all: the answer still comes
    assert mountprobe.with_timeout(hang_deadline(starts=1), print, "lost") is None


def test_with_timeout_names_a_function_or_an_argument_that_cannot_be_sent() -> None:
    with pytest.raises(TypeError, match=r"with_timeout: <function .*<lambda>.* cannot be sent"):
        mountprobe.with_timeout(5, lambda: True)
    with pytest.raises(TypeError, match=r"with_timeout: .* cannot be sent"), open(os.devnull) as file:
        mountprobe.with_timeout(5, mountprobe.is_mountpoint, file)  # an argument
    with pytest.raises(TypeError, match=r"with_timeout: .*local.* cannot be sent"):

        def local() -> None:
            pass

        mountprobe.with_timeout(5, local)


def test_with_timeout_names_a_function_the_child_cannot_load() -> None:
    # This module is not importable in the child (no tests/ in its path).
    with pytest.raises(TypeError, match=r"raise_two_arguments cannot be loaded in the child.*test_timeouts"):
        mountprobe.with_timeout(60, raise_two_arguments)


def test_with_timeout_names_a_result_that_cannot_be_sent_back() -> None:
    with pytest.raises(TypeError, match=r"the result of open cannot be sent back: TextIOWrapper"):
        mountprobe.with_timeout(60, open, os.devnull)


@isolated
def test_with_timeout_says_which_exception_could_not_be_sent_back() -> None:
    _tests_importable_in_the_child()
    with pytest.raises(mountprobe.MountprobeError, match=r"raise_two_arguments raised TwoArguments: here: there"):
        mountprobe.with_timeout(60, raise_two_arguments)
    with pytest.raises(mountprobe.MountprobeError, match=r"raise_holding_a_file raised RuntimeError: with a file"):
        mountprobe.with_timeout(60, raise_holding_a_file)
    with pytest.raises(FileNotFoundError):  # one that travels is raised as itself
        mountprobe.with_timeout(60, mountprobe.mount_of, "/nonexistent/path")


def test_with_timeout_says_how_the_child_died() -> None:
    with pytest.raises(mountprobe.MountprobeError, match="_exit exited with status 3 before it answered"):
        mountprobe.with_timeout(60, os._exit, 3)
    with pytest.raises(mountprobe.MountprobeError, match="was killed by SIGKILL"):
        mountprobe.with_timeout(60, signal.raise_signal, signal.SIGKILL)
