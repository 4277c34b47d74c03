"""The columns of the commands that print mounts, findmnt's: one ``Column`` entry per column
in ``COLUMNS`` (its header, JSON key and type, and how its cell comes from a ``Mount``), the
cells as table text, and the one reader of ``-o COLS`` (list, find, holders and watch).

A new column is one entry in ``COLUMNS``: every command that prints mounts, ``-o`` and the
help then know it, and ``watch`` shows it for the event's mount.
"""

from __future__ import annotations

import os
from operator import attrgetter

from .output import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Sequence

    from .. import Event
    from ..model import Mount

    JsonCells = Callable[[List[Mount], Callable[[str], str]], List[str]]


class Column:
    """One column: ``header`` heads it in a table and is the name ``-o`` takes; ``key`` names
    it in JSON (the header in lower case, as findmnt's); ``number``: its JSON cells are
    numbers, not strings; ``cell`` gives its value for one row (None, or "", for an empty
    cell: JSON null).

    Two ways for the JSON of many mounts to skip a Python call per cell: ``field``, the
    ``Mount`` attribute the cell is, where that is a text every mount has; ``json_cells``,
    the column's JSON cells for many mounts at once, given the string encoder."""

    __slots__ = ("aligned", "cell", "field", "header", "json_cells", "key", "number", "right")

    def __init__(
        self,
        header: str,
        cell: Optional[Callable[[Any], Any]] = None,
        *,
        field: Optional[str] = None,
        number: bool = False,
        json_cells: Optional[JsonCells] = None,
        right: bool = False,
        aligned: Optional[Callable[[Any], Any]] = None,
    ) -> None:
        self.header = header
        self.key = header.lower()
        self.cell: Callable[[Any], Any] = cell if cell is not None else attrgetter(field or "")
        self.field = field
        self.number = number
        self.json_cells = json_cells
        self.right = right  # aligned right in a table, as findmnt's SCOLS_FL_RIGHT columns
        self.aligned = aligned  # the value in an aligned table, where it differs (MAJ:MIN)

    def text(self, row: Any) -> bytes:
        """The cell of ``row`` in an aligned table."""
        return cell_text((self.aligned or self.cell)(row))

    def json(self, row: Any) -> Any:
        """The JSON value of ``row``'s cell, for ``json.dumps``."""
        value = self.cell(row)
        if value is None or value == "":
            return None
        return value if self.number else str(value)


def _source(m: Mount) -> Optional[str]:
    if m.source is not None and m.root != "/":
        return f"{m.source}[{m.root}]"  # findmnt shows bind mounts as dev[/root]
    return m.source


def _sources_json(mounts: List[Mount], quoted: Callable[[str], str]) -> List[str]:
    """``_source`` of every mount, as JSON."""
    texts = [
        source if source is None or root == "/" else f"{source}[{root}]"
        for source, root in zip([m.source for m in mounts], [m.root for m in mounts])
    ]
    return [quoted(text) if text else "null" for text in texts]


def option_items(m: Mount) -> List[str]:
    """The items of findmnt's OPTIONS: the per-mount options, then the superblock's
    without ro/rw."""
    return [*m.options, *(o for o in m.super_options if o not in ("ro", "rw"))]


def _options(m: Mount) -> str:
    return ",".join(option_items(m))


def _options_json(mounts: List[Mount], quoted: Callable[[str], str]) -> List[str]:
    """``_options`` of every mount, as JSON: mounts share a few option sets, each is joined
    and encoded once."""
    seen: Dict[Any, str] = {}
    out = []
    for m in mounts:
        key = (m.options, m.super_options)
        text = seen.get(key)
        if text is None:
            options = _options(m)
            text = seen[key] = quoted(options) if options else "null"
        out.append(text)
    return out


def _table(*columns: Column) -> Dict[str, Column]:
    return {c.header: c for c in columns}


# TARGET, FSTYPE and FSROOT are text the kernel never leaves empty.
COLUMNS = _table(
    Column("TARGET", field="mountpoint"),
    Column("SOURCE", _source, json_cells=_sources_json),
    Column("FSTYPE", field="fstype"),
    Column("OPTIONS", _options, json_cells=_options_json),
    Column("FSROOT", field="root"),
    Column("ID", attrgetter("id"), number=True, right=True),
    Column("PARENT", attrgetter("parent_id"), number=True, right=True),
    Column("UNIQ-ID", attrgetter("unique_id"), number=True, right=True),
    # findmnt lines the colons up in a table ("%3u:%-3u"), and writes "%u:%u" elsewhere.
    Column("MAJ:MIN", attrgetter("devno"), aligned=lambda m: f"{m.major:3}:{m.minor:<3}"),
    Column("PROPAGATION", attrgetter("propagation")),
    Column("VFS-OPTIONS", lambda m: ",".join(m.options)),
    Column("FS-OPTIONS", lambda m: ",".join(m.super_options)),
)
DEFAULT_COLUMNS = ["TARGET", "SOURCE", "FSTYPE", "OPTIONS"]
HOLDERS_COLUMNS = ["TARGET", "SOURCE", "FSTYPE"]  # after the namespace's NS and PID


# ``watch``: findmnt --poll's columns, three of them about the event rather than the mount;
# every other column is the event's mount's.
def _old_target(event: Event) -> Optional[str]:
    # like findmnt: the old place of a move or umount
    if event.old is None or event.action not in ("move", "umount"):
        return None
    return event.old.mountpoint


def _old_options(event: Event) -> Optional[str]:
    # and the old options of a remount or umount
    if event.old is None or event.action not in ("remount", "umount"):
        return None
    return _options(event.old)


def _of_mount(column: Column) -> Column:
    cell = column.cell
    return Column(column.header, lambda event: cell(event.mount), number=column.number)


WATCH_COLUMNS = ["ACTION", "TARGET", "SOURCE", "FSTYPE", "OPTIONS", "OLD-TARGET", "OLD-OPTIONS"]
_EVENT_ONLY = _table(
    Column("ACTION", attrgetter("action")), Column("OLD-TARGET", _old_target), Column("OLD-OPTIONS", _old_options)
)
EVENT_COLUMNS = {
    name: _EVENT_ONLY[name] if name in _EVENT_ONLY else _of_mount(COLUMNS[name])
    for name in dict.fromkeys([*WATCH_COLUMNS, *COLUMNS])
}


def parse(text: Optional[str], default: Sequence[str], table: Dict[str, Column] = COLUMNS) -> List[Column]:
    """``-o COLS``: the columns of ``table`` it names, after ``default`` when it starts with
    ``+``; ``default`` when ``text`` is None (no ``-o``)."""
    if text is None:
        return [table[name] for name in default]
    known = ",".join(table)
    names = [c.strip().upper() for c in text.lstrip("+").split(",") if c.strip()]
    if not names:  # as findmnt -o '': an error, not a table of no columns
        raise UsageError(f"-o takes column names, not {text!r} (known: {known})")
    unknown = [c for c in names if c not in table]
    if unknown:
        raise UsageError(f"unknown column: {', '.join(unknown)} (known: {known})")
    return [table[name] for name in ([*default, *names] if text.startswith("+") else names)]


def cell_text(value: Any) -> bytes:
    """A table cell: names as their bytes, with unsafe bytes written \\xNN like findmnt."""
    if value is None:
        return b""
    raw = os.fsencode(value) if isinstance(value, str) else str(value).encode()
    return b"".join(bytes((c,)) if 0x20 <= c < 0x7F or (c >= 0x80 and _utf8_ok(raw)) else b"\\x%02x" % c for c in raw)


def _cell_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    return os.fsencode(value) if isinstance(value, str) else str(value).encode()


# findmnt -r (libsmartcols fputs_nonblank): blanks, the backslash and every byte that is not
# printable ASCII as \xNN; -P (fputs_quoted): the same but blanks, and ", \, `, $ too.
_RAW = [bytes((c,)) if 0x20 < c < 0x7F and c != 0x5C else b"\\x%02x" % c for c in range(256)]
_PAIR = [bytes((c,)) if 0x20 <= c < 0x7F and c not in b'"\\`$' else b"\\x%02x" % c for c in range(256)]


def raw_text(value: Any) -> bytes:
    """A cell of findmnt's ``--raw`` output."""
    table = _RAW
    return b"".join([table[c] for c in _cell_bytes(value)])


def pair_text(value: Any) -> bytes:
    """The quoted value of a cell of findmnt's ``--pairs`` output."""
    table = _PAIR
    return b'"' + b"".join([table[c] for c in _cell_bytes(value)]) + b'"'


def _utf8_ok(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
