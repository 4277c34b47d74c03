"""The two layouts of what the commands print: a table of cells aligned in columns (the one
aligner), and JSON (findmnt's ``{"filesystems": [...]}`` written fast, and the writer that
keeps the bytes of names that are not UTF-8)."""

from __future__ import annotations

from .output import out

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Sequence

    from ..model import Mount
    from .columns import Column


def row(cells: Sequence[bytes], widths: Sequence[int], right: Sequence[bool] = ()) -> None:
    """One line of a table: each cell padded to its column's width, as it shows on a
    terminal (a UTF-8 name counts its characters), on the left in a column aligned right;
    the last cell, aligned left, is not padded (libsmartcols)."""
    padded = []
    last = len(cells) - 1
    for i, (cell, width) in enumerate(zip(cells, widths)):
        fill = b" " * (width - len(_shown(cell)))
        if right and right[i]:
            padded.append(fill + cell)
        else:
            padded.append(cell if i == last else cell + fill)
    out(b" ".join(padded) + b"\n")


def table(rows: List[List[bytes]], headings: bool = True, right: Sequence[bool] = ()) -> None:
    """``rows`` (the header first) with every column as wide as its widest cell, the
    header's counted even where it is not printed (``headings=False``), as findmnt ``-n``;
    ``right``: which columns are aligned right (findmnt's numbers)."""
    widths = [max(len(_shown(r[i])) for r in rows) for i in range(len(rows[0]))]
    for cells in rows if headings else rows[1:]:
        row(cells, widths, right)


def raw(rows: List[List[bytes]]) -> None:
    """findmnt ``--raw``: the cells (already encoded) of each row separated by one space."""
    out(b"".join([b" ".join(cells) + b"\n" for cells in rows]))


def pairs(keys: List[bytes], rows: List[List[bytes]]) -> None:
    """findmnt ``--pairs``: ``KEY="value"`` for each cell (values already quoted)."""
    out(b"".join([b" ".join([k + b"=" + v for k, v in zip(keys, cells)]) + b"\n" for cells in rows]))


def _shown(cell: bytes) -> str:
    return cell.decode("utf-8", "replace")


def filesystems(mounts: List[Mount], columns: List[Column]) -> str:
    """What ``json.dumps({"filesystems": rows}, ensure_ascii=False, indent=3)`` writes for
    the rows of ``mounts``, built line by line with the C string encoder: with an indent,
    json.dumps runs in pure Python, several times slower on a long list."""
    try:
        from _json import encode_basestring as quoted  # what json uses, without importing json
    except ImportError:  # an interpreter without the C accelerator
        from json.encoder import encode_basestring as quoted

    def cell(value: Any, number: bool) -> str:
        if value is None or value == "":
            return "null"
        return str(value) if number else quoted(value if isinstance(value, str) else str(value))

    def encoded(column: Column) -> List[str]:
        """The column's cells for every mount, already JSON. Built column by column, so
        that a column's ``field`` or ``json_cells`` does it without a Python call per cell."""
        if column.field is not None:
            from operator import attrgetter

            values = list(map(attrgetter(column.field), mounts))
            if "" not in values:  # an empty cell is null: the general way below
                return list(map(quoted, values))
        if column.json_cells is not None:
            return column.json_cells(mounts, quoted)
        get, number = column.cell, column.number
        return [cell(get(m), number) for m in mounts]

    if not mounts:
        return '{\n   "filesystems": []\n}'
    heads = [f"         {quoted(c.key)}: " for c in columns]
    template = "      {\n" + ",\n".join(head.replace("%", "%%") + "%s" for head in heads) + "\n      }"
    rows = [template % cells for cells in zip(*[encoded(c) for c in columns])]
    return '{\n   "filesystems": [\n' + ",\n".join(rows) + "\n   ]\n}"


def dump(value: Any, indent: Optional[int] = 3) -> None:
    """``value`` as JSON, written by ``write``."""
    import json

    write(json.dumps(value, ensure_ascii=False, indent=indent))


def write(text: str) -> None:
    """JSON text and a newline on stdout."""
    # Bytes that are not UTF-8 live in str as lone surrogates U+DC80..U+DCFF (PEP 383); write
    # them as \udcXX escapes, so that the output stays valid UTF-8 JSON and Python's
    # json.loads plus os.fsencode give back the exact bytes. Only if there are any: the
    # encoder finds them, where a scan of every text would slow down every listing.
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        import re

        text = re.sub("[\udc80-\udcff]", lambda s: f"\\u{ord(s.group()):04x}", text)
        data = text.encode("utf-8")
    out(data + b"\n")
