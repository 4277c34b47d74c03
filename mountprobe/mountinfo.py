"""The ``/proc/<pid>/mountinfo`` format: a lossless parser, its filters, and the reader.

Lines are split only on ``\\n`` and fields only on a single space (never ``splitlines()`` or
``split()``: a raw ``\\r``, ``\\v`` or U+2028 in a path is not a line break), and only the
kernel's own escapes, a backslash and three octal digits, are decoded. Names come out as
``os.fsdecode`` gives them, so ``os.fsencode`` gives back the exact bytes, non-UTF-8 ones
included.

The table is decoded once, whole, and split as text: decoding each field on its own costs
more than all the splitting. That is exact for UTF-8 (the file-system encoding of nearly
every Linux Python), ASCII and Latin-1, where the separators (newline, space, comma, quote,
backslash) never occur inside another character, and ``surrogateescape`` keeps every other
byte. Any other encoding is parsed through Latin-1, which maps each byte to one character,
and the names are then re-decoded (``_Codec``).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import warnings
from io import FileIO
from itertools import chain

from ._lazy import load
from ._procfs import mountinfo_paths
from .errors import MountprobeError, ParseError, ParseWarning
from .errors import ProcUnavailable as ProcUnavailable  # its home before errors.py held it
from .model import Mount, collector_paused

TYPE_CHECKING = False
if TYPE_CHECKING:
    from re import Match, Pattern
    from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

    from ._paths import PathArg

    LineFilter = Callable[[List[str]], bool]
    _Tags = Tuple[Optional[int], Optional[int], Optional[int], bool]

_new = tuple.__new__
_OCTAL: List[Pattern[bytes]] = []  # compiled on first need: re stays off a command's start-up
_BYTES = {b"%03o" % i: bytes((i,)) for i in range(256)}
_U32 = 0xFFFFFFFF
# Per-parse memos: values longer than this are one per mount (overlay layer lists), so
# hashing them costs more than it saves; no memo holds more entries than this, and one that
# fills up within twice as many lines (most lines missed it) is no longer consulted.
_MEMO_KEY_MAX = 256
_MEMO_MAX = 2048
_CHUNK = 1 << 20  # bytes of the table decoded at a time


class _Codec:
    """How text is decoded: ``pivot`` (with ``pivot_errors``) splits and unescapes the table;
    where the file-system encoding is not safe to split after decoding, the pivot is Latin-1
    and ``redecode`` turns each name into what ``os.fsdecode`` gives for its bytes."""

    __slots__ = ("pivot", "pivot_errors", "redecode")

    def __init__(self, encoding: str, errors: str) -> None:
        self.redecode: Optional[Callable[[str], str]] = None
        if encoding.lower().replace("_", "-") in ("utf-8", "utf8", "ascii", "latin-1", "iso8859-1", "iso-8859-1"):
            self.pivot, self.pivot_errors = encoding, errors
        else:
            self.pivot, self.pivot_errors = "latin-1", "strict"
            self.redecode = lambda text: text.encode("latin-1").decode(encoding, errors)


_CODEC = _Codec(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


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
        # Through the one import lock: a cold import in a parsing thread must not leave a
        # forked child a module lock held by a thread it does not have.
        re = load("re")
        _OCTAL.append(re.compile(rb"\\([0-3][0-7][0-7])"))
    return _OCTAL[0].sub(_byte_of, raw)


def _byte_of(match: Match[bytes]) -> bytes:
    return _BYTES[match.group(1)]


def _unescape_text(text: str) -> str:
    """``unescape`` of a field already decoded with the pivot. The escapes of paths yield
    ASCII characters, which decode alike alone or among their neighbours' bytes, so they
    are replaced in the text (the backslash last, so that what it yields never starts
    another escape) once every other backslash is known to start one of them; any other
    escape is decoded on the field's bytes."""
    done = text.replace("\\040", " ")  # by far the most common one
    if "\\" in done:
        done = done.replace("\\011", "\t").replace("\\012", "\n")
        if "\\" in done:
            if done.count("\\") != done.count("\\134"):
                codec = _CODEC
                return unescape(text.encode(codec.pivot, codec.pivot_errors)).decode(codec.pivot, codec.pivot_errors)
            done = done.replace("\\134", "\\")
    return done


def escape(raw: bytes) -> bytes:
    """Escape a path the way the kernel writes fields 4 and 5 (``mangle_path``)."""
    return raw.replace(b"\\", b"\\134").replace(b" ", b"\\040").replace(b"\t", b"\\011").replace(b"\n", b"\\012")


def split_options(raw: bytes) -> Tuple[str, ...]:
    """Split super options (field 11, or statmount ``mnt_opts``) on the commas that are not
    inside double quotes (SELinux ``context="...:c1,c2"``), and decode each item."""
    codec = _CODEC
    items = _split_super(raw.decode(codec.pivot, codec.pivot_errors))
    redecode = codec.redecode
    return items if redecode is None else tuple([redecode(item) for item in items])


def _split_super(raw: str) -> Tuple[str, ...]:
    items = _split_quoted(raw) if '"' in raw else raw.split(",")
    if "\\" in raw:
        items = [_unescape_text(item) if "\\" in item else item for item in items]
    if "" in items:
        return tuple([item for item in items if item])
    return tuple(items)


def _split_quoted(raw: str) -> List[str]:
    """``raw`` split on the commas outside double quotes: the text up to each quote is split
    on its commas, and a quoted value (both quotes kept; the last may be unclosed) joins the
    item it is in."""
    items = [""]
    while True:
        before, quote, raw = raw.partition('"')
        parts = before.split(",")
        items[-1] += parts[0]
        items += parts[1:]
        if not quote:
            return items
        inside, closed, raw = raw.partition('"')
        items[-1] += quote + inside + closed
        if not closed:
            return items


class _Bad(ValueError):
    pass


def _raw(text: str) -> bytes:
    """The bytes of a piece of the table, for messages."""
    return text.encode(_CODEC.pivot, _CODEC.pivot_errors)


def _tags(tags: List[str]) -> _Tags:
    shared = master = propagate_from = None
    unbindable = False
    for tag in tags:
        name, _, value = tag.partition(":")
        numbered = name in ("shared", "master", "propagate_from")
        if numbered and not (value.isascii() and value.isdigit() and int(value) <= _U32):
            raise _Bad(f"bad optional field {_raw(tag)!r}")
        if name == "shared":
            shared = int(value)
        elif name == "master":
            master = int(value)
        elif name == "propagate_from":
            propagate_from = int(value)
        elif tag == "unbindable":
            unbindable = True
        # Unknown tags are tolerated: proc(5) says new ones may come.
    return shared, master, propagate_from, unbindable


_NO_TAGS: _Tags = (None, None, None, False)


def _separator(f: List[str]) -> int:
    """The index of the field "-" that ends the optional fields of the line split into ``f``
    (the first after the options with a field after it)."""
    if len(f) < 6:
        raise IndexError("fewer than 10 fields")
    for k in range(6, len(f) - 1):
        if f[k] == "-":
            return k
    raise _Bad("no ' - ' separator")


def _options(raw: str) -> Tuple[str, ...]:
    if not raw:
        raise _Bad("no mount options")
    if "\\" in raw:
        return tuple([_unescape_text(o) if "\\" in o else o for o in raw.split(",")])
    return tuple(raw.split(","))


def _entries(
    data: bytes,
    strict: bool,
    keep: Optional[LineFilter] = None,
    first: bool = False,
    needle: Optional[bytes] = None,
    ids: Optional[List[int]] = None,
) -> List[Mount]:
    """The parser. ``needle``: parse only the lines that hold this substring;
    ``keep``: a test on the first five fields and the rest (as text: decoded, still escaped);
    ``first``: stop at the first match; ``ids``: unique ids to give the records in order
    (see ``parse_with_unique_ids``)."""
    if b"\r" in data and b"\r\n" in data:  # a hand-made file; the kernel writes \n only (one memchr)
        data = data.replace(b"\r\n", b"\n")
        if data[-1:] == b"\r":
            data = data[:-1]
    codec = _CODEC
    numbers: Optional[List[int]] = None
    lines: Iterable[str]
    if needle is None:
        lines = chain.from_iterable(_decoded(data, codec))
        ascii_only = data.isascii()
        escaped = b"\\" in data
    else:
        lines, numbers = _holding(data, needle, codec)
        ascii_only = all(line.isascii() for line in lines)
        escaped = any("\\" in line for line in lines)
    with collector_paused():
        out = _parse(lines, numbers, ascii_only, escaped, strict, keep, first, ids)
    if codec.redecode is not None:
        out = [_redecoded(m, codec.redecode) for m in out]
    return out


def _decoded(data: bytes, codec: _Codec) -> Iterator[List[str]]:
    """The lines of ``data``, decoded a chunk at a time: the text of a whole large table and
    all its lines at once would double the parse's peak memory."""
    start = 0
    while True:
        end = data.find(b"\n", start + _CHUNK)
        if end < 0:
            yield data[start:].decode(codec.pivot, codec.pivot_errors).split("\n")
            return
        yield data[start:end].decode(codec.pivot, codec.pivot_errors).split("\n")
        start = end + 1


def _holding(data: bytes, needle: bytes, codec: _Codec) -> Tuple[List[str], List[int]]:
    """The lines of ``data`` that hold ``needle``, decoded, and their indices (from 0)."""
    spans = _spans(data, needle)
    lines = [data[start:end].decode(codec.pivot, codec.pivot_errors) for start, end in spans]
    return lines, _numbers(data, spans)


def _spans(data: bytes, needle: bytes) -> List[Tuple[int, int]]:
    """(start, end) of each line of ``data`` holding ``needle``, once each, in order: found
    with ``bytes.find``, so that the lines without it cost no Python step."""
    spans: List[Tuple[int, int]] = []
    find, rfind = data.find, data.rfind
    at = find(needle)
    while at >= 0:
        start = rfind(b"\n", 0, at) + 1
        end = find(b"\n", at)
        if end < 0:
            end = len(data)
        spans.append((start, end))
        at = find(needle, end)
    return spans


def _numbers(data: bytes, spans: Iterable[Tuple[int, int]]) -> List[int]:
    """The index (from 0) of the line at each start of ``spans``, in increasing order."""
    numbers: List[int] = []
    count = data.count
    number = done = 0
    for start, _ in spans:
        number += count(b"\n", done, start)
        done = start
        numbers.append(number)
    return numbers


def _redecoded(m: Mount, redecode: Callable[[str], str]) -> Mount:
    return m._replace(
        root=redecode(m.root),
        mountpoint=redecode(m.mountpoint),
        options=tuple([redecode(o) for o in m.options]),
        fstype=redecode(m.fstype),
        source=None if m.source is None else redecode(m.source),
        super_options=tuple([redecode(o) for o in m.super_options]),
    )


def _parse(
    lines: Iterable[str],
    numbers: Optional[List[int]],
    ascii_only: bool,
    escaped: bool,
    strict: bool,
    keep: Optional[LineFilter],
    first: bool,
    ids: Optional[List[int]],
) -> List[Mount]:
    """The loop over the lines, written out in one function: on tables whose lines share
    nothing (a distinct overlay, NFS export or peer group on each) every line is parsed in
    full, and a call per field would cost more than the work it does."""
    out: List[Mount] = []
    append = out.append
    # Memos: thousands of binds of one filesystem share their super options, and devices,
    # roots, options and optional fields repeat too. Each distinct one is parsed once, up to a
    # bound; super options too long to be shared (an overlay's layers) are not hashed at all.
    # Numbers: int() of a str costs several dict lookups (CPython's int() goes through the
    # type's generic call), and where every line has its own device (a tmpfs, overlay or loop
    # device each) the major and the parent's id still repeat: siblings share a parent, and a
    # table a few majors.
    supers: Dict[str, Tuple[str, ...]] = {}
    options_of: Dict[str, Tuple[str, ...]] = {}
    tags_of: Dict[str, _Tags] = {}
    devnos: Dict[str, Tuple[int, int]] = {}
    roots: Dict[str, str] = {}
    majors: Dict[str, int] = {}
    parents: Dict[str, int] = {}
    unique: Dict[int, Optional[int]] = {}
    u = pu = None
    new, unesc, split_super, key_max, memo_max, u32 = _new, _unescape_text, _split_super, _MEMO_KEY_MAX, _MEMO_MAX, _U32
    no_tags = _NO_TAGS
    super_max = key_max
    devno_max = root_max = memo_max
    esc = False  # no backslash in the line: no field needs unescaping
    # With ids, the n-th id belongs to the n-th line: the caller discards them unless every
    # line parsed and the count matched.
    n_ids = -1 if ids is None else len(ids)
    for index, line in enumerate(lines):
        try:
            if keep is not None and not keep(line.split(" ", 5)):
                continue
            # Spaces inside names are always escaped, and neither the options nor an optional
            # field holds one: one split on single spaces gives every field, and the first
            # "-" after the options, with fields after it, is the separator (" - ").
            f = line.split(" ")
            n = len(f)
            if escaped:
                esc = "\\" in line
            if n > 7 and f[6] == "-":
                k = 6
                tags = no_tags
            else:
                k = 7 if n > 8 and f[7] == "-" else _separator(f)
                if k == 7 and (tag := f[6])[:7] == "shared:" and (peer := tag[7:]).isdigit() and peer.isascii():
                    tags = (int(peer), None, None, False)  # the usual tag
                    if tags[0] > u32:
                        raise _Bad(f"bad optional field {_raw(tag)!r}")
                else:
                    raw_tags = " ".join(f[6:k])
                    tags = tags_of.get(raw_tags)  # type: ignore[assignment]
                    if tags is None:
                        tags = _tags(f[6:k])
                        if len(tags_of) < memo_max:
                            tags_of[raw_tags] = tags
            if n == 10 and k == 6:  # the usual lines, unpacked at once
                raw_id, raw_parent, raw_dev, raw_root, point, raw_options, _, fstype, source, raw_super = f
            elif n == 11 and k == 7:
                raw_id, raw_parent, raw_dev, raw_root, point, raw_options, _, _, fstype, source, raw_super = f
            else:
                raw_id, raw_parent, raw_dev, raw_root, point, raw_options = f[:6]
                if n < k + 4:
                    fstype = ""  # reported below, after the options (the order of the checks)
                else:
                    fstype, source = f[k + 1], f[k + 2]
                    # Old cifs (unc=\\\\server\\share with raw spaces) and WSL 9p put
                    # unescaped spaces in field 11: all after the source is the super options.
                    raw_super = f[k + 3] if n == k + 4 else " ".join(f[k + 3 :])
            options = options_of.get(raw_options)
            if options is None:
                options = _options(raw_options)
                if len(options_of) < memo_max:
                    options_of[raw_options] = options
            if not fstype:
                raise _Bad("fields missing after the separator")
            if esc:
                if "\\" in fstype:
                    fstype = unesc(fstype)
                if "\\" in source:
                    raw_source = source
                    source = source.replace("\\040", " ")  # the usual escape, without a call
                    if "\\" in source:
                        source = unesc(raw_source)
            sup = supers.get(raw_super) if len(raw_super) < super_max else None
            if sup is None:
                if '"' in raw_super or (esc and "\\" in raw_super):
                    sup = split_super(raw_super)
                else:
                    items = raw_super.split(",")
                    sup = tuple(items) if "" not in items else tuple(filter(None, items))
                if len(raw_super) < super_max:
                    if len(supers) < memo_max:
                        supers[raw_super] = sup
                    elif index < 2 * memo_max:
                        super_max = 0  # most lines missed: stop hashing them for nothing
            d = devnos.get(raw_dev)
            if d is None:
                major, colon, minor = raw_dev.partition(":")
                if not (colon and major.isdigit() and minor.isdigit() and (ascii_only or raw_dev.isascii())):
                    raise _Bad("bad MAJ:MIN")
                mj = majors.get(major)
                if mj is None:
                    mj = int(major)
                    if len(majors) < memo_max:
                        majors[major] = mj
                d = (mj, int(minor))
                if len(devnos) < devno_max:
                    devnos[raw_dev] = d
                elif index < 2 * memo_max:  # most lines missed: look no more
                    devnos, devno_max = {}, 0
            r = roots.get(raw_root)
            if r is None:
                if not raw_root:
                    raise _Bad("empty root")
                r = raw_root
                if esc and "\\" in r:
                    r = r.replace("\\040", " ")
                    if "\\" in r:
                        r = unesc(raw_root)
                if len(roots) < root_max:
                    roots[raw_root] = r
                elif index < 2 * memo_max:
                    roots, root_max = {}, 0
            if not ascii_only and not (raw_id + raw_parent).isascii():
                raise ValueError("int() takes other digits than ASCII ones")
            mnt_id = int(raw_id)
            parent = parents.get(raw_parent)
            if parent is None:
                parent = int(raw_parent)
                if len(parents) < memo_max:
                    parents[raw_parent] = parent
            if not point or (mnt_id | parent) >> 32:  # or negative, or wider than 32 bits
                raise _Bad("empty mount point, or a mount id out of range")
        except (ValueError, IndexError) as exc:  # rare: checked here, off the hot path
            text = line.lstrip()
            if not text or text[0] == "#":  # blank, or a comment in a hand-made file
                continue
            if isinstance(exc, _Bad):
                why = str(exc)
            elif isinstance(exc, IndexError):
                why = "fewer than 10 fields"
            else:
                why = "mount id is not a number"
            lineno = 1 + (index if numbers is None else numbers[index])
            if strict:
                raise ParseError(why, lineno, _raw(line)) from None
            warnings.warn(f"mountinfo line {lineno} skipped: {why}: {_raw(line)[:200]!r}", ParseWarning, stacklevel=4)
            continue
        if n_ids >= 0:
            u = ids[index] if index < n_ids else None  # type: ignore[index]
            unique[mnt_id] = u
            pu = unique.get(parent)
        if esc and "\\" in point:
            pt = point.replace("\\040", " ")
            if "\\" in pt:
                pt = unesc(point)
        else:
            pt = point
        # Unpacked into one literal: two tuple concatenations cost more.
        shared, master, pfrom, unbindable = tags
        record = (
            mnt_id, parent, u, pu, d[0], d[1], r, pt, options, fstype, source or None, sup,
            shared, master, pfrom, unbindable,
        )  # fmt: skip
        append(new(Mount, record))
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


def parse_arriving(blocks: Iterable[bytes], ids: List[int]) -> Tuple[List[Mount], bytes]:
    """``parse_with_unique_ids`` of a table parsed while it is read (``_overlap``): ``blocks``
    are its bytes in order, as they land. The records, and the whole text. The lines are the
    ones ``_decoded`` gives and parsed as though any held an escape or a byte above ASCII,
    which the whole text is not there yet to rule out; CRLF lines (a hand-made file bound over
    mountinfo) are parsed again, whole, as ``parse_mountinfo`` takes them."""
    codec = _CODEC
    seen: List[bytes] = []

    def lines() -> Iterator[List[str]]:
        tail = b""
        for block in blocks:
            seen.append(block)
            if tail:
                block = tail + block
            cut = block.rfind(b"\n")
            if cut < 0:
                tail = block
                continue
            tail = block[cut + 1 :]
            yield block[:cut].decode(codec.pivot, codec.pivot_errors).split("\n")
        yield [tail.decode(codec.pivot, codec.pivot_errors)]  # "" after a whole table's last newline

    with collector_paused():
        out = _parse(chain.from_iterable(lines()), None, False, True, False, None, False, ids)
    data = b"".join(seen)
    seen.clear()  # one copy of the text, not two, beside the records
    if b"\r\n" in data:
        return _entries(data, False, ids=ids), data
    if codec.redecode is not None:
        out = [_redecoded(m, codec.redecode) for m in out]
    return out, data


def _as_text(raw: bytes) -> str:
    return raw.decode(_CODEC.pivot, _CODEC.pivot_errors)


def find_by_id(data: bytes, mount_id: int) -> Optional[Mount]:
    """The entry with legacy id ``mount_id``, stopping at the first match."""
    want = str(mount_id)
    found = _entries(data, False, lambda f: f[0] == want, True, want.encode() + b" ")
    return found[0] if found else None


def find_at(data: bytes, point: bytes) -> List[Mount]:
    """Every entry whose mount point is exactly ``point`` (canonical bytes), in file order."""
    want = escape(point)
    text = _as_text(want)
    return _entries(data, False, lambda f: f[4] == text, False, b" " + want + b" ")


def find_under(data: bytes, top: bytes, include_self: bool) -> List[Mount]:
    """Entries whose mount point is below ``top`` component-wise (and at ``top`` if asked)."""
    want = escape(top)
    text = _as_text(want)
    prefix = text if text.endswith("/") else text + "/"

    def keep(f: List[str]) -> bool:
        if f[4] == text:
            return include_self
        return f[4].startswith(prefix)

    return _entries(data, False, keep, False, b" " + want)


def skeleton(lines: List[bytes]) -> List[Tuple[int, int, bytes]]:
    """(legacy id, parent's legacy id, raw escaped mount point) of each of the raw ``lines``
    of a table, in order, with nothing decoded and no record built: what the tree of a
    table's mounts needs. A line that does not give these three (the empty one after the
    last newline too) gets (-1, -1, b"")."""
    out: List[Tuple[int, int, bytes]] = []
    append = out.append
    for line in lines:
        f = line.split(b" ", 5)
        try:
            if len(f) == 6 and f[0].isdigit() and f[1].isdigit():
                append((int(f[0]), int(f[1]), f[4]))
                continue
        except ValueError:
            pass
        append((-1, -1, b""))
    return out


def lines_below(data: bytes, top: bytes, include_self: bool) -> List[Tuple[int, int]]:
    """(line index from 0, legacy id) of each line whose mount point is below canonical
    ``top`` component-wise (or is ``top``, if asked), found on the raw, escaped bytes: no
    line is decoded and no record built. A line whose id is no number gets id -1."""
    want = escape(top)
    prefix = want if want.endswith(b"/") else want + b"/"
    needle = b" " + want
    kept: List[Tuple[int, int]] = []
    ids: List[int] = []
    for start, end in _spans(data, needle):
        f = data[start:end].split(b" ", 5)
        if len(f) == 6 and (f[4].startswith(prefix) or (include_self and f[4] == want)):
            kept.append((start, end))
            ids.append(int(f[0]) if f[0].isdigit() else -1)
    return list(zip(_numbers(data, kept), ids))


def find_by_fstype(data: bytes, fstypes: Tuple[str, ...]) -> List[Mount]:
    """Entries whose fstype (``type`` or ``type.subtype``) is one of ``fstypes``."""
    wanted = {_as_text(escape(os.fsencode(t)).replace(b"#", b"\\043")) for t in fstypes}

    def keep(f: List[str]) -> bool:
        rest = f[5]
        cut = rest.find(" - ")
        return cut >= 0 and rest[cut + 3 :].partition(" ")[0] in wanted

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
    file, name = open_mountinfo()
    with file:
        return _read(file, name, consistent)


def open_mountinfo() -> Tuple[FileIO, str]:
    """The calling thread's mountinfo file, open, and its name (``read_mountinfo``)."""
    errors: List[str] = []
    for candidate in mountinfo_paths():
        try:
            return _open_regular(candidate), candidate
        except FileNotFoundError as exc:
            errors.append(f"{candidate}: {exc.strerror}")
    raise ProcUnavailable("cannot read mountinfo (is /proc mounted?): " + "; ".join(errors))


def changed_since_open(file: FileIO) -> Optional[bool]:
    """Has a mount been attached to or detached from the namespace of the open mountinfo
    ``file`` since it was opened (or last asked)? The kernel keeps an event count per namespace, raised by
    every attach, move and umount, and a mountinfo file polls with ``POLLPRI`` once the count
    differs from the one it saw at open (``mounts_poll()``, fs/proc_namespace.c, 2.6.15; what
    util-linux's monitor waits on). None where it cannot be asked (and after a chroot
    without ``mountprobe.preload()``, where ``select`` cannot be imported)."""
    try:
        select = load("select")
        ready = select.poll()
        ready.register(file.fileno(), select.POLLPRI)
        return bool(ready.poll(0))
    except (ImportError, OSError):
        return None


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


def _mangled(text: bytes) -> List[bytes]:
    """The ways the kernel may write ``text`` as field 9 or 10: ``mangle()`` escapes space,
    tab, newline and backslash, and ``#`` too since Linux 5.12 (fs/proc_namespace.c)."""
    once = escape(text)
    hashed = once.replace(b"#", b"\\043")
    return [once] if hashed == once else [once, hashed]


def sift(
    data: bytes,
    devnos: Optional[Iterable[Tuple[int, int]]] = None,
    source: Optional[bytes] = None,
    fstypes: Optional[Iterable[bytes]] = None,
    root: Optional[bytes] = None,
) -> Tuple[bytes, List[int]]:
    """The lines of ``data`` that may describe a mount of one of ``devnos`` (field 3), whose
    source is ``source`` (field 10, a trailing ``/`` aside), whose type is one of ``fstypes``
    or has it as its main type (field 9, ``fuse`` for ``fuse.sshfs``) and whose root is
    ``root`` (field 4), every given condition at once; and their indices (from 0). Sifted on
    the raw bytes, before anything is decoded: the needle of the rarest condition is found
    with ``bytes.find`` and only the lines holding it are split, each field compared with
    the needle escaped as the kernel escapes it. A superset: the records built from these
    lines are compared exactly after. A line that does not split into fields is kept, so
    that the parser reports it as it would in the whole table."""
    checks: List[Callable[[List[bytes]], bool]] = []
    keys: List[List[bytes]] = []
    if devnos is not None:
        wanted_devnos = {b"%d:%d" % d for d in devnos}
        keys.append([b" " + d + b" " for d in wanted_devnos])
        checks.append(lambda f: f[2] in wanted_devnos)
    if source is not None:
        bare = source.rstrip(b"/") or b"/"
        forms = _mangled(bare)
        keys.append([b" " + form for form in forms])
        starts = tuple(forms)
        checks.append(lambda f: f[6].startswith(starts))
    if fstypes is not None:
        types = [form for t in fstypes for form in _mangled(t)]
        keys.append([b" - " + t for t in types])
        wanted_types = set(types)
        checks.append(lambda f: f[5] in wanted_types or f[5].partition(b".")[0] in wanted_types)
    if root is not None:
        wanted_root = escape(root)
        keys.append([b" " + wanted_root + b" "])
        checks.append(lambda f: f[3] == wanted_root)
    if not keys:
        raise ValueError("sift() needs at least one condition")
    # Devices and sources are rare in a table; types and roots are shared by many lines.
    starts_of: Dict[int, int] = {}
    for needle in keys[0]:
        starts_of.update(_spans(data, needle))
    kept: List[bytes] = []
    spans: List[Tuple[int, int]] = []
    for start in sorted(starts_of):
        line = data[start : starts_of[start]]
        head = line.split(b" ", 5)
        cut = head[-1].find(b" - ")
        if len(head) == 6 and cut >= 0:
            fields = head[:5] + head[5][cut + 3 :].split(b" ", 2)
            if len(fields) == 8 and not all(check(fields) for check in checks):
                continue
        kept.append(line)
        spans.append((start, starts_of[start]))
    return b"\n".join(kept), _numbers(data, spans)
