"""The commands' options and help: ``COMMAND_SPECS`` (each command, its PATH, its options),
the parser that reads a command line into ``Args``, and the usage and help texts built from
the same table (``scripts/make_manpage.py`` turns that help into mountprobe(1)).

Parsed by hand rather than with argparse, which imports gettext, locale and shutil: more
than the rest of ``find`` costs at start-up.
"""

from __future__ import annotations

from .columns import COLUMNS, WATCH_COLUMNS
from .output import PROG, error, out

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, NoReturn, Optional, Sequence, Tuple


# command: (help, positional metavar or "", {option: (attribute, metavar or "" for a flag, help)});
# an option with no help is the other spelling of the one before it.
_OUTPUT = {
    "-J": ("json", "", 'findmnt\'s JSON ({"filesystems": [...]})'),
    "--json": ("json", "", ""),
    "-o": ("output", "COLS", "columns, comma-separated; +COLS adds to the default: " + ",".join(COLUMNS)),
    "--output": ("output", "COLS", ""),
}
# findmnt's layouts and filters, on find and list.
_LAYOUT = {
    "-l": ("list", "", "a flat list (the layout of list without --tree)"),
    "--list": ("list", "", ""),
    "-n": ("noheadings", "", "no header line"),
    "--noheadings": ("noheadings", "", ""),
    "-r": ("raw", "", "raw: cells separated by one space, blanks and unsafe bytes as \\xNN"),
    "--raw": ("raw", "", ""),
    "-P": ("pairs", "", 'KEY="value" pairs, unsafe bytes as \\xNN'),
    "--pairs": ("pairs", "", ""),
}
_FILTERS = {
    "-t": ("types", "LIST", "only these filesystem types (comma list; a leading no negates the whole list)"),
    "--types": ("types", "LIST", ""),
    "-S": ("source", "SOURCE", "only mounts of SOURCE: a device, LABEL=/UUID=, a bind source, or source text"),
    "--source": ("source", "SOURCE", ""),
    "-O": ("options", "LIST", "only mounts with these options (noX: without X; +noX: with noX)"),
    "--options": ("options", "LIST", ""),
    "-M": ("mountpoint", "DIR", "only mounts whose mount point is DIR"),
    "--mountpoint": ("mountpoint", "DIR", ""),
    "--real": ("real", "", "only real filesystems (not findmnt's pseudo-filesystems)"),
    "--pseudo": ("pseudo", "", "only pseudo-filesystems (proc, sysfs, tmpfs, overlay, ...)"),
    "-F": ("tab_file", "FILE", "read the mounts from FILE, a saved mountinfo, instead of the kernel"),
    "--tab-file": ("tab_file", "FILE", ""),
}
_TASK = {
    "-N": ("task", "PID", "in the mount namespace of process PID, paths resolved in its root"),
    "--task": ("task", "PID", ""),
}
COMMAND_SPECS: Dict[str, Tuple[str, str, Dict[str, Tuple[str, str, str]]]] = {
    "is-mountpoint": ("is PATH a mount point (like mountpoint(1)); see is-mountpoint -h", "PATH", {}),
    "find": (
        "the mount that holds PATH (like findmnt --target); exit 1 if the filters leave none",
        "PATH",
        {**_OUTPUT, **_LAYOUT, **_FILTERS, **_TASK},
    ),
    "list": (
        "every mount, or those under PATH (like findmnt, findmnt --submounts); exit 1 if none is listed",
        "",
        {
            "--under": ("under", "PATH", "only PATH's mount and the mounts below PATH"),
            "--tree": ("tree", "", "as a tree of parents and children"),
            **_OUTPUT,
            **_LAYOUT,
            **_FILTERS,
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


class Args:
    """The parsed command line: ``command``, ``path``, and one attribute per option."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.path = ""  # always given where the command takes a PATH
        self.json = self.tree = self.first_only = False
        self.list = self.noheadings = self.raw = self.pairs = self.real = self.pseudo = False
        self.types: Optional[str] = None
        self.source: Optional[str] = None
        self.options: Optional[str] = None
        self.mountpoint: Optional[str] = None
        self.tab_file: Optional[str] = None
        self.output: Optional[str] = None
        self.under: Optional[str] = None
        self.action: Optional[str] = None
        self.timeout: Optional[str] = None
        self.task: Optional[str] = None


class Exit(Exception):
    """The command line is done with before any command runs: help or version printed, or
    a usage error reported; ``status`` is the exit status."""

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
    raise Exit(error(f"{message} (see {PROG} --help)"))


def parse(argv: Sequence[str]) -> Args:
    """The command line: ``COMMAND``, then its options and arguments in any order; an option's
    value as ``--opt=VALUE``, ``--opt VALUE``, ``-oVALUE`` or ``-o VALUE``; short flags
    combined (``-nr``, ``-nro COLS``); ``--`` ends the options. Raises ``Exit`` for help,
    version and a usage error (already reported)."""
    if not argv:
        _fail("a COMMAND is required")
    if argv[0] in ("-h", "--help"):
        out(_help(None).encode())
        raise Exit(0)
    if argv[0] == "--version":
        from .. import __version__

        out(f"{PROG} {__version__}\n".encode())
        raise Exit(0)
    command = argv[0]
    if command not in COMMAND_SPECS or command == "is-mountpoint":
        _fail(f"unknown command {command!r} (choose from {', '.join(COMMAND_SPECS)})")
    _, positional, options = COMMAND_SPECS[command]
    args = Args(command)
    words = list(argv[1:])
    positionals: List[str] = []
    while words:
        word = words.pop(0)
        if word == "--":
            positionals += words
            break
        if word in ("-h", "--help"):
            out(_help(command).encode())
            raise Exit(0)
        if not word.startswith("-") or word == "-":
            positionals.append(word)
            continue
        name, eq, value = word.partition("=") if word.startswith("--") else (word[:2], "", word[2:])
        if name not in options:
            _fail(f"{command}: unknown option {name}")
        attribute, metavar, _ = options[name]
        if not metavar:
            if eq:
                _fail(f"{command}: option {name} takes no value")
            if value:  # short flags combined (-nro): the rest is the next option
                words.insert(0, "-" + value)
            setattr(args, attribute, True)
            continue
        if not (eq or value):
            if not words:
                _fail(f"{command}: option {name} needs {metavar}")
            value = words.pop(0)
        setattr(args, attribute, value)
    for group in (("json", "pairs", "raw"), ("pairs", "list", "raw")):  # findmnt's exclusive ones
        given = [name for name in group if getattr(args, name)]
        if len(given) > 1:
            _fail(f"{command}: mutually exclusive options: " + " ".join("--" + name for name in given))
    if args.real and args.pseudo:
        _fail(f"{command}: mutually exclusive options: --real --pseudo")
    if command == "find" and not positionals and args.mountpoint is not None:
        positionals.append(args.mountpoint)  # find -M DIR: the mount at DIR itself
    if positional and len(positionals) != 1:
        _fail(
            f"{command}: expected one {positional}" if not positionals else f"{command}: unexpected {positionals[1]!r}"
        )
    if not positional and positionals:
        _fail(f"{command}: unexpected argument {positionals[0]!r}")
    args.path = positionals[0] if positionals else ""
    return args


def takes_path(command: str) -> bool:
    """Does ``command`` take a PATH argument (rather than none)?"""
    return bool(COMMAND_SPECS[command][1])
