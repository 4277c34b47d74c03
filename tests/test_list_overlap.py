"""A table of thousands of mounts is parsed while another CPU reads it (``mountprobe._overlap``):
``list_mounts`` gives the records of one whole read, names with escapes and bytes that are not
UTF-8 included, with the unique ids listmount gives; where the copy or its memfd is refused
(a seccomp filter installed late) or the process may use one CPU only, the table is read as
before, with the same records. Checked against the kernel's own: the live mountinfo read by
the independent reader of tests/_oracle.py and a raw listmount."""

from __future__ import annotations

import errno
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

import _oracle
import pytest
from _ns import isolated, tmpfs
from _scenes import NASTY_NAMES
from _seccomp import fail_syscalls

import mountprobe
from mountprobe import _overlap, probe

COUNT = _overlap.MIN_MOUNTS + 200


def _needs_the_overlap() -> None:
    caps = mountprobe.capabilities()
    if not (caps.listmount.usable and caps.statmount.usable):
        pytest.skip(f"the overlap counts the mounts with listmount (Linux 6.8) first: {caps.listmount}")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("the overlap needs a second CPU, and this process may use one")


def _mount_many(base: Path) -> None:
    tmpfs(base, "overlap-base")
    for i in range(COUNT):
        path = os.fsencode(base) + b"/" + NASTY_NAMES[i % len(NASTY_NAMES)] + b"%d" % i
        os.mkdir(path)
        tmpfs(path, f"src {i}\\{i}")  # a source of its own, with a space and a backslash


class _Spy:
    """What ``_overlap`` did in this forked child: ``starts``, one entry per call of
    ``start`` (True where a copy began), and ``copies``, one per copy that ended (None where
    it copied the whole file, else what stopped it)."""

    def __init__(self) -> None:
        self.starts: List[bool] = []
        self.copies: List[Optional[BaseException]] = []
        start, copy = _overlap.start, _overlap._copy

        def spied_start(file: Any) -> Any:
            arrival = start(file)
            self.starts.append(arrival is not None)
            return arrival

        def spied_copy(out: int, source: int, outcome: List[BaseException]) -> None:
            try:
                copy(out, source, outcome)
            finally:
                self.copies.append(outcome[0] if outcome else None)

        _overlap.start, _overlap._copy = spied_start, spied_copy


def _scene(base: Path) -> Tuple[List[mountprobe.Mount], _Spy]:
    """The table of many mounts under ``base``, as the plain read gives it, and a spy set
    after that read."""
    _needs_the_overlap()
    _mount_many(base)
    return _plain_read_records(), _Spy()


def _plain_read_records() -> List[mountprobe.Mount]:
    saved, _overlap.MIN_MOUNTS = _overlap.MIN_MOUNTS, 1 << 62
    try:
        return mountprobe.list_mounts()
    finally:
        _overlap.MIN_MOUNTS = saved


def _assert_kernel_table(records: List[mountprobe.Mount]) -> None:
    kernel = _oracle.by_id()
    assert len(records) == len(kernel) > COUNT
    for m in records:
        assert {f: getattr(m, f) for f in _oracle.FIELDS} == kernel[m.id]
    assert {m.unique_id for m in records} == _oracle.all_unique_ids()


@isolated
def test_a_table_read_on_another_cpu_gives_the_records_of_one_whole_read(tmp_path: Path) -> None:
    _needs_the_overlap()
    _mount_many(tmp_path)
    spy = _Spy()
    records = mountprobe.list_mounts()
    assert spy.starts == [True]
    assert spy.copies == [None]  # the whole file came through the memfd: no read after it
    _assert_kernel_table(records)
    assert records == _plain_read_records()
    assert spy.starts == [True]  # the plain read started no copy


@isolated
def test_where_sendfile_is_refused_the_table_is_read_again_as_before(tmp_path: Path) -> None:
    expected, spy = _scene(tmp_path)
    fail_syscalls({"sendfile": errno.EPERM})  # inherited by the helper thread, made after it
    probe.forget()
    records = mountprobe.list_mounts()
    assert spy.starts == [True]  # the copy began, failed, and the file was read from its start
    assert [type(e) for e in spy.copies] == [PermissionError]
    assert records == expected
    _assert_kernel_table(records)


@isolated
def test_where_memfd_create_is_refused_no_copy_begins_and_the_table_is_read_as_before(tmp_path: Path) -> None:
    expected, spy = _scene(tmp_path)
    fail_syscalls({"memfd_create": errno.EPERM})
    probe.forget()
    assert mountprobe.list_mounts() == expected
    assert spy.starts == [False]


@isolated
def test_a_process_bound_to_one_cpu_reads_the_table_itself(tmp_path: Path) -> None:
    expected, spy = _scene(tmp_path)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    assert mountprobe.list_mounts() == expected
    assert spy.starts == []


class _Interrupted(Exception):
    pass


def _descriptors() -> List[str]:
    out = []
    for fd in sorted(os.listdir("/proc/self/fd")):
        try:
            out.append(f"{fd} {os.readlink('/proc/self/fd/' + fd)}")
        except OSError:  # the descriptor listdir itself used
            continue
    return out


@isolated
def test_an_exception_raised_mid_parse_leaves_no_descriptor_and_the_next_call_whole(tmp_path: Path) -> None:
    expected, spy = _scene(tmp_path)
    mine = _descriptors()
    blocks = _overlap.Arrival.blocks

    def interrupted_blocks(self: _overlap.Arrival) -> Iterator[bytes]:
        """The first block, then what a signal handler raises in the caller."""
        for block in blocks(self):
            yield block
            raise _Interrupted

    _overlap.Arrival.blocks = interrupted_blocks  # type: ignore[method-assign]
    for _ in range(5):
        with pytest.raises(_Interrupted):
            mountprobe.list_mounts()
        assert _descriptors() == mine  # joined before the exception left the call
    _overlap.Arrival.blocks = blocks  # type: ignore[method-assign]
    assert mountprobe.list_mounts() == expected
    assert spy.starts == [True] * 6
    assert spy.copies == [None] * 6


@isolated
def test_forks_from_another_thread_during_the_copies_leave_parent_and_children_whole(tmp_path: Path) -> None:
    expected, _ = _scene(tmp_path)
    statuses: List[int] = []

    def forker() -> None:
        for _ in range(10):
            pid = os.fork()
            if pid == 0:  # the forking thread alone: it asks again, in its own process
                ok = len(mountprobe.list_mounts()) == len(expected)
                os._exit(0 if ok else 3)
            statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork() with threads
        thread = threading.Thread(target=forker)
        thread.start()
        while thread.is_alive():
            assert mountprobe.list_mounts() == expected
        thread.join()
    assert statuses == [0] * 10
