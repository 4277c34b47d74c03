"""The ``mountprobe`` command: argument parsing and printing only; every answer comes from
``mountprobe.api``.

``is-mountpoint`` parses its few options by hand and imports nothing it does not need, so
that it starts about as fast as the interpreter itself: scripts call it in loops. The other
commands use argparse.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Sequence


PROG = "mountprobe"
IS_MOUNTPOINT_USAGE = f"usage: {PROG} is-mountpoint [-q] [--no-bind] [--nofollow] [-d|--fs-devno] PATH"
IS_MOUNTPOINT_HELP = f"""{IS_MOUNTPOINT_USAGE}

Tell whether PATH is a mount point, like mountpoint(1): "PATH is a mountpoint" and exit 0,
"PATH is not a mountpoint" and exit 32, an error message and exit 1 (a missing PATH included).

options:
  -q, --quiet      print nothing, only the exit status
  -d, --fs-devno   print the MAJ:MIN of the filesystem mounted at PATH
  --nofollow       do not follow a final symlink (a symlink is not a mount point)
  --no-bind        count only another filesystem mounted there, not bind mounts
  -h, --help       show this help
"""
NOT_A_MOUNTPOINT = 32


def _out(data: bytes) -> None:
    sys.stdout.buffer.write(data)


def _error(message: str, quiet: bool = False) -> int:
    if not quiet:
        sys.stderr.write(f"{PROG}: {message}\n")
    return 1


def _os_error(exc: OSError, path: str) -> str:
    return f"{path}: {exc.strerror or exc}"


def _is_mountpoint(args: Sequence[str]) -> int:
    quiet = devno = nofollow = no_bind = False
    paths: List[str] = []
    for arg in args:
        if arg in ("-q", "--quiet"):
            quiet = True
        elif arg in ("-d", "--fs-devno"):
            devno = True
        elif arg == "--nofollow":
            nofollow = True
        elif arg == "--no-bind":
            no_bind = True
        elif arg in ("-h", "--help"):
            sys.stdout.write(IS_MOUNTPOINT_HELP)
            return 0
        elif arg.startswith("-") and arg != "-" and not paths:
            return _error(f"is-mountpoint: unknown option {arg} (see {PROG} is-mountpoint --help)")
        else:
            paths.append(arg)
    if len(paths) != 1:
        return _error(f"is-mountpoint: expected one PATH (see {PROG} is-mountpoint --help)")
    path = paths[0]
    from . import api

    try:
        mounted = api.is_mountpoint(path, bind=not no_bind, follow_symlinks=not nofollow)
        where = api.mount_at(path) if mounted and devno else None
    except OSError as exc:
        return _error(_os_error(exc, path), quiet)
    except ValueError as exc:
        return _error(f"{path!r}: {exc}", quiet)
    if quiet:
        return 0 if mounted else NOT_A_MOUNTPOINT
    if where is not None:
        _out(where.devno.encode() + b"\n")
    else:
        _out(os.fsencode(path) + (b" is a mountpoint\n" if mounted else b" is not a mountpoint\n"))
    return 0 if mounted else NOT_A_MOUNTPOINT


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if args and args[0] == "is-mountpoint":
            return _is_mountpoint(args[1:])
        from .commands import run

        return run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
