"""The commands other than ``is-mountpoint``: ``run`` reads the command line and runs one of
the handlers (find, list, info, namespaces, holders, doctor; watch is in ``watch.py``), and
reports what goes wrong as one line. Kept apart from ``cli/__init__.py`` so that
``is-mountpoint`` never loads them."""

from __future__ import annotations

from . import columns, formats
from .options import Exit, parse, takes_path
from .output import UsageError, error, line, os_error, out

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

    from ..model import Mount
    from .options import Args

    T = TypeVar("T")


def _show(mounts: List[Mount], args: Args, tree: bool) -> int:
    """Print ``mounts`` in the layout ``args`` asks for; like findmnt, nothing at all and
    status 1 when there is nothing to print."""
    shown = columns.parse(args.output, columns.DEFAULT_COLUMNS)
    if not mounts:
        return 1
    tree = tree and not (args.list or args.raw or args.pairs)
    headings = not args.noheadings
    if args.raw or args.pairs:
        values = [[c.cell(m) for c in shown] for m in mounts]
        if args.raw:
            heads = [[columns.raw_text(c.header) for c in shown]] if headings else []
            formats.raw(heads + [[columns.raw_text(v) for v in row] for row in values])
        else:
            formats.pairs([c.header.encode() for c in shown], [[columns.pair_text(v) for v in row] for row in values])
        return 0
    if not tree:
        if args.json:
            formats.write(formats.filesystems(mounts, shown))
        else:
            formats.table(_rows(mounts, shown), headings, [c.right for c in shown])
        return 0
    roots, children = _tree(mounts)
    if args.json:

        def nest(m: Mount) -> Dict[str, Any]:
            row = {c.key: c.json(m) for c in shown}
            if m.id in children:
                row["children"] = [nest(c) for c in children[m.id]]
            return row

        formats.dump({"filesystems": [nest(m) for m in roots]})
        return 0
    ordered: List[Mount] = []
    prefix: List[bytes] = []

    def walk(m: Mount, lead: str, glyph: str) -> None:
        ordered.append(m)
        prefix.append((lead + glyph).encode())
        kids = children.get(m.id, [])
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            walk(kid, lead + ("" if not glyph else ("  " if glyph == "└─" else "│ ")), "└─" if last else "├─")

    for root in roots:
        walk(root, "", "")
    rows = _rows(ordered, shown)
    for cells, lead in zip(rows[1:], prefix):
        cells[0] = lead + cells[0]
    formats.table(rows, headings, [c.right for c in shown])
    return 0


def _rows(mounts: List[Mount], shown: List[columns.Column]) -> List[List[bytes]]:
    """The table of ``mounts``: the header, then a row of cells per mount."""
    return [[c.header.encode() for c in shown], *([c.text(m) for c in shown] for m in mounts)]


def _tree(mounts: List[Mount]) -> Tuple[List[Mount], Dict[int, List[Mount]]]:
    ids = {m.id for m in mounts}
    children: Dict[int, List[Mount]] = {}
    roots: List[Mount] = []
    for m in mounts:
        if m.parent_id in ids and m.parent_id != m.id:
            children.setdefault(m.parent_id, []).append(m)
        else:
            roots.append(m)
    return roots, children


def _pid(args: Args) -> Optional[int]:
    if args.task is None:
        return None
    if not args.task.isdigit() or int(args.task) <= 0:
        raise UsageError(f"{args.command}: -N takes a process id, not {args.task!r}")
    return int(args.task)


def _filtered(args: Args) -> bool:
    return (
        any(v is not None for v in (args.types, args.source, args.options, args.mountpoint)) or args.real or args.pseudo
    )


def _place(path: str, live: bool) -> str:
    """A path as findmnt compares it with mount points: canonical where it exists here (a
    saved table's paths may not), else made absolute."""
    import os

    if live or os.path.lexists(path):
        return os.path.realpath(path)
    return os.path.normpath(os.path.abspath(path))


def _sifted(mounts: List[Mount], args: Args) -> List[Mount]:
    """findmnt's filters (``-t``, ``-O``, ``--real``/``--pseudo``, ``-M``, and ``-S`` on a
    saved table) on the records; the library has sifted by ``-S`` and ``-t`` already."""
    if not _filtered(args):
        return mounts
    from . import match

    point = None if args.mountpoint is None else _place(args.mountpoint, args.tab_file is None)
    source = None if args.source is None or args.tab_file is None else args.source
    found = []
    for m in mounts:
        if args.types is not None and not match.match_fstype(m.fstype, args.types):
            continue
        if args.options is not None and not match.match_options(columns.option_items(m), args.options):
            continue
        if (args.real and m.fstype in match.PSEUDO) or (args.pseudo and m.fstype not in match.PSEUDO):
            continue
        if point is not None and m.mountpoint != point:
            continue
        if source is not None and (m.source or "").rstrip("/") != source.rstrip("/"):
            continue
        found.append(m)
    return found


def _saved_table(args: Args) -> List[Mount]:
    """``-F FILE``: the records of a saved mountinfo, each field from the file alone."""
    from .. import mountinfo

    if args.task is not None:
        raise UsageError(f"{args.command}: -F and -N are mutually exclusive")
    assert args.tab_file is not None
    data = mountinfo.read_mountinfo(args.tab_file)
    return _one_line_warnings(lambda: mountinfo.parse_mountinfo(data))


def _types(args: Args) -> Optional[Tuple[str, ...]]:
    from . import match

    return None if args.types is None else match.positive_types(args.types)


def _find(args: Args) -> int:
    from .. import api

    if args.tab_file is not None:
        from .. import mountinfo

        table = _saved_table(args)
        at = _place(args.path, False)
        if args.mountpoint is not None:
            found = mountinfo.topmost([m for m in table if m.mountpoint == at])
        else:
            found = _longest_prefix(table, at)
        return _show(_sifted([found] if found else [], args), args, tree=False)
    if args.mountpoint is not None:
        held = api.mount_at(args.path, pid=_pid(args))
        mounts = [held] if held is not None else []
    else:
        mounts = [api.mount_of(args.path, pid=_pid(args))]
    if args.source is not None:  # what is_mounted means by the source
        ids = {m.id for m in api.list_mounts(source=args.source, pid=_pid(args))}
        mounts = [m for m in mounts if m.id in ids]
    return _show(_sifted(mounts, args), args, tree=False)


def _longest_prefix(table: List[Mount], at: str) -> Optional[Mount]:
    from .. import mountinfo

    best: List[Mount] = []
    for m in table:
        point = m.mountpoint
        if point == at or point == "/" or (at.startswith(point) and at[len(point) : len(point) + 1] == "/"):
            if not best or len(point) > len(best[0].mountpoint):
                best = [m]
            elif len(point) == len(best[0].mountpoint):
                best.append(m)
    return mountinfo.topmost(best)


def _list(args: Args) -> int:
    from .. import api

    if args.tab_file is not None:
        mounts = _saved_table(args)
        if args.under is not None:
            top = _place(args.under, False)
            prefix = top if top.endswith("/") else top + "/"
            mounts = [m for m in mounts if m.mountpoint == top or m.mountpoint.startswith(prefix)]
        return _show(_sifted(mounts, args), args, tree=args.tree)
    pid = _pid(args)
    if args.under is None:
        mounts = api.list_mounts(source=args.source, fstype=_types(args), pid=pid)
    else:
        mounts = api.mounts_under(args.under, include_self=True, source=args.source, fstype=_types(args), pid=pid)
    return _show(_sifted(mounts, args), args, tree=args.tree)


def _info(args: Args) -> int:
    from .. import api

    m = api.mount_of(args.path, pid=_pid(args))
    answer = api.last_answer()
    fields = [*m._fields, "read_only", "propagation", "devno"]
    width = max(map(len, fields))
    for name in fields:
        value = getattr(m, name)
        text = ",".join(value) if isinstance(value, tuple) else ("-" if value is None else str(value))
        out(f"{name:<{width}}  ".encode() + columns.cell_text(text) + b"\n")
    if answer is not None:
        line(f"{'answered by':<{width}}  {answer.strategy}")
    return 0


def _one_line_warnings(ask: Callable[[], T]) -> T:
    """``ask()``, with each warning it gives (a partial answer: no /proc, only the caller's
    namespace seen) printed as one line, as every other message of the command is."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = ask()
    for w in caught:
        error(f"warning: {w.message}")
    return found


def _namespaces(args: Args) -> int:
    from .. import mount_namespaces

    found = _one_line_warnings(mount_namespaces)
    if args.json:
        rows = [
            {"ns": n.inode, "id": n.id, "mounts": n.mounts, "pids": list(n.pids), "command": n.command} for n in found
        ]
        formats.dump({"namespaces": rows})
        return 0
    table = [[b"NS", b"ID", b"MOUNTS", b"NPROCS", b"PID", b"COMMAND"]]
    for n in found:
        cells = [n.inode, n.id, n.mounts, len(n.pids), n.pids[0] if n.pids else None, n.command]
        table.append([columns.cell_text(c) for c in cells])
    formats.table(table)
    return 0


def _holders(args: Args) -> int:
    """Like findmnt, 1 when nothing holds it."""
    from .. import holders

    found = _one_line_warnings(lambda: holders(args.path))
    # Without -o, fewer columns than list's: the namespace's come first. +COLS adds to list's.
    if args.output is None:
        shown = columns.parse(None, columns.HOLDERS_COLUMNS)
    else:
        shown = columns.parse(args.output, columns.DEFAULT_COLUMNS)
    if args.json:
        rows = []
        for h in found:
            row = {"ns": h.namespace.inode, "ns-id": h.namespace.id, "pids": list(h.namespace.pids)}
            row.update({c.key: c.json(h.mount) for c in shown})
            rows.append(row)
        formats.dump({"holders": rows})
    else:
        table = [[b"NS", b"PID", *(c.header.encode() for c in shown)]]
        for h in found:
            first = h.namespace.pids[0] if h.namespace.pids else None
            table.append(
                [columns.cell_text(h.namespace.inode), columns.cell_text(first), *(c.text(h.mount) for c in shown)]
            )
        formats.table(table)
    return 0 if found else 1


def _doctor(args: Args) -> int:
    from .. import api, probe
    from ..errors import MountprobeError

    caps = probe.capabilities()
    line("kernel interfaces:")
    for iface in (caps.statx, caps.openat2, caps.name_to_handle_at, caps.listmount, caps.statmount, caps.procfs):
        line(f"  {iface.name:<18} {iface.status:<10} {iface.detail}".rstrip())
    line("questions (asked about /):")
    asks: Dict[str, Callable[[], object]] = {
        "is_mountpoint": lambda: api.is_mountpoint("/"),
        "is_mountpoint(bind=False)": lambda: api.is_mountpoint("/", bind=False),
        "mount_of": lambda: api.mount_of("/"),
        "mount_at": lambda: api.mount_at("/"),
        "mounts_under": lambda: api.mounts_under("/proc"),
        "list_mounts": lambda: api.list_mounts(),
        "mount_root": lambda: api.mount_root("/proc"),
        "is_mounted(source=dir)": lambda: api.is_mounted("/", source="/"),
        "is_mounted(fstype=)": lambda: api.is_mounted("/proc", fstype="proc"),
        "still_mounted": lambda: api.still_mounted(api.mount_at("/proc") or api.mount_of("/")),
    }
    failed = 0
    for question, ask in asks.items():
        try:
            ask()
        except (MountprobeError, OSError) as exc:
            line(f"  {question:<26} ERROR {exc}")
            failed = 1
            continue
        answer = api.last_answer()
        assert answer is not None
        reads = answer.strategy == "mountinfo"
        line(f"  {question:<26} {answer.strategy}")
        if reads:
            line(f"  {'':<26}   reads the mount table")
        for name, why in answer.declined:
            line(f"  {'':<26}   not {name}: {why}")
    return failed


def _watch(args: Args) -> int:
    from . import watch

    return watch.run(args)


HANDLERS: Dict[str, Callable[[Args], int]] = {
    "find": _find,
    "list": _list,
    "info": _info,
    "namespaces": _namespaces,
    "holders": _holders,
    "watch": _watch,
    "doctor": _doctor,
}


def run(argv: Sequence[str]) -> int:
    try:
        args = parse(argv)
    except Exit as done:  # help, version, or a usage error already printed
        return done.status
    from ..errors import MountprobeError

    # The PATH the command was given, if any, to name in an error that names no file.
    path = args.path if takes_path(args.command) else args.under
    try:
        return HANDLERS[args.command](args)
    except UsageError as exc:
        return error(str(exc))
    except OSError as exc:
        return error(os_error(exc, path, args.command))
    except ValueError as exc:
        return error(f"{path!r}: {exc}" if path is not None else f"{args.command}: {exc}")
    except MountprobeError as exc:
        return error(str(exc) or f"{args.command}: {type(exc).__name__}")
