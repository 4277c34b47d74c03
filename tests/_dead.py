"""Filesystems whose server never answers: a FUSE server that replies to INIT and then to
nothing (the raw /dev/fuse protocol, in its own process), and a direct autofs mount whose
daemon never reads its pipe. Both record what the kernel asked them, so a test can prove
that a query did not touch the filesystem at all, not only that it came back in time.

Run every query against them through ``within``: a forked child with a deadline, killed
when it hangs, so that a regression fails the test instead of freezing the suite. Use them
only in ``@isolated`` tests: a query stuck on a request the FUSE server has read cannot be
killed until the server dies, which the end of the test's pid namespace guarantees.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import operator
import os
import select
import signal
import struct
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from _child import Child, Hung
from _ns import MNT_DETACH, in_user_namespace, mount, umount
from _pace import hang_deadline

# linux/fuse.h
FUSE_LOOKUP, FUSE_GETATTR, FUSE_STATFS, FUSE_INIT = 1, 3, 17, 26
OPCODES = {1: "LOOKUP", 3: "GETATTR", 17: "STATFS", 26: "INIT", 27: "OPENDIR", 34: "ACCESS"}
OPCODES.update({36: "INTERRUPT", 38: "DESTROY", 52: "STATX"})
_IN_HEADER = struct.Struct("=IIQQIIIHH")  # len, opcode, unique, nodeid, uid, gid, pid, extlen, pad
_OUT_HEADER = struct.Struct("=IiQ")  # len, error, unique
_INIT_IN = struct.Struct("=II")  # major, minor (the rest is not needed)
# major, minor, max_readahead, flags, max_background, congestion_threshold, max_write,
# time_gran, max_pages, map_alignment, flags2, max_stack_depth, request_timeout, unused[11]
_INIT_OUT = struct.Struct("=IIIIHHIIHHIIH22x")
_READ_SIZE = 1 << 20


class Timeout:
    """The outcome of a query that did not finish before its deadline."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"<no answer within {self.seconds} s>"


def within(
    seconds: float,
    query: Callable[[], Any],
    setup: Optional[Callable[[], None]] = None,
    stuck: Optional[Callable[[], bool]] = None,
) -> Any:
    """Run ``query()`` in a forked child (after ``setup()``, e.g. a seccomp filter) and return
    its result, or the exception it raised, or a Timeout when it hangs (the child is killed;
    one stuck on a FUSE request the server has read dies when the server does): when it has
    not answered within ``seconds``, or as soon as ``stuck()`` holds (a sign that it never
    will, such as the dead server having got its request), however fast that is."""
    with Child(query, setup, grace=0.2) as child:
        try:
            return child.report(seconds, stuck).value
        except Hung:
            return Timeout(seconds)


def waits_on(fs: Any, query: Callable[[], Any]) -> Tuple[Any, Any]:
    """Run ``query`` (in a forked child) that must hang on ``fs``, a DeadFuse or DeadAutofs,
    until the kernel has asked ``fs`` for it (then it waits for an answer that never comes):
    its outcome (a Timeout unless it answered) and what the kernel asked. Without waiting
    for the request, a short wait could end before a slow machine even ran the query."""
    asked: List[Any] = []

    def stuck() -> bool:
        asked.append(fs.requests())
        return any(asked)

    outcome = within(hang_deadline(forks=1), query, stuck=stuck)
    asked.append(fs.requests())
    return outcome, functools.reduce(operator.add, asked)


def _nonblocking_read_all(fd: int) -> bytes:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    data = b""
    try:
        while True:
            data += os.read(fd, 1 << 16)
    except BlockingIOError:
        return data
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)


class DeadFuse:
    """A FUSE mount at ``target`` whose server, a separate process, answers INIT and then
    reads every request and answers none: every call that reaches the filesystem hangs,
    like a dead sshfs or NFS server. ``requests()`` names what the kernel sent after INIT."""

    def __init__(self, target: Path, source: str = "deadsrc", subtype: str = "dead", owner: int = 0) -> None:
        self.target = target
        self.owner = owner
        self.source = source
        self.fstype = f"fuse.{subtype}"
        self.pid = 0
        self._log = -1

    def __enter__(self) -> DeadFuse:
        try:
            device = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            pytest.skip(f"cannot open /dev/fuse here: {exc.strerror}")
        try:
            data = f"fd={device},rootmode=40000,user_id={self.owner},group_id={self.owner}"
            mount(self.source, self.target, self.fstype, 0, data)
        except OSError as exc:
            os.close(device)
            pytest.skip(f"cannot mount FUSE here: {exc}")
        self._log, log_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self._log)
            try:
                _serve(device, log_end)
            finally:
                os._exit(0)
        os.close(device)
        os.close(log_end)
        if not select.select([self._log], [], [], 10)[0] or os.read(self._log, 1) != b"R":
            self.kill()
            raise RuntimeError("the FUSE server did not complete INIT")
        return self

    def requests(self) -> List[str]:
        data = _nonblocking_read_all(self._log)
        return [OPCODES.get(op, str(op)) for (op,) in struct.iter_unpack("=I", data)]

    def kill(self) -> None:
        """Kill the server: pending and later requests fail with ENOTCONN."""
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = 0

    def __exit__(self, *exc: object) -> None:
        self.kill()
        os.close(self._log)
        with contextlib.suppress(OSError):
            umount(self.target, MNT_DETACH)


def _serve(device: int, log: int) -> None:
    request = os.read(device, _READ_SIZE)
    _, opcode, unique = _IN_HEADER.unpack_from(request)[:3]
    assert opcode == FUSE_INIT, opcode
    _, minor = _INIT_IN.unpack_from(request, _IN_HEADER.size)
    body = _INIT_OUT.pack(7, min(minor, 31), 0, 0, 0, 0, 4096, 1, 0, 0, 0, 0, 0)
    os.write(device, _OUT_HEADER.pack(_OUT_HEADER.size + len(body), 0, unique) + body)
    os.write(log, b"R")
    while True:  # read every request, answer none
        try:
            request = os.read(device, _READ_SIZE)
        except OSError as exc:
            if exc.errno in (errno.EINTR, errno.ENOENT):  # ENOENT: a request was interrupted
                continue
            return
        os.write(log, struct.pack("=I", _IN_HEADER.unpack_from(request)[1]))


class DeadAutofs:
    """A direct autofs mount at ``target`` whose daemon never reads its pipe: anything that
    triggers the automount waits forever. ``requests()`` is what the kernel wrote to the pipe."""

    fstype = "autofs"

    def __init__(self, target: Path, source: str = "deadmap") -> None:
        self.target = target
        self.source = source
        self.daemon = 0
        self._pipe = -1

    def __enter__(self) -> DeadAutofs:
        if in_user_namespace():
            pytest.skip("autofs needs real root (it cannot be mounted inside a user namespace)")
        # autofs serves the daemon's process group without asking it (oz mode): the daemon is
        # a separate process that only sleeps, so this process is an ordinary client.
        self.daemon = os.fork()
        if self.daemon == 0:
            os.setpgid(0, 0)
            while True:
                time.sleep(3600)
        with contextlib.suppress(OSError):  # the child may get there first
            os.setpgid(self.daemon, self.daemon)
        self._pipe, write_end = os.pipe()
        try:
            mount(
                self.source,
                self.target,
                "autofs",
                0,
                f"fd={write_end},pgrp={self.daemon},minproto=5,maxproto=5,direct",
            )
        except OSError as exc:
            self._stop()
            pytest.skip(f"cannot mount autofs here: {exc}")
        finally:
            os.close(write_end)
        return self

    def requests(self) -> bytes:
        return _nonblocking_read_all(self._pipe)

    def _stop(self) -> None:
        if self.daemon:
            os.kill(self.daemon, signal.SIGKILL)
            os.waitpid(self.daemon, 0)
            self.daemon = 0
        if self._pipe >= 0:
            os.close(self._pipe)  # a waiting client now gets an error (the pipe is broken)
            self._pipe = -1

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            umount(self.target, MNT_DETACH)
        self._stop()


Outcomes = Dict[str, Any]
Query = Tuple[str, Callable[[], Any]]
