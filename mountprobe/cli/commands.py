"""The commands that print mounts (find, list, info) and doctor: argparse, findmnt's columns,
aligned tables and JSON. Kept apart from ``cli.py`` so that ``is-mountpoint`` never loads
them."""

from __future__ import annotations

import os

from .output import PROG, error, flush, os_error, out

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, Tuple

    from ..model import Mount


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
    if text is None:
        return DEFAULT_COLUMNS
    extend, names = _column_names(text, ",".join(COLUMNS))
    unknown = [c for c in names if c not in COLUMNS]
    if unknown:
        raise _UsageError(f"unknown column: {', '.join(unknown)} (known: {','.join(COLUMNS)})")
    return DEFAULT_COLUMNS + names if extend else names


def _column_names(text: str, known: str) -> Tuple[bool, List[str]]:
    """``-o``: whether it adds to the default (``+COLS``), and the names it gives."""
    names = [c.strip().upper() for c in text.lstrip("+").split(",") if c.strip()]
    if not names:  # as findmnt -o '': an error, not a table of no columns
        raise _UsageError(f"-o takes column names, not {text!r} (known: {known})")
    return text.startswith("+"), names


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
        out(b" ".join(padded).rstrip() + b"\n")


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
    try:
        from _json import encode_basestring as quoted  # what json uses, without importing json
    except ImportError:  # an interpreter without the C accelerator
        from json.encoder import encode_basestring as quoted

    def cell(value: Any, numeric: bool) -> str:
        if value is None or value == "":
            return "null"
        return str(value) if numeric else quoted(value if isinstance(value, str) else str(value))

    def encoded(column: str) -> List[str]:
        """The column's cells for every mount, already JSON. Built column by column: for
        the text fields a mount always has, ``map`` over C functions does it without a
        Python call per cell (a third of the time of ``list -J`` at 10,000 mounts)."""
        field = _TEXT.get(column)
        if field is not None:
            from operator import attrgetter

            values = list(map(attrgetter(field), mounts))
            if "" not in values:  # an empty cell is null: the general way below
                return list(map(quoted, values))
        if column == "SOURCE":  # as _source(): dev[/root] for binds; null when empty
            texts = [
                source if source is None or root == "/" else f"{source}[{root}]"
                for source, root in zip([m.source for m in mounts], [m.root for m in mounts])
            ]
            return [quoted(text) if text else "null" for text in texts]
        if column == "OPTIONS":  # mounts share a few option sets: each is joined once
            seen: Dict[Tuple[Tuple[str, ...], Tuple[str, ...]], str] = {}
            out = []
            for m in mounts:
                key = (m.options, m.super_options)
                text = seen.get(key)
                if text is None:
                    text = seen[key] = cell(_options(m), False)
                out.append(text)
            return out
        get, numeric = COLUMNS[column], column in NUMERIC
        return [cell(get(m), numeric) for m in mounts]

    if not mounts:
        return '{\n   "filesystems": []\n}'
    heads = [f"         {quoted(c.lower())}: " for c in columns]
    row = "      {\n" + ",\n".join(head.replace("%", "%%") + "%s" for head in heads) + "\n      }"
    rows = [row % cells for cells in zip(*[encoded(c) for c in columns])]
    return '{\n   "filesystems": [\n' + ",\n".join(rows) + "\n   ]\n}"


# Columns that are one text field of every mount (never None; the kernel leaves none empty).
_TEXT = {"TARGET": "mountpoint", "FSTYPE": "fstype", "FSROOT": "root"}


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
    out(data + b"\n")


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


def _show(mounts: List[Mount], args: _Args, tree: bool) -> int:
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


def _doctor(args: _Args) -> int:
    from .. import api, probe
    from ..errors import MountprobeError

    caps = probe.capabilities()
    _line("kernel interfaces:")
    for iface in (caps.statx, caps.openat2, caps.name_to_handle_at, caps.listmount, caps.statmount, caps.procfs):
        _line(f"  {iface.name:<18} {iface.status:<10} {iface.detail}".rstrip())
    _line("questions (asked about /):")
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
            _line(f"  {question:<26} ERROR {exc}")
            failed = 1
            continue
        answer = api.last_answer()
        assert answer is not None
        _line(f"  {question:<26} {answer.strategy}")
        for name, why in answer.declined:
            _line(f"  {'':<26}   not {name}: {why}")
    return failed


def _line(text: str) -> None:
    out(os.fsencode(text) + b"\n")


def _pid(args: _Args) -> Optional[int]:
    if args.task is None:
        return None
    if not args.task.isdigit() or int(args.task) <= 0:
        raise _UsageError(f"{args.command}: -N takes a process id, not {args.task!r}")
    return int(args.task)


def _find(args: _Args) -> int:
    from .. import api

    return _show([api.mount_of(args.path, pid=_pid(args))], args, tree=False)


def _list(args: _Args) -> int:
    from .. import api

    pid = _pid(args)
    if args.under is None:
        mounts = api.list_mounts(pid=pid)
    else:
        mounts = api.mounts_under(args.under, include_self=True, pid=pid)
    return _show(mounts, args, tree=args.tree)


def _namespaces(args: _Args) -> int:
    from .. import mount_namespaces

    found = mount_namespaces()
    if args.json:
        import json

        rows = [
            {"ns": n.inode, "id": n.id, "mounts": n.mounts, "pids": list(n.pids), "command": n.command} for n in found
        ]
        _json(json.dumps({"namespaces": rows}, ensure_ascii=False, indent=3))
        return 0
    rows_text = [[b"NS", b"ID", b"MOUNTS", b"NPROCS", b"PID", b"COMMAND"]]
    for n in found:
        cells = [n.inode, n.id, n.mounts, len(n.pids), n.pids[0] if n.pids else None, n.command]
        rows_text.append([_cell_text(c) for c in cells])
    _aligned(rows_text)
    return 0


def _holders(args: _Args) -> int:
    """Like findmnt, 1 when nothing holds it."""
    from .. import holders

    found = holders(args.path)
    columns = _columns(args.output) if args.output is not None else ["TARGET", "SOURCE", "FSTYPE"]
    if args.json:
        import json

        rows = []
        for h in found:
            row = {"ns": h.namespace.inode, "ns-id": h.namespace.id, "pids": list(h.namespace.pids)}
            row.update(_json_row(h.mount, columns))
            rows.append(row)
        _json(json.dumps({"holders": rows}, ensure_ascii=False, indent=3))
    else:
        table = [[b"NS", b"PID", *(c.encode() for c in columns)]]
        for h in found:
            first = h.namespace.pids[0] if h.namespace.pids else None
            table.append(
                [_cell_text(h.namespace.inode), _cell_text(first), *(_cell_text(COLUMNS[c](h.mount)) for c in columns)]
            )
        _aligned(table)
    return 0 if found else 1


def _aligned(rows: List[List[bytes]]) -> None:
    widths = [max(len(_display(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        padded = [cell + b" " * (w - len(_display(cell))) for cell, w in zip(row, widths)]
        out(b" ".join(padded).rstrip() + b"\n")


def _info(args: _Args) -> int:
    from .. import api

    m = api.mount_of(args.path, pid=_pid(args))
    answer = api.last_answer()
    fields = [*m._fields, "read_only", "propagation", "devno"]
    width = max(map(len, fields))
    for name in fields:
        value = getattr(m, name)
        text = ",".join(value) if isinstance(value, tuple) else ("-" if value is None else str(value))
        out(f"{name:<{width}}  ".encode() + _cell_text(text) + b"\n")
    if answer is not None:
        _line(f"{'answered by':<{width}}  {answer.strategy}")
    return 0


# ``watch``: findmnt --poll's columns, three of them about the event rather than the mount.
WATCH_COLUMNS = ["ACTION", "TARGET", "SOURCE", "FSTYPE", "OPTIONS", "OLD-TARGET", "OLD-OPTIONS"]
_WIDTHS = {"ACTION": 8, "TARGET": 24, "SOURCE": 12, "FSTYPE": 8, "OPTIONS": 24, "OLD-TARGET": 24}


def _event_cell(event: Any, column: str) -> Any:
    if column == "ACTION":
        return event.action
    if column == "OLD-TARGET":  # like findmnt: the old place of a move or umount
        return event.old.mountpoint if event.action in ("move", "umount") else None
    if column == "OLD-OPTIONS":  # and the old options of a remount or umount
        return _options(event.old) if event.action in ("remount", "umount") else None
    return COLUMNS[column](event.mount)


def _watch_columns(text: Optional[str]) -> List[str]:
    if text is None:
        return WATCH_COLUMNS
    known = ",".join(dict.fromkeys([*WATCH_COLUMNS, *COLUMNS]))
    extend, names = _column_names(text, known)
    unknown = [c for c in names if c not in COLUMNS and c not in WATCH_COLUMNS]
    if unknown:
        raise _UsageError(f"unknown column: {', '.join(unknown)} (known: {known})")
    return WATCH_COLUMNS + names if extend else names


def _seconds(text: Optional[str]) -> Optional[float]:
    """--timeout: seconds, ``inf`` (or beyond any float) for no limit; None when not given."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:  # also nan
        raise _UsageError(f"watch: --timeout takes a number of seconds (0 or more, or inf), not {text!r}")
    return None if value == float("inf") else value


# The longest one read of the watcher waits: the loop then waits again. epoll's timeout is
# an int of milliseconds (2**31 ms, under 25 days), which a --timeout of 1e15 overflows.
_LONGEST_WAIT = 3600.0


def _watch(args: _Args) -> int:
    """Print events until --first-only or --timeout ends the watch: exit 0 when one was
    printed, 1 on an error or when the time passed without one (130 on Ctrl-C)."""
    import time

    from .. import events

    columns = _watch_columns(args.output)
    actions = set(events.ACTIONS)
    if args.action is not None:
        actions = {a.strip() for a in args.action.split(",") if a.strip()}
        if not actions or not actions <= set(events.ACTIONS):
            raise _UsageError(f"watch: --action takes some of {','.join(events.ACTIONS)}, not {args.action!r}")
    timeout = _seconds(args.timeout)
    until = None if timeout is None else time.monotonic() + timeout
    printed = 0
    with events.watch(under=args.under) as watcher:
        while True:
            left = None if until is None else until - time.monotonic()
            if left is not None and left <= 0:
                return 0 if printed else 1
            for event in watcher.read(None if left is None else min(left, _LONGEST_WAIT)):
                if event.action not in actions:
                    continue
                if args.json:
                    import json

                    row = {c.lower(): _json_value(c, _event_cell(event, c)) for c in columns}
                    _json(json.dumps(row, ensure_ascii=False))
                else:
                    if not printed:  # the header comes with the first event, as findmnt's does
                        _watch_row([c.encode() for c in columns], columns)
                    _watch_row([_cell_text(_event_cell(event, c)) for c in columns], columns)
                flush()
                printed += 1
                if args.first_only:
                    return 0


def _watch_row(cells: List[bytes], columns: List[str]) -> None:
    padded = [cell + b" " * (_WIDTHS.get(c, 0) - len(_display(cell))) for cell, c in zip(cells, columns)]
    out(b" ".join(padded).rstrip() + b"\n")


# The commands and their options, parsed by hand: argparse (with the gettext, locale and
# shutil it pulls in) costs a command 20 ms of start-up, more than the rest of ``find``.
# command: (help, positional metavar or "", {option: (attribute, metavar or "" for a flag, help)})
_OUTPUT = {
    "-J": ("json", "", 'findmnt\'s JSON ({"filesystems": [...]})'),
    "--json": ("json", "", ""),
    "-o": ("output", "COLS", "columns, comma-separated; +COLS adds to the default: " + ",".join(COLUMNS)),
    "--output": ("output", "COLS", ""),
}
_TASK = {
    "-N": ("task", "PID", "in the mount namespace of process PID, paths resolved in its root"),
    "--task": ("task", "PID", ""),
}
COMMAND_SPECS: Dict[str, Tuple[str, str, Dict[str, Tuple[str, str, str]]]] = {
    "is-mountpoint": ("is PATH a mount point (like mountpoint(1)); see is-mountpoint -h", "PATH", {}),
    "find": ("the mount that holds PATH (like findmnt --target)", "PATH", {**_OUTPUT, **_TASK}),
    "list": (
        "every mount, or those under PATH (like findmnt, findmnt --submounts)",
        "",
        {
            "--under": ("under", "PATH", "only PATH's mount and the mounts below PATH"),
            "--tree": ("tree", "", "as a tree of parents and children"),
            **_OUTPUT,
            **_TASK,
        },
    ),
    "info": ("every field of the mount that holds PATH", "PATH", _TASK),
    "namespaces": (
        "every mount namespace with its id, mounts and processes (like lsns -t mnt)",
        "",
        {"-J": ("json", "", '{"namespaces": [...]}'), "--json": ("json", "", "")},
    ),
    "holders": (
        "every namespace and mount that keeps PATH's filesystem or the DEVICE mounted; exit 1 if none",
        "PATH|DEVICE",
        {**_OUTPUT, "-J": ("json", "", '{"holders": [...]}')},
    ),
    "watch": (
        "print mount events as they happen (like findmnt --poll); exit 0 once one was printed",
        "",
        {
            "--under": ("under", "PATH", "only mounts at or below PATH"),
            "--action": ("action", "LIST", "only these actions: mount,umount,remount,move"),
            "--first-only": ("first_only", "", "stop after the first event"),
            "--timeout": ("timeout", "S", "stop after S seconds, inf for never (exit 1 if no event was printed)"),
            "-J": ("json", "", "one JSON object per event and line"),
            "--json": ("json", "", ""),
            "-o": ("output", "COLS", "columns, comma-separated; +COLS adds to " + ",".join(WATCH_COLUMNS)),
            "--output": ("output", "COLS", ""),
        },
    ),
    "doctor": ("which kernel interfaces work here, and which strategy answers each question", "", {}),
}


class _Args:
    """The parsed command line: ``command``, ``path``, and one attribute per option."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.path = ""  # always given where the command takes a PATH
        self.json = self.tree = self.first_only = False
        self.output: Optional[str] = None
        self.under: Optional[str] = None
        self.action: Optional[str] = None
        self.timeout: Optional[str] = None
        self.task: Optional[str] = None


class _Exit(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def _usage(command: str) -> str:
    _, positional, options = COMMAND_SPECS[command]
    shown = [o for o in options if options[o][2]]
    parts = [f"[{o} {options[o][1]}]" if options[o][1] else f"[{o}]" for o in shown]
    return " ".join([f"usage: {PROG} {command}", *parts, positional]).rstrip()


def _help(command: Optional[str]) -> str:
    if command is None:
        lines = [f"usage: {PROG} [--version] COMMAND ...", "", "Answers about Linux mounts from the kernel.", ""]
        lines += ["commands:", *(f"  {name:<14} {spec[0]}" for name, spec in COMMAND_SPECS.items())]
        return "\n".join(lines) + "\n"
    text, _, options = COMMAND_SPECS[command]
    long_of = {attribute: o for o, (attribute, _, _) in options.items() if o.startswith("--")}
    lines = [_usage(command), "", text[0].upper() + text[1:] + ".", "", "options:"]
    lines.append("  -h, --help         show this help")
    for option, (attribute, metavar, about) in options.items():
        if about:
            names = option if option.startswith("--") else f"{option}, {long_of.get(attribute, option)}"
            names += f" {metavar}" if metavar else ""
            lines.append(f"  {names:<18} {about}")
    return "\n".join(lines) + "\n"


def _fail(message: str) -> NoReturn:
    raise _Exit(error(f"{message} (see {PROG} --help)"))


def _parse(argv: Sequence[str]) -> _Args:
    """The command line, like argparse would read it (``--opt=VALUE``, ``-oVALUE``, ``--``)."""
    if not argv:
        _fail("a COMMAND is required")
    if argv[0] in ("-h", "--help"):
        out(_help(None).encode())
        raise _Exit(0)
    if argv[0] == "--version":
        from .. import __version__

        out(f"{PROG} {__version__}\n".encode())
        raise _Exit(0)
    command = argv[0]
    if command not in COMMAND_SPECS or command == "is-mountpoint":
        _fail(f"unknown command {command!r} (choose from {', '.join(COMMAND_SPECS)})")
    _, positional, options = COMMAND_SPECS[command]
    args = _Args(command)
    words = list(argv[1:])
    positionals: List[str] = []
    while words:
        word = words.pop(0)
        if word == "--":
            positionals += words
            break
        if word in ("-h", "--help"):
            out(_help(command).encode())
            raise _Exit(0)
        if not word.startswith("-") or word == "-":
            positionals.append(word)
            continue
        name, eq, value = word.partition("=") if word.startswith("--") else (word[:2], "", word[2:])
        if name not in options:
            _fail(f"{command}: unknown option {name}")
        attribute, metavar, _ = options[name]
        if not metavar:
            if eq or value:
                _fail(f"{command}: option {name} takes no value")
            setattr(args, attribute, True)
            continue
        if not (eq or value):
            if not words:
                _fail(f"{command}: option {name} needs {metavar}")
            value = words.pop(0)
        setattr(args, attribute, value)
    if positional and len(positionals) != 1:
        _fail(
            f"{command}: expected one {positional}" if not positionals else f"{command}: unexpected {positionals[1]!r}"
        )
    if not positional and positionals:
        _fail(f"{command}: unexpected argument {positionals[0]!r}")
    args.path = positionals[0] if positionals else ""
    return args


def run(argv: Sequence[str]) -> int:
    try:
        args = _parse(argv)
    except _Exit as done:  # help, version, or a usage error already printed
        return done.status
    commands = {"find": _find, "list": _list, "info": _info, "doctor": _doctor, "watch": _watch}
    run = {**commands, "namespaces": _namespaces, "holders": _holders}[args.command]
    from ..errors import MountprobeError

    # The PATH the command was given, if any, to name in an error that names no file.
    path = args.path if COMMAND_SPECS[args.command][1] else args.under
    try:
        return run(args)
    except _UsageError as exc:
        return error(str(exc))
    except OSError as exc:
        return error(os_error(exc, path, args.command))
    except ValueError as exc:
        return error(f"{path!r}: {exc}" if path is not None else f"{args.command}: {exc}")
    except MountprobeError as exc:
        return error(str(exc) or f"{args.command}: {type(exc).__name__}")
