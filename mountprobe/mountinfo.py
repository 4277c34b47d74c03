"""The ``/proc/<pid>/mountinfo`` format: a lossless parser, its filters, and the reader.

Bytes in, bytes until the very end: lines are split only on ``\\n`` and fields only on a
single space (never ``splitlines()`` or ``split()``: a raw ``\\r``, ``\\v`` or U+2028 in a
path is not a line break), and only the kernel's own escapes, a backslash and three octal
digits, are decoded. Names then go through ``os.fsdecode``, so ``os.fsencode`` gives back
the exact bytes, non-UTF-8 ones included.
"""

from __future__ import annotations

import _thread
import errno
import os
import stat
import sys
import warnings
from io import FileIO
from itertools import chain, count, repeat

from .errors import MountprobeError, ParseError, ParseWarning
from .model import Mount, collector_paused

TYPE_CHECKING = False
if TYPE_CHECKING:
    from re import Match, Pattern
    from typing import Callable, Dict, List, Optional, Tuple

    from ._paths import PathArg

    LineFilter = Callable[[List[bytes]], bool]
    _Rest = Tuple[
        Tuple[str, ...], str, Optional[str], Tuple[str, ...], Optional[int], Optional[int], Optional[int], bool
    ]

_new = tuple.__new__
_ENCODING = sys.getfilesystemencoding()
_ERRORS = sys.getfilesystemencodeerrors()
_OCTAL: List[Pattern[bytes]] = []  # compiled on first need: importing re costs a command 8 ms
_BYTES = {b"%03o" % i: bytes((i,)) for i in range(256)}
_U32 = 0xFFFFFFFF


class ProcUnavailable(MountprobeError):
    """No mountinfo file can be read (no procfs mounted: a chroot, early boot, a minimal
    container) and no system call could answer instead."""


def unescape(raw: bytes) -> bytes:
    """Decode the kernel's ``\\ooo`` escapes (``\\040`` space, ``\\011`` tab, ``\\012``
    newline, ``\\134`` backslash, ``\\043`` ``#``); leave every other backslash as it is."""
    if b"\\" not in raw:
        return raw
    count = raw.count
    if count(b"\\") == count(b"\\040") + count(b"\\011") + count(b"\\012") + count(b"\\134"):
        # Only the escapes of paths (every backslash starts one): plain replaces, the
        # backslash last so that what it yields is never read as the start of another escape.
        return raw.replace(b"\\040", b" ").replace(b"\\011", b"\t").replace(b"\\012", b"\n").replace(b"\\134", b"\\")
    if not _OCTAL:
        import re

        _OCTAL.append(re.compile(rb"\\([0-3][0-7][0-7])"))
    return _OCTAL[0].sub(_byte_of, raw)


def _byte_of(match: Match[bytes]) -> bytes:
    return _BYTES[match.group(1)]


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
    if b"\\" in raw:
        items = [unescape(item) for item in items]
    return tuple([item.decode(_ENCODING, _ERRORS) for item in items if item])


class _Bad(ValueError):
    pass


def _text(raw: bytes) -> str:
    """``os.fsdecode`` of a field after decoding its escapes."""
    if b"\\" in raw:
        raw = unescape(raw)
    return raw.decode(_ENCODING, _ERRORS)


_NUMBERED = (b"shared", b"master", b"propagate_from")


def _tags(tags: List[bytes]) -> Tuple[Optional[int], Optional[int], Optional[int], bool]:
    shared = master = propagate_from = None
    unbindable = False
    for tag in tags:
        name, _, value = tag.partition(b":")
        if name in _NUMBERED and not (value.isdigit() and int(value) <= _U32):
            raise _Bad(f"bad optional field {tag!r}")
        if name == b"shared":
            shared = int(value)
        elif name == b"master":
            master = int(value)
        elif name == b"propagate_from":
            propagate_from = int(value)
        elif tag == b"unbindable":
            unbindable = True
        # Unknown tags are tolerated: proc(5) says new ones may come.
    return shared, master, propagate_from, unbindable


class _RestParser:
    """Fields 6 to 11, in the order of ``Mount`` after ``mountpoint``: options, fstype,
    source, super options, shared, master, propagate_from, unbindable. Each of the three
    parts (options; optional fields; fstype, source and super options) repeats across lines
    on its own, so each has its own cache."""

    def __init__(self) -> None:
        self.options: Dict[bytes, Tuple[str, ...]] = {}
        self.tags: Dict[bytes, Tuple[Optional[int], Optional[int], Optional[int], bool]] = {}
        self.tails: Dict[bytes, Tuple[str, Optional[str], Tuple[str, ...]]] = {}

    def __call__(self, rest: bytes) -> _Rest:
        raw_options, _, after = rest.partition(b" ")
        if after[:2] == b"- ":
            tags = _NO_TAGS
            tail = after[2:]
        else:
            cut = after.find(b" - ")
            if cut < 0:
                raise _Bad("no ' - ' separator")
            raw_tags, tail = after[:cut], after[cut + 3 :]
            value = raw_tags[7:]
            if raw_tags[:7] == b"shared:" and value.isdigit():  # the usual lone tag, often unique
                tags = (int(value), None, None, False)
                if tags[0] > _U32:
                    raise _Bad(f"bad optional field {raw_tags!r}")
            else:
                cached = self.tags.get(raw_tags)
                if cached is None:
                    cached = self.tags[raw_tags] = _tags(raw_tags.split(b" "))
                tags = cached
        options = self.options.get(raw_options)
        if options is None:
            if not raw_options:
                raise _Bad("no mount options")
            options = self.options[raw_options] = tuple(_text(o) for o in raw_options.split(b","))
        fields = self.tails.get(tail)
        if fields is None:
            fields = self.tails[tail] = _tail(tail)
        return (options,) + fields + tags


_NO_TAGS: Tuple[Optional[int], Optional[int], Optional[int], bool] = (None, None, None, False)


def _tail(tail: bytes) -> Tuple[str, Optional[str], Tuple[str, ...]]:
    fstype, sp1, tail = tail.partition(b" ")
    source, sp2, raw_super = tail.partition(b" ")
    if not (fstype and sp1 and sp2):
        raise _Bad("fields missing after the separator")
    # Old cifs (unc=\\\\server\\share with raw spaces) and WSL 9p put unescaped spaces in
    # field 11: everything after the source is the super options.
    return _text(fstype), _text(source) if source else None, split_options(raw_super)


def _root(raw: bytes) -> str:
    if not raw:
        raise _Bad("empty root")
    return _text(raw)


def _devno(raw: bytes) -> Tuple[int, int]:
    major, colon, minor = raw.partition(b":")
    if not (colon and major.isdigit() and minor.isdigit()):
        raise _Bad("bad MAJ:MIN")
    return int(major), int(minor)


def _entries(
    data: bytes,
    strict: bool,
    keep: Optional[LineFilter] = None,
    first: bool = False,
    needle: Optional[bytes] = None,
    ids: Optional[List[int]] = None,
) -> List[Mount]:
    """The parser. ``needle``: skip lines without this substring before splitting them;
    ``keep``: a test on the first five fields; ``first``: stop at the first match;
    ``ids``: unique ids to give the records in order (see ``parse_with_unique_ids``)."""
    with collector_paused():
        return _parse(data, strict, keep, first, needle, ids)


def _parse(
    data: bytes,
    strict: bool,
    keep: Optional[LineFilter],
    first: bool,
    needle: Optional[bytes],
    ids: Optional[List[int]],
) -> List[Mount]:
    out: List[Mount] = []
    append = out.append
    # Everything after the mount point repeats across lines (thousands of binds of one
    # filesystem share it), and so do devices and roots: parse each distinct one once.
    rests: Optional[Dict[bytes, _Rest]] = {}
    rest_parser = _RestParser()
    devnos: Dict[bytes, Tuple[int, int]] = {}
    roots: Dict[bytes, str] = {}
    unique: Dict[int, Optional[int]] = {}
    u = pu = None
    new, encoding, errors, unesc = _new, _ENCODING, _ERRORS, unescape
    if b"\r\n" in data:  # a hand-made file; the kernel writes \n only
        data = data.replace(b"\r\n", b"\n")
        if data[-1:] == b"\r":
            data = data[:-1]
    lines = data.split(b"\n")
    if needle is None:
        todo, numbers = lines, None
    else:
        numbers = [n for n, line in enumerate(lines) if needle in line]
        todo = [lines[n] for n in numbers]
    # With ids, the n-th id belongs to the n-th line: the caller discards them unless every
    # line parsed and the count matched.
    for index, line, u in zip(count(), todo, repeat(None) if ids is None else chain(ids, repeat(None))):
        try:
            # Spaces inside names are always escaped: five fields, then the rest.
            f = line.split(b" ", 5)
            if keep is not None and not keep(f):
                continue
            a = rests.get(f[5]) if rests is not None else None
            if a is None:
                a = rest_parser(f[5])
                if rests is not None and len(f[5]) < 256:  # long ones (overlay layers) are one per mount
                    rests[f[5]] = a
                    if len(rests) == 512 and len(out) < 1024:
                        rests = None  # nearly every line differs (unique peer groups): stop trying
            d = devnos.get(f[2])
            if d is None:
                d = devnos[f[2]] = _devno(f[2])
            r = roots.get(f[3])
            if r is None:
                r = roots[f[3]] = _root(f[3])
            point = f[4]
            mnt_id, parent = int(f[0]), int(f[1])
            if not point or (mnt_id | parent) >> 32:  # or negative, or wider than 32 bits
                raise _Bad("empty mount point, or a mount id out of range")
        except (ValueError, IndexError) as exc:  # rare: checked here, off the hot path
            head = line.lstrip()
            if not head or head[0] == 0x23:  # blank, or a comment in a hand-made file
                continue
            if isinstance(exc, _Bad):
                why = str(exc)
            elif isinstance(exc, IndexError):
                why = "fewer than 10 fields"
            else:
                why = "mount id is not a number"
            lineno = 1 + (index if numbers is None else numbers[index])
            if strict:
                raise ParseError(why, lineno, line) from None
            warnings.warn(f"mountinfo line {lineno} skipped: {why}: {line[:200]!r}", ParseWarning, stacklevel=4)
            continue
        if ids is not None:
            unique[mnt_id] = u
            pu = unique.get(parent)
        pt = (unesc(point) if b"\\" in point else point).decode(encoding, errors)
        append(new(Mount, (mnt_id, parent, u, pu, d[0], d[1], r, pt) + a))
        if first:
            break
    return out


def parse_mountinfo(data: bytes, *, strict: bool = False) -> List[Mount]:
    """Parse mountinfo text into records, in file order. A malformed line is skipped with a
    ``ParseWarning`` naming its line number, or raises ``ParseError`` with ``strict=True``;
    the rest of the table is never lost."""
    if type(data) is not bytes:
        try:  # not bytes(data): bytes(10**9) is a gigabyte of zeros, bytes([...]) a list's ints
            data = bytes(memoryview(data))
        except TypeError:
            raise TypeError(f"parse_mountinfo() takes bytes-like data, not {type(data).__name__}") from None
    return _entries(data, strict)


def parse_with_unique_ids(data: bytes, ids: List[int]) -> List[Mount]:
    """Parse, giving the n-th line the n-th of ``ids`` and each record its parent's id where
    the parent came earlier. Only for ids known to be in the table's order: the caller checks
    that every line parsed, the counts agree and spot checks hold, else drops the ids."""
    return _entries(data, False, ids=ids)


def find_by_id(data: bytes, mount_id: int) -> Optional[Mount]:
    """The entry with legacy id ``mount_id``, stopping at the first match."""
    want = str(mount_id).encode()
    found = _entries(data, False, lambda f: f[0] == want, True, want + b" ")
    return found[0] if found else None


def find_at(data: bytes, point: bytes) -> List[Mount]:
    """Every entry whose mount point is exactly ``point`` (canonical bytes), in file order."""
    want = escape(point)
    return _entries(data, False, lambda f: f[4] == want, False, b" " + want + b" ")


def find_under(data: bytes, top: bytes, include_self: bool) -> List[Mount]:
    """Entries whose mount point is below ``top`` component-wise (and at ``top`` if asked)."""
    want = escape(top)
    prefix = want if want.endswith(b"/") else want + b"/"

    def keep(f: List[bytes]) -> bool:
        if f[4] == want:
            return include_self
        return f[4].startswith(prefix)

    return _entries(data, False, keep, False, b" " + want)


def find_by_fstype(data: bytes, fstypes: Tuple[str, ...]) -> List[Mount]:
    """Entries whose fstype (``type`` or ``type.subtype``) is one of ``fstypes``."""
    wanted = {escape(os.fsencode(t)).replace(b"#", b"\\043") for t in fstypes}

    def keep(f: List[bytes]) -> bool:
        rest = f[5]
        cut = rest.find(b" - ")
        return cut >= 0 and rest[cut + 3 :].partition(b" ")[0] in wanted

    return _entries(data, False, keep)


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
        f"/proc/self/task/{_thread.get_native_id()}/mountinfo",
        "/proc/self/mountinfo",
    ]


def read_mountinfo(path: Optional[PathArg] = None, *, consistent: bool = False) -> bytes:
    """The whole mountinfo of the calling thread (or the file at ``path``: a ``str``,
    ``bytes`` or ``os.PathLike`` naming a regular file, which procfs files are).

    The kernel hands out whole lines, one seq_file page per read(2), so a line is never
    split while each read asks for a page or more; between reads it drops its lock, so the
    text is no snapshot while mounts change (stable mounts are never missed since 5.8). With
    ``consistent=True`` the file is read again until two reads agree (at most 10 times, then
    ``MountprobeError``), for callers that need one consistent view."""
    if path is not None:
        with _open_regular(path) as file:
            return _read(file, os.fsdecode(path), consistent)
    errors: List[str] = []
    for candidate in _sources():
        try:
            file = _open_regular(candidate)
        except FileNotFoundError as exc:
            errors.append(f"{candidate}: {exc.strerror}")
            continue
        with file:
            return _read(file, candidate, consistent)
    raise ProcUnavailable("cannot read mountinfo (is /proc mounted?): " + "; ".join(errors))


def _read(file: FileIO, name: str, consistent: bool) -> bytes:
    data = file.readall()
    for _ in range(10 if consistent else 0):
        file.seek(0)
        again = file.readall()
        if again == data:
            return data
        data = again
    if consistent:
        raise MountprobeError(f"{name} changed on each of 10 reads")
    return data


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory",
}


def _open_regular(path: PathArg) -> FileIO:
    """``path`` opened for reading, once it is known to name a regular file. The type is
    checked on an ``O_PATH`` descriptor, which opens nothing: opening a FIFO for reading
    waits for a writer, and opening a device runs its driver. The file is then opened with
    ``O_NONBLOCK`` (a path swapped for a FIFO meanwhile does not block, and a regular file
    that waits for data, like ``/proc/kmsg``, fails with EAGAIN rather than hangs) and must
    still be the file that was checked."""
    if isinstance(path, int):  # bool included; open() would take it as a descriptor
        raise TypeError(
            f"read_mountinfo() takes a path (str, bytes or os.PathLike), not {type(path).__name__}: "
            "a descriptor is not accepted (pass f'/proc/self/fd/{fd}' to reopen one)"
        )
    name = os.fspath(path)  # TypeError for anything that is not a path
    if not name:
        raise ValueError("read_mountinfo(): empty path")
    probe = os.open(name, os.O_PATH | os.O_CLOEXEC)
    try:
        before = os.fstat(probe)
    finally:
        os.close(probe)
    kind = stat.S_IFMT(before.st_mode)
    if kind != stat.S_IFREG:
        what = _KINDS.get(kind, "not a regular file")
        code = errno.EISDIR if kind == stat.S_IFDIR else errno.EINVAL
        raise OSError(code, f"mountinfo is read from regular files only, and this is {what}", name)
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise OSError(errno.EAGAIN, "the file was replaced while it was opened", name)
    return FileIO(fd, "rb")
