"""The commands that print mounts (find, list, info) and doctor: argparse, findmnt's columns,
aligned tables and JSON. Kept apart from ``cli.py`` so that ``is-mountpoint`` never loads
them."""

from __future__ import annotations

import os
import sys

from .cli import PROG, _error, _os_error, _out

TYPE_CHECKING = False
if TYPE_CHECKING:
    from argparse import ArgumentParser, Namespace
    from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence

    from .model import Mount


# findmnt's columns, by name: how each cell is computed from a Mount.
def _source(m: Mount) -> Optional[str]:
    if m.source is not None and m.root != "/":
        return f"{m.source}[{m.root}]"  # findmnt shows bind mounts as dev[/root]
    return m.source


def _options(m: Mount) -> str:
    # findmnt's OPTIONS: the per-mount options, then the superblock's without ro/rw.
    return ",".join([*m.options, *(o for o in m.super_options if o not in ("ro", "rw"))])


COLUMNS: Dict[str, Callable[[Mount], Any]] = {
    "TARGET": lambda m: m.mountpoint,
    "SOURCE": _source,
    "FSTYPE": lambda m: m.fstype,
    "OPTIONS": _options,
    "FSROOT": lambda m: m.root,
    "ID": lambda m: m.id,
    "PARENT": lambda m: m.parent_id,
    "UNIQ-ID": lambda m: m.unique_id,
    "MAJ:MIN": lambda m: m.devno,
    "PROPAGATION": lambda m: m.propagation,
    "VFS-OPTIONS": lambda m: ",".join(m.options),
    "FS-OPTIONS": lambda m: ",".join(m.super_options),
}
DEFAULT_COLUMNS = ["TARGET", "SOURCE", "FSTYPE", "OPTIONS"]
NUMERIC = {"ID", "PARENT", "UNIQ-ID"}


def _columns(text: Optional[str]) -> List[str]:
    if not text:
        return DEFAULT_COLUMNS
    extend = text.startswith("+")
    names = [c.strip().upper() for c in text.lstrip("+").split(",") if c.strip()]
    unknown = [c for c in names if c not in COLUMNS]
    if unknown:
        raise _UsageError(f"unknown column: {', '.join(unknown)} (known: {','.join(COLUMNS)})")
    return DEFAULT_COLUMNS + names if extend else names


class _UsageError(Exception):
    pass


def _cell_text(value: Any) -> bytes:
    """A table cell: names as their bytes, with unsafe bytes written \\xNN like findmnt."""
    if value is None:
        return b""
    raw = os.fsencode(value) if isinstance(value, str) else str(value).encode()
    return b"".join(bytes((c,)) if 0x20 <= c < 0x7F or (c >= 0x80 and _utf8_ok(raw)) else b"\\x%02x" % c for c in raw)


def _utf8_ok(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _table(mounts: List[Mount], columns: List[str], depth: Optional[Dict[int, str]] = None) -> None:
    rows = [[c.encode() for c in columns]]
    for m in mounts:
        cells = [_cell_text(COLUMNS[c](m)) for c in columns]
        if depth is not None:
            cells[0] = depth[id(m)].encode() + cells[0]
        rows.append(cells)
    widths = [max(len(_display(r[i])) for r in rows) for i in range(len(columns))]
    for row in rows:
        padded = [cell + b" " * (w - len(_display(cell))) for cell, w in zip(row, widths)]
        _out(b" ".join(padded).rstrip() + b"\n")


def _display(cell: bytes) -> str:
    return cell.decode("utf-8", "replace")


def _json_value(column: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    return value if column in NUMERIC else str(value)


def _json_row(m: Mount, columns: List[str]) -> Dict[str, Any]:
    return {c.lower(): _json_value(c, COLUMNS[c](m)) for c in columns}


def _json_flat(mounts: List[Mount], columns: List[str]) -> str:
    """What ``json.dumps({"filesystems": rows}, ensure_ascii=False, indent=3)`` writes for
    the rows of ``mounts``, built line by line with the C string encoder: with an indent,
    json.dumps runs in pure Python, several times slower at 10,000 rows."""
    from json.encoder import encode_basestring as quoted  # the C one where there is one

    cells = [(f"         {quoted(c.lower())}: ", COLUMNS[c], c in NUMERIC) for c in columns]

    def cell(value: Any, numeric: bool) -> str:
        if value is None or value == "":
            return "null"
        return str(value) if numeric else quoted(value if isinstance(value, str) else str(value))

    if not mounts:
        return '{\n   "filesystems": []\n}'
    row = "      {\n" + ",\n".join(head.replace("%", "%%") + "%s" for head, _, _ in cells) + "\n      }"
    rows = [row % tuple([cell(get(m), numeric) for _, get, numeric in cells]) for m in mounts]
    return '{\n   "filesystems": [\n' + ",\n".join(rows) + "\n   ]\n}"


def _json(text: str) -> None:
    # Bytes that are not UTF-8 live in str as lone surrogates U+DC80..U+DCFF (PEP 383); write
    # them as \udcXX escapes, so that the output stays valid UTF-8 JSON and Python's
    # json.loads plus os.fsencode give back the exact bytes. Only if there are any: the
    # encoder finds them, where a scan would cost 8 ms at 10,000 mounts.
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        import re

        text = re.sub("[\udc80-\udcff]", lambda s: f"\\u{ord(s.group()):04x}", text)
        data = text.encode("utf-8")
    _out(data + b"\n")


def _tree(mounts: List[Mount]) -> tuple[List[Mount], Dict[int, List[Mount]]]:
    ids = {m.id for m in mounts}
    children: Dict[int, List[Mount]] = {}
    roots: List[Mount] = []
    for m in mounts:
        if m.parent_id in ids and m.parent_id != m.id:
            children.setdefault(m.parent_id, []).append(m)
        else:
            roots.append(m)
    return roots, children


def _show(mounts: List[Mount], args: Namespace, tree: bool) -> int:
    columns = _columns(args.output)
    if not tree:
        if args.json:
            _json(_json_flat(mounts, columns))
        else:
            _table(mounts, columns)
        return 0
    roots, children = _tree(mounts)
    if args.json:

        def nest(m: Mount) -> Dict[str, Any]:
            row = _json_row(m, columns)
            if m.id in children:
                row["children"] = [nest(c) for c in children[m.id]]
            return row

        import json

        _json(json.dumps({"filesystems": [nest(m) for m in roots]}, ensure_ascii=False, indent=3))
        return 0
    ordered: List[Mount] = []
    prefix: Dict[int, str] = {}

    def walk(m: Mount, lead: str, glyph: str) -> None:
        ordered.append(m)
        prefix[id(m)] = lead + glyph
        kids = children.get(m.id, [])
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            walk(kid, lead + ("" if not glyph else ("  " if glyph == "└─" else "│ ")), "└─" if last else "├─")

    for root in roots:
        walk(root, "", "")
    _table(ordered, columns, prefix)
    return 0


def _doctor(args: Namespace) -> int:
    from . import api, probe
    from .errors import MountprobeError

    caps = probe.capabilities()
    print("kernel interfaces:")
    for iface in (caps.statx, caps.openat2, caps.name_to_handle_at, caps.listmount, caps.statmount, caps.procfs):
        print(f"  {iface.name:<18} {iface.status:<10} {iface.detail}".rstrip())
    print("questions (asked about /):")
    asks: Dict[str, Callable[[], object]] = {
        "is_mountpoint": lambda: api.is_mountpoint("/"),
        "is_mountpoint(bind=False)": lambda: api.is_mountpoint("/", bind=False),
        "mount_of": lambda: api.mount_of("/"),
        "mount_at": lambda: api.mount_at("/"),
        "mounts_under": lambda: api.mounts_under("/proc"),
        "list_mounts": lambda: api.list_mounts(),
    }
    failed = 0
    for question, ask in asks.items():
        try:
            ask()
        except (MountprobeError, OSError) as exc:
            print(f"  {question:<26} ERROR {exc}")
            failed = 1
            continue
        answer = api.last_answer()
        assert answer is not None
        print(f"  {question:<26} {answer.strategy}")
        for name, why in answer.declined:
            print(f"  {'':<26}   not {name}: {why}")
    return failed


def _find(args: Namespace) -> int:
    from . import api

    return _show([api.mount_of(args.path)], args, tree=False)


def _list(args: Namespace) -> int:
    from . import api

    mounts = api.list_mounts() if args.under is None else api.mounts_under(args.under, include_self=True)
    return _show(mounts, args, tree=args.tree)


def _info(args: Namespace) -> int:
    from . import api

    m = api.mount_of(args.path)
    answer = api.last_answer()
    fields = [*m._fields, "read_only", "propagation", "devno"]
    width = max(map(len, fields))
    for name in fields:
        value = getattr(m, name)
        text = ",".join(value) if isinstance(value, tuple) else ("-" if value is None else str(value))
        _out(f"{name:<{width}}  ".encode() + _cell_text(text) + b"\n")
    if answer is not None:
        print(f"{'answered by':<{width}}  {answer.strategy}")
    return 0


def _parser() -> ArgumentParser:
    import argparse

    from . import __version__

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
            sys.stderr.write(f"{self.prog}: {message} (see {self.prog} --help)\n")
            raise SystemExit(2)

    parser = Parser(prog=PROG, description="Answers about Linux mounts from the kernel.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    commands.add_parser("is-mountpoint", help="is PATH a mount point (like mountpoint(1)); see is-mountpoint -h")

    def output(p: ArgumentParser) -> None:
        p.add_argument("-J", "--json", action="store_true", help='findmnt\'s JSON ({"filesystems": [...]})')
        p.add_argument(
            "-o", "--output", metavar="COLS", help=f"columns, comma-separated, +COLS adds: {','.join(COLUMNS)}"
        )

    find = commands.add_parser("find", help="the mount that holds PATH (like findmnt --target)")
    find.add_argument("path", metavar="PATH")
    output(find)
    listing = commands.add_parser("list", help="every mount, or those under PATH (like findmnt, findmnt --submounts)")
    listing.add_argument("--under", metavar="PATH", help="only PATH's mount and the mounts below PATH")
    listing.add_argument("--tree", action="store_true", help="as a tree of parents and children")
    output(listing)
    info = commands.add_parser("info", help="every field of the mount that holds PATH")
    info.add_argument("path", metavar="PATH")
    commands.add_parser("doctor", help="which kernel interfaces work here, and which strategy answers each question")
    return parser


def run(argv: Sequence[str]) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # argparse printed usage or help already
        return 0 if exit.code == 0 else 1
    run = {"find": _find, "list": _list, "info": _info, "doctor": _doctor}[args.command]
    import signal

    from .errors import MountprobeError

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `mountprobe list | head` ends quietly
    path = getattr(args, "path", None) or getattr(args, "under", None) or ""
    try:
        return run(args)
    except _UsageError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(_os_error(exc, path))
    except ValueError as exc:
        return _error(f"{path!r}: {exc}")
    except MountprobeError as exc:
        return _error(str(exc))
