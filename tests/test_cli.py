"""The command line against mountpoint(1) and findmnt on the same tree of real mounts: binds,
file binds, stacked mounts, names with spaces and non-UTF-8 bytes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import pytest
from _ns import in_user_namespace, isolated
from _oracle import fdinfo_mount_id
from _scenes import build

COMMANDS = ["is-mountpoint", "find", "list", "info", "doctor"]
COLUMNS = "TARGET,SOURCE,FSTYPE,OPTIONS,FSROOT,ID,PARENT,MAJ:MIN,PROPAGATION,VFS-OPTIONS,FS-OPTIONS"


def run(*args: str | bytes | os.PathLike[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "mountprobe", *args], capture_output=True, check=False)


def tool(name: str, *args: str | bytes | os.PathLike[str]) -> subprocess.CompletedProcess[bytes]:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return subprocess.run([path, *args], capture_output=True, check=False)


def utf8(path: bytes) -> bool:
    try:
        path.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\n" not in path and b"\t" not in path  # findmnt escapes those in JSON its own way


def only_error_line(result: subprocess.CompletedProcess[bytes]) -> None:
    lines = result.stderr.decode(errors="replace").splitlines()
    assert len(lines) == 1 and lines[0].startswith("mountprobe: "), result.stderr
    assert b"Traceback" not in result.stderr and result.returncode == 1


# Every path of the scene, byte for byte with util-linux: host only (a slow guest's
# 150 interpreter starts; the answers are checked in the guests by the library's tests).
@pytest.mark.host_only
@isolated
def test_is_mountpoint_answers_and_exits_like_mountpoint(tmp_path: Path) -> None:
    tree = build(tmp_path)
    for path in [*tree.every_path, tree.path("link"), b"/", b"/proc"]:
        for flags in ([], ["--nofollow"], ["-d"]):
            ours, theirs = run("is-mountpoint", *flags, path), tool("mountpoint", *flags, path)
            assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), (path, flags)
        assert run("is-mountpoint", "-q", path).returncode == tool("mountpoint", "-q", path).returncode
        assert run("is-mountpoint", "-q", path).stdout == b""
    assert run("is-mountpoint", "--no-bind", tree.path("samefs")).returncode == 32
    assert run("is-mountpoint", "--no-bind", tree.path("tmpfs")).returncode == 0


# Every path of the scene, byte for byte with util-linux: host only (a slow guest's
# 150 interpreter starts; the answers are checked in the guests by the library's tests).
@pytest.mark.host_only
@isolated
def test_find_gives_findmnts_target_entry(tmp_path: Path) -> None:
    tree = build(tmp_path)
    for path in [*tree.every_path, tree.path("tmpfs", "inner"), b"/"]:
        if not utf8(path):
            continue
        [ours] = json.loads(run("find", path, "-J", "-o", COLUMNS).stdout)["filesystems"]
        theirs = json.loads(tool("findmnt", "--target", path, "-J", "-o", COLUMNS).stdout)["filesystems"]
        # findmnt 2.38 prints every entry stacked at the target; the visible one is ours.
        visible = [e for e in theirs if e["id"] == fdinfo_mount_id(path)]
        assert ours == visible[0], path
        table = run("find", path).stdout.splitlines()
        assert table[0].split() == [b"TARGET", b"SOURCE", b"FSTYPE", b"OPTIONS"]


def nesting(rows: List[Dict[str, Any]], parent: int = 0) -> List[Tuple[int, int]]:
    out = []
    for row in rows:
        out.append((parent, row["id"]))
        out += nesting(row.get("children", []), row["id"])
    return out


@isolated
def test_list_matches_findmnt_flat_tree_and_submounts(tmp_path: Path) -> None:
    build(tmp_path)
    ours = json.loads(run("list", "-J", "-o", COLUMNS).stdout)["filesystems"]
    theirs = json.loads(tool("findmnt", "-l", "-J", "-o", COLUMNS).stdout.decode("utf-8", "replace"))["filesystems"]
    assert [r["id"] for r in ours] == [r["id"] for r in theirs]
    for mine, other in zip(ours, theirs):
        if utf8(os.fsencode(mine["target"])):
            assert mine == other
    tree = json.loads(run("list", "--tree", "-J", "-o", "TARGET,ID").stdout)["filesystems"]
    findmnt_tree = json.loads(tool("findmnt", "-J", "-o", "TARGET,ID").stdout.decode("utf-8", "replace"))
    assert sorted(nesting(tree)) == sorted(nesting(findmnt_tree["filesystems"]))
    under = json.loads(run("list", "--under", tmp_path, "-J", "-o", "ID").stdout)["filesystems"]
    submounts = json.loads(tool("findmnt", "-R", "-l", "-J", "-M", tmp_path, "-o", "ID").stdout)["filesystems"]
    assert sorted(r["id"] for r in under) == sorted(r["id"] for r in submounts)


@isolated
def test_tables_write_names_like_findmnt(tmp_path: Path) -> None:
    build(tmp_path)
    ours = run("list", "--under", tmp_path, "-o", "TARGET,SOURCE,FSROOT").stdout.splitlines()
    theirs = tool("findmnt", "-R", "-l", "-M", tmp_path, "-o", "TARGET,SOURCE,FSROOT").stdout.splitlines()
    assert sorted(line.split() for line in ours) == sorted(line.split() for line in theirs)


@isolated
def test_json_stays_valid_and_lossless_for_names_that_are_not_utf8(tmp_path: Path) -> None:
    tree = build(tmp_path)
    out = run("list", "--under", tree.path("names"), "-J")
    out.stdout.decode("utf-8")  # valid UTF-8, unlike findmnt's
    targets = {os.fsencode(r["target"]) for r in json.loads(out.stdout)["filesystems"]}
    assert {p for k, p in tree.mounts.items() if k.startswith("names/")} <= targets
    assert b"bad\xffbyte" in b"".join(targets)


@isolated
def test_info_prints_every_field(tmp_path: Path) -> None:
    tree = build(tmp_path)
    out = run("info", tree.path("otherfs")).stdout.decode()
    fields = dict(line.split(None, 1) for line in out.splitlines() if not line.startswith("answered"))
    assert fields["root"] == "/dir" and fields["fstype"] == "tmpfs" and fields["source"] == "othersrc"
    assert int(fields["id"]) == fdinfo_mount_id(tree.path("otherfs"))
    assert {"unique_id", "propagation", "devno", "super_options"} <= set(fields)


@pytest.mark.parametrize(
    "args",
    [
        ["is-mountpoint", "/nonexistent"],
        ["is-mountpoint", ""],
        ["is-mountpoint", "--bogus", "/"],
        ["is-mountpoint"],
        ["find", "/nonexistent"],
        ["find", ""],
        ["info", "/nonexistent/x"],
        ["list", "--under", "/nonexistent"],
        ["list", "-o", "BOGUS"],
        ["bogus"],
        ["list", "--bogus"],
        ["list", "-o"],
        ["list", "--tree=yes"],
        ["list", "extra"],
        ["find", "/", "/"],
        ["find"],
        ["doctor", "x"],
        [],
    ],
    ids=lambda a: " ".join(a) or "(nothing)",
)
def test_user_errors_give_one_line_and_status_1(args: Sequence[str]) -> None:
    only_error_line(run(*args))


def test_is_mountpoint_quiet_hides_even_errors() -> None:
    result = run("is-mountpoint", "-q", "/nonexistent")
    assert (result.returncode, result.stdout, result.stderr) == (1, b"", b"")


@isolated
def test_permission_denied_is_an_error_not_an_answer(tmp_path: Path) -> None:
    if in_user_namespace():
        pytest.skip("needs real root to run as another user")
    locked = tmp_path / "locked"
    (locked / "inside").mkdir(parents=True)
    locked.chmod(0o700)
    os.chmod(tmp_path, 0o755)
    import contextlib
    import io

    from mountprobe import cli

    cli.main(["is-mountpoint", "-q", "/"])  # load what the command needs while we may read it
    os.setgid(65534)
    os.setuid(65534)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = cli.main(["is-mountpoint", str(locked / "inside")])
    assert status == 1
    assert stderr.getvalue() == f"mountprobe: {locked / 'inside'}: Permission denied\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0 and b"usage: mountprobe" in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith(b"mountprobe 0.")


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    shell = subprocess.run(
        f"{sys.executable} -m mountprobe list | head -c 1 >/dev/null", shell=True, capture_output=True, check=False
    )
    assert b"Traceback" not in shell.stderr and shell.stderr == b""


@isolated
def test_the_fast_json_writer_writes_what_json_dumps_writes(tmp_path: Path) -> None:
    from mountprobe import list_mounts
    from mountprobe.cli import columns, formats

    build(tmp_path)
    mounts = list_mounts()
    odd = mounts[0]._replace(fstype="", root="", source=None, options=(), super_options=())  # empty cells: null
    mounts += [odd, odd._replace(mountpoint='/a \udcff\n"quoted"', source="", root="/sub")]
    for names in (columns.DEFAULT_COLUMNS, list(columns.COLUMNS)):
        shown = columns.parse(None, names)
        rows = [{c.key: c.json(m) for c in shown} for m in mounts]
        assert formats.filesystems(mounts, shown) == json.dumps({"filesystems": rows}, ensure_ascii=False, indent=3)
    assert formats.filesystems([], columns.parse(None, columns.DEFAULT_COLUMNS)) == json.dumps(
        {"filesystems": []}, indent=3
    )


def test_options_are_read_in_every_spelling_of_a_value() -> None:
    expected = run("find", "/", "-o", "TARGET,ID").stdout
    for spelling in (["-oTARGET,ID", "/"], ["--output=TARGET,ID", "/"], ["--output", "TARGET,ID", "--", "/"]):
        assert run("find", *spelling).stdout == expected, spelling
    assert json.loads(run("list", "--json", "--under=/", "-o", "ID").stdout)["filesystems"]
