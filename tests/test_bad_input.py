"""Bad input, table-driven: every public function and every command meets each bad input (the rows
of _errors, _follow_only_errors and _spellings below) with its documented outcome. Errors raise
the standard exception (never False), equivalent spellings give the canonical path's answer,
and commands exit 1 with one line on stderr and no traceback. (No function takes a pid yet: the
"exited pid" row belongs to the namespace work, issue 8.)"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple, Type, Union

import pytest
from _ns import isolated, tmpfs
from _pace import hang_deadline

import mountprobe

PathIn = Union[str, bytes, Path]
FUNCTIONS: Dict[str, Callable[[PathIn], Any]] = {
    "is_mountpoint": mountprobe.is_mountpoint,
    "is_mountpoint(bind=False)": lambda p: mountprobe.is_mountpoint(p, bind=False),
    "is_mountpoint(nofollow)": lambda p: mountprobe.is_mountpoint(p, follow_symlinks=False),
    "mount_of": mountprobe.mount_of,
    "mount_of(nofollow)": lambda p: mountprobe.mount_of(p, follow_symlinks=False),
    "mount_at": mountprobe.mount_at,
    "mount_root": mountprobe.mount_root,
    "mounts_under": mountprobe.mounts_under,
    "is_mounted": lambda p: mountprobe.is_mounted(p, fstype="tmpfs"),
    "with_timeout(is_mountpoint)": lambda p: mountprobe.with_timeout(
        hang_deadline(starts=1), mountprobe.is_mountpoint, p
    ),
}
NOFOLLOW = ("is_mountpoint(nofollow)", "mount_of(nofollow)")
COMMANDS = [["is-mountpoint"], ["is-mountpoint", "--nofollow"], ["find"], ["info"], ["list", "--under"]]


def _scene(base: Path) -> None:
    (base / "mnt").mkdir()
    tmpfs(base / "mnt", "bad-input")
    (base / "dir" / "sub").mkdir(parents=True)
    (base / "file").write_bytes(b"")
    (base / "dangling").symlink_to(base / "nowhere")
    (base / "loop").symlink_to("loop")
    (base / "to-mnt").symlink_to(base / "mnt")
    os.mkdir(os.fsencode(base) + b"/\xff name")
    tmpfs(os.fsencode(base) + b"/\xff name", "non-utf8")


def _errors(base: Path) -> List[Tuple[str, PathIn, Type[BaseException], int]]:
    """(row, path, exception, errno or 0) for the inputs that must raise, whatever the function."""
    b = os.fsencode(base)
    return [
        ("1 missing path", base / "missing", FileNotFoundError, errno.ENOENT),
        ("1 missing component", base / "missing" / "x", FileNotFoundError, errno.ENOENT),
        ("2 empty string", "", ValueError, 0),
        ("2 empty bytes", b"", ValueError, 0),
        ("2 embedded NUL", f"{base}/mnt\0x", ValueError, 0),
        ("3 file/", b + b"/file/", NotADirectoryError, errno.ENOTDIR),
        ("3 file as a directory", base / "file" / "x", NotADirectoryError, errno.ENOTDIR),
        ("5 dangling symlink/", b + b"/dangling/", FileNotFoundError, errno.ENOENT),
        ("loop below", base / "loop" / "x", OSError, errno.ELOOP),
        ("loop/", b + b"/loop/", OSError, errno.ELOOP),
        ("7 longer than PATH_MAX", b + b"/dir" + b"/sub/.." * 700, OSError, errno.ENAMETOOLONG),
        ("7 longer than PATH_MAX, trailing /.", b + b"/dir" + b"/." * 2100, OSError, errno.ENAMETOOLONG),
        ("7 component longer than NAME_MAX", b + b"/" + b"x" * 300, OSError, errno.ENAMETOOLONG),
    ]


def _follow_only_errors(base: Path) -> List[Tuple[str, PathIn, Type[BaseException], int]]:
    """Inputs that raise when the last symlink is followed, and are examined as links when not."""
    return [
        ("5 dangling symlink", base / "dangling", FileNotFoundError, errno.ENOENT),
        ("symlink loop", base / "loop", OSError, errno.ELOOP),
    ]


def _spellings(base: Path) -> List[Tuple[str, PathIn, PathIn]]:
    """(row, spelling, canonical path): the answers must be the canonical path's."""
    b = os.fsencode(base)
    depth = b.count(b"/")
    return [
        ("7 trailing /", b + b"/mnt/", base / "mnt"),
        ("7 trailing /.", b + b"/mnt/.", base / "mnt"),
        ("7 trailing //", b + b"/mnt//", base / "mnt"),
        ("7 dir/..", b + b"/dir/../mnt", base / "mnt"),
        ("7 trailing /..", b + b"/mnt/sub/..", base / "mnt"),
        ("7 //", b"/" + b + b"//mnt", base / "mnt"),
        ("7 /../../", b"/../.." + b + b"/mnt", base / "mnt"),
        ("7 long ../ chain", b"/" + b"../" * (depth + 20) + b[1:] + b"/mnt", base / "mnt"),
        ("7 relative", b"mnt", base / "mnt"),
        ("7 .", b".", base),
        ("7 ..", b"..", base.parent),
        ("8 str non-UTF-8", os.fsdecode(b + b"/\xff name"), b + b"/\xff name"),
        ("8 PathLike non-UTF-8", Path(os.fsdecode(b + b"/\xff name")), b + b"/\xff name"),
        ("6 symlink to a mount point", base / "to-mnt", base / "mnt"),
    ]


def _outcome(function: Callable[[PathIn], Any], path: PathIn) -> Any:
    try:
        return ("value", function(path))
    except Exception as exc:
        return ("raised", type(exc), getattr(exc, "errno", None))


@isolated
def test_every_function_raises_the_standard_exception_for_each_bad_input(tmp_path: Path) -> None:
    _scene(tmp_path)
    (tmp_path / "mnt" / "sub").mkdir()
    wrong = []
    rows = _errors(tmp_path) + _follow_only_errors(tmp_path)
    for name, function in FUNCTIONS.items():
        for row, path, exception, err in rows:
            if name in NOFOLLOW and (row, path, exception, err) in _follow_only_errors(tmp_path):
                continue
            got = _outcome(function, path)
            if got[0] != "raised" or not issubclass(got[1], exception) or (err and got[2] != err):
                wrong.append(f"{name} / {row}: {got}, wanted {exception.__name__} {errno.errorcode.get(err, '')}")
    assert not wrong, "\n".join(wrong)


@isolated
def test_not_following_a_dangling_link_or_a_loop_examines_the_link_itself(tmp_path: Path) -> None:
    _scene(tmp_path)
    for name in ("dangling", "loop", "to-mnt"):
        assert mountprobe.is_mountpoint(tmp_path / name, follow_symlinks=False) is False
        assert mountprobe.mount_of(tmp_path / name, follow_symlinks=False) == mountprobe.mount_of(tmp_path)
    assert mountprobe.is_mountpoint(tmp_path / "to-mnt") is True


@isolated
def test_every_equivalent_spelling_gives_the_canonical_paths_answer(tmp_path: Path) -> None:
    _scene(tmp_path)
    (tmp_path / "mnt" / "sub").mkdir()
    os.chdir(tmp_path)
    wrong = []
    for name, function in FUNCTIONS.items():
        for row, spelling, canonical in _spellings(tmp_path):
            if name in NOFOLLOW and row.startswith("6"):
                continue  # not following: the link itself is examined (test above)
            if _outcome(function, spelling) != _outcome(function, canonical):
                wrong.append(f"{name} / {row}: {_outcome(function, spelling)} != {_outcome(function, canonical)}")
    assert not wrong, "\n".join(wrong)
    assert (
        mountprobe.mount_at(os.fsencode(tmp_path) + b"/\xff name").mountpoint.encode(  # type: ignore[union-attr]
            "utf-8", "surrogateescape"
        )
        == os.fsencode(tmp_path) + b"/\xff name"
    )


def test_still_mounted_and_the_parser_refuse_what_is_not_theirs() -> None:
    with pytest.raises((TypeError, AttributeError)):
        mountprobe.still_mounted("/proc")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mountprobe.parse_mountinfo("text, not bytes")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        mountprobe.read_mountinfo("/proc/999999999/mountinfo")
    with pytest.raises(TypeError):
        mountprobe.with_timeout(5, lambda: True)  # a lambda cannot be sent to the child


@isolated
def test_every_command_exits_1_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    _scene(tmp_path)
    b = os.fsencode(tmp_path)
    bad = {
        "missing": b + b"/missing",
        "empty": b"",
        "file/": b + b"/file/",
        "loop": b + b"/loop",
        "too long": b + b"/dir" + b"/." * 2100,
    }
    wrong = []
    for command in COMMANDS:
        for row, path in bad.items():
            if "--nofollow" in command and row == "loop":
                continue
            done = subprocess.run(
                [sys.executable, "-m", "mountprobe", *command, path], capture_output=True, check=False
            )
            lines = done.stderr.decode(errors="replace").splitlines()
            if done.returncode != 1 or len(lines) != 1 or b"Traceback" in done.stderr or done.stdout:
                wrong.append(f"{command} {row}: exit {done.returncode}, stderr {done.stderr!r}")
            elif row == "missing" and not lines[0].endswith("No such file or directory"):
                wrong.append(f"{command} {row}: {lines[0]}")
        quiet = subprocess.run(
            [sys.executable, "-m", "mountprobe", "is-mountpoint", "-q", b + b"/missing"], capture_output=True
        )
        if quiet.returncode != 1 or quiet.stderr or quiet.stdout:
            wrong.append(f"is-mountpoint -q missing: {quiet}")
    assert not wrong, "\n".join(wrong)
