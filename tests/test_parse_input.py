"""What ``read_mountinfo`` and ``parse_mountinfo`` accept (issue 15, fault 8): paths only for
the reader, and only regular files behind them (procfs files are regular); bytes-like data
only for the parser. Anything else is a clear TypeError, ValueError or OSError, before a
byte is read or allocated, and no descriptor of the caller is read, moved or closed."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Callable, List, Tuple, Union

import pytest
from _ns import isolated_for, tmpfs
from _oracle import table

import mountprobe

HANG_GUARD = 30.0  # a FIFO blocks open() for ever: @isolated kills the test at this deadline


def _own_table() -> bytes:
    with open("/proc/thread-self/mountinfo", "rb") as f:
        return f.read()


@isolated_for(HANG_GUARD)
def test_reading_a_path_of_every_spelling_gives_the_table_the_kernel_writes(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    tmpfs(tmp_path / "m", "spelled")
    expected = _own_table()
    name = "/proc/thread-self/mountinfo"
    for spelling in (name, os.fsencode(name), Path(name)):
        assert mountprobe.read_mountinfo(spelling) == expected, spelling
        assert mountprobe.read_mountinfo(spelling, consistent=True) == expected
    got = {m.mountpoint: m.id for m in mountprobe.parse_mountinfo(mountprobe.read_mountinfo(b"/proc/self/mountinfo"))}
    assert got == {e.mountpoint: e.id for e in table()}
    copy = tmp_path / "copy"
    copy.write_bytes(expected)
    assert mountprobe.read_mountinfo(str(copy)) == expected  # a saved table is a regular file too


@isolated_for(HANG_GUARD)
def test_a_fifo_socket_device_or_directory_is_refused_without_blocking_or_reading(tmp_path: Path) -> None:
    import socket

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    read_end, write_end = os.pipe()
    try:
        wrong: List[str] = []
        rows: List[Tuple[Union[str, Path], str]] = [
            (fifo, "FIFO"),
            (f"/proc/self/fd/{read_end}", "FIFO"),  # a pipe, named through its magic link
            (sock_path, "socket"),
            ("/dev/null", "character device"),
            ("/dev/zero", "character device"),  # would allocate for ever if read
            (tmp_path, "directory"),
        ]
        for path, kind in rows:
            try:
                mountprobe.read_mountinfo(path)
            except OSError as exc:
                if kind not in str(exc) or exc.filename != os.fspath(path):
                    wrong.append(f"{path}: {exc!r} does not name the {kind} and the path")
                if kind == "directory" and exc.errno != errno.EISDIR:
                    wrong.append(f"{path}: errno {exc.errno}")
            else:
                wrong.append(f"{path}: read")
        assert not wrong, wrong
        os.write(write_end, b"not for the library")
        assert os.read(read_end, 100) == b"not for the library"  # nothing was taken from the pipe
    finally:
        server.close()
        os.close(read_end)
        os.close(write_end)


@isolated_for(HANG_GUARD)  # a pipe read to its end blocks while its writer is open
def test_descriptors_are_refused_and_never_read_or_closed() -> None:
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"caller's data")
        for fd in (read_end, 0, 1, 2):
            with pytest.raises(TypeError, match="descriptor"):
                mountprobe.read_mountinfo(fd)  # type: ignore[arg-type]
        for value in (True, False, 1.5, ["/proc/self/mountinfo"]):
            with pytest.raises(TypeError):
                mountprobe.read_mountinfo(value)  # type: ignore[arg-type]
        os.fstat(1)  # stdout is still open
        assert os.read(read_end, 100) == b"caller's data"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_an_empty_path_is_a_value_error_not_the_callers_own_table() -> None:
    for empty in ("", b""):
        with pytest.raises(ValueError, match="empty"):
            mountprobe.read_mountinfo(empty)
    with pytest.raises(ValueError):
        mountprobe.read_mountinfo("/proc/self/mountinfo\0x")


@isolated_for(HANG_GUARD)  # 10**9 zero bytes would be allocated, then parsed
def test_the_parser_takes_bytes_like_data_only_and_rejects_ints_before_allocating() -> None:
    line = b"20 1 0:19 / /m rw - tmpfs tmpfs rw\n"
    expected = mountprobe.parse_mountinfo(line)
    assert len(expected) == 1
    for same in (bytearray(line), memoryview(line)):
        assert mountprobe.parse_mountinfo(same) == expected  # type: ignore[arg-type]
    rejected: List[Any] = [5, 0, 10**9, True, None, 1.0, "20 1 0:19 / /m rw - tmpfs tmpfs rw", [50, 48], iter(b"20")]
    for value in rejected:
        with pytest.raises(TypeError, match="bytes"):
            mountprobe.parse_mountinfo(value)
        with pytest.raises(TypeError, match="bytes"):
            mountprobe.parse_mountinfo(value, strict=True)


@isolated_for(HANG_GUARD)
def test_an_open_mountinfo_tells_whether_a_mount_came_or_went_since_it_was_opened(tmp_path: Path) -> None:
    from _ns import MS_MOVE, mount, umount

    from mountprobe import mountinfo

    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    changes: List[Callable[[], None]] = [
        lambda: tmpfs(tmp_path / "a", "a"),
        lambda: mount(tmp_path / "a", tmp_path / "b", None, MS_MOVE),
        lambda: umount(tmp_path / "b"),
    ]
    for change in changes:
        file, _ = mountinfo.open_mountinfo()
        with file:
            file.readall()
            assert mountinfo.changed_since_open(file) is False
            change()
            assert mountinfo.changed_since_open(file) is True
            assert mountinfo.changed_since_open(file) is False  # asked again: since the last poll
