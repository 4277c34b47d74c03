"""The ``/proc/<pid>/mountinfo`` format: a lossless parser, its filters, and the reader.

Bytes in, bytes until the very end: lines are split only on ``\\n`` and fields only on a
single space (never ``splitlines()`` or ``split()``: a raw ``\\r``, ``\\v`` or U+2028 in a
path is not a line break), and only the kernel's own escapes, a backslash and three octal
digits, are decoded. Names then go through ``os.fsdecode``, so ``os.fsencode`` gives back
the exact bytes, non-UTF-8 ones included.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from typing import Callable, Dict, List, Optional, Tuple

from .errors import MountprobeError, ParseError, ParseWarning
from .model import Mount

_new = tuple.__new__
_fsdecode = os.fsdecode
_OCTAL = re.compile(rb"\\([0-3][0-7][0-7])")
_U32 = 0xFFFFFFFF


class ProcUnavailable(MountprobeError):
    """No mountinfo file can be read (no procfs mounted: a chroot, early boot, a minimal
    container) and no system call could answer instead."""


def unescape(raw: bytes) -> bytes:
    """Decode the kernel's ``\\ooo`` escapes (``\\040`` space, ``\\011`` tab, ``\\012``
    newline, ``\\134`` backslash, ``\\043`` ``#``); leave every other backslash as it is."""
    if b"\\" not in raw:
        return raw
    return _OCTAL.sub(lambda m: bytes((int(m.group(1), 8),)), raw)


def escape(raw: bytes) -> bytes:
    """Escape a path the way the kernel writes fields 4 and 5 (``mangle_path``)."""
    return raw.replace(b"\\", b"\\134").replace(b" ", b"\\040").replace(b"\t", b"\\011").replace(b"\n", b"\\012")


def split_options(raw: bytes) -> Tuple[str, ...]:
    """Split super options (field 11, or statmount ``mnt_opts``) on the commas that are not
    inside double quotes (SELinux ``context="...:c1,c2"``), and decode each item."""
    if b'"' in raw:
        items: List[bytes] = []
        start, quoted = 0, False
        for i, byte in enumerate(raw):
            if byte == 0x22:
                quoted = not quoted
            elif byte == 0x2C and not quoted:
                items.append(raw[start:i])
                start = i + 1
        items.append(raw[start:])
    else:
        items = raw.split(b",")
    return tuple(_fsdecode(unescape(item)) for item in items if item)


class _Bad(Exception):
    pass


def _number(raw: bytes, what: str) -> int:
    if not raw.isdigit():
        raise _Bad(f"{what} is not a number")
    value = int(raw)
    if value > _U32:
        raise _Bad(f"{what} overflows 32 bits")
    return value


class _Parser:
    """Parses lines into ``Mount`` records, caching the decoded form of fields that repeat
    (options, fstype, source, super options repeat across thousands of bind mounts)."""

    __slots__ = ("cache", "strict")

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.cache: Dict[Tuple[int, bytes], object] = {}

    def parse(self, f: List[bytes]) -> Mount:
        n = len(f)
        if n < 10:
            raise _Bad("fewer than 10 fields")
        try:
            sep = f.index(b"-", 6)
        except ValueError:
            raise _Bad("no ' - ' separator") from None
        if n < sep + 4:
            raise _Bad("fields missing after the separator")
        major, colon, minor = f[2].partition(b":")
        if not colon:
            raise _Bad("bad MAJ:MIN")
        root, point = f[3], f[4]
        if not root or not point:
            raise _Bad("empty root or mount point")
        shared = master = propagate_from = None
        unbindable = False
        for tag in f[6:sep]:
            if tag.startswith(b"shared:"):
                shared = _number(tag[7:], "peer group")
            elif tag.startswith(b"master:"):
                master = _number(tag[7:], "master")
            elif tag.startswith(b"propagate_from:"):
                propagate_from = _number(tag[15:], "propagate_from")
            elif tag == b"unbindable":
                unbindable = True
            # Unknown tags are tolerated: the kernel may add new ones (proc(5)).
        cache = self.cache
        options = cache.get((0, f[5]))
        if options is None:
            options = cache[(0, f[5])] = tuple(_fsdecode(f[5]).split(","))
        fstype = cache.get((1, f[sep + 1]))
        if fstype is None:
            fstype = cache[(1, f[sep + 1])] = _fsdecode(unescape(f[sep + 1]))
        raw_source = f[sep + 2]
        source = cache.get((2, raw_source), False)
        if source is False:
            source = cache[(2, raw_source)] = _fsdecode(unescape(raw_source)) if raw_source else None
        # Old cifs (unc=\\server\share with raw spaces) and WSL 9p put unescaped spaces in
        # field 11: everything after the source is the super options.
        raw_super = f[sep + 3] if n == sep + 4 else b" ".join(f[sep + 3 :])
        super_options = cache.get((3, raw_super))
        if super_options is None:
            super_options = cache[(3, raw_super)] = split_options(raw_super)
        return _new(
            Mount,
            (
                _number(f[0], "mount id"),
                _number(f[1], "parent id"),
                None,
                None,
                _number(major, "major"),
                _number(minor, "minor"),
                _fsdecode(unescape(root)),
                _fsdecode(unescape(point)),
                options,
                fstype,
                source,
                super_options,
                shared,
                master,
                propagate_from,
                unbindable,
            ),
        )

    def rejected(self, why: str, lineno: int, line: bytes) -> None:
        if self.strict:
            raise ParseError(why, lineno, line)
        warnings.warn(f"mountinfo line {lineno} skipped: {why}: {line[:200]!r}", ParseWarning, stacklevel=4)


LineFilter = Callable[[List[bytes]], bool]


def _entries(data: bytes, strict: bool, keep: Optional[LineFilter], first: bool) -> List[Mount]:
    parser = _Parser(strict)
    out: List[Mount] = []
    for lineno, line in enumerate(data.split(b"\n"), 1):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line or line[0] == 0x23:  # blank, or a comment in a hand-made file
            continue
        fields = line.split(b" ")
        if keep is not None and (len(fields) < 5 or not keep(fields)):
            continue
        try:
            out.append(parser.parse(fields))
        except _Bad as bad:
            parser.rejected(str(bad), lineno, line)
            continue
        if first:
            break
    return out


def parse_mountinfo(data: bytes, *, strict: bool = False) -> List[Mount]:
    """Parse mountinfo text into records, in file order. A malformed line is skipped with a
    ``ParseWarning`` naming its line number, or raises ``ParseError`` with ``strict=True``;
    the rest of the table is never lost."""
    return _entries(bytes(data), strict, None, False)


def find_by_id(data: bytes, mount_id: int) -> Optional[Mount]:
    """The entry with legacy id ``mount_id``, stopping at the first match."""
    want = str(mount_id).encode()
    found = _entries(data, False, lambda f: f[0] == want, True)
    return found[0] if found else None


def find_at(data: bytes, point: bytes) -> List[Mount]:
    """Every entry whose mount point is exactly ``point`` (canonical bytes), in file order."""
    want = escape(point)
    return _entries(data, False, lambda f: f[4] == want, False)


def find_under(data: bytes, top: bytes, include_self: bool) -> List[Mount]:
    """Entries whose mount point is below ``top`` component-wise (and at ``top`` if asked)."""
    want = escape(top)
    prefix = want if want.endswith(b"/") else want + b"/"

    def keep(f: List[bytes]) -> bool:
        if f[4] == want:
            return include_self
        return f[4].startswith(prefix)

    return _entries(data, False, keep, False)


def topmost(stack: List[Mount]) -> Optional[Mount]:
    """The visible mount of several at one mount point: the one no other uses as its parent
    (util-linux ``mnt_table_over_fs``), not the first line (moby ``SingleEntryFilter``)."""
    parents = {m.parent_id for m in stack}
    for m in reversed(stack):
        if m.id not in parents:
            return m
    return stack[-1] if stack else None


def longest_prefix(data: bytes, path: bytes) -> Optional[Mount]:
    """The visible mount containing canonical ``path``: the topmost entry at the longest
    mount point that is ``path`` or one of its ancestors (findmnt ``--target``)."""
    best: List[Mount] = []
    best_len = -1
    for m in parse_mountinfo(data):
        point = os.fsencode(m.mountpoint)
        if point == path or point == b"/" or (path.startswith(point) and path[len(point) : len(point) + 1] == b"/"):
            if len(point) > best_len:
                best, best_len = [m], len(point)
            elif len(point) == best_len:
                best.append(m)
    return topmost(best)


def _sources() -> List[str]:
    # Syscalls act on the calling thread's namespace and root; /proc/self is the thread-group
    # leader, which may live elsewhere (a thread that unshared). thread-self is 3.17+, and
    # missing with a foreign pid namespace's procfs (moby/sys PRs #128, #135).
    return [
        "/proc/thread-self/mountinfo",
        f"/proc/self/task/{threading.get_native_id()}/mountinfo",
        "/proc/self/mountinfo",
    ]


def read_mountinfo(path: Optional[str] = None) -> bytes:
    """The whole mountinfo of the calling thread (or of ``path``), read with one large buffer
    that grows, so that no entry is split across reads."""
    errors: List[str] = []
    for candidate in [path] if path else _sources():
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            errors.append(f"{candidate}: {exc.strerror}")
            continue
        try:
            chunks: List[bytes] = []
            size = 1 << 16
            while True:
                chunk = os.read(fd, size)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                size = min(size * 2, 1 << 22)
        finally:
            os.close(fd)
    raise ProcUnavailable("cannot read mountinfo (is /proc mounted?): " + "; ".join(errors))
