"""The ``mountprobe`` command: argument parsing and printing only; every answer comes from
``mountprobe.api``.

``is-mountpoint`` is here: it parses its few options by hand and imports nothing it does not
need (``output.py``, then the api), so that it starts about as fast as the interpreter
itself: scripts call it in loops. The other commands are in ``commands.py`` (and
``watch.py``), loaded only for them.

Every failure is one line on stderr and exit status 1 (``is-mountpoint -q``: nothing
printed): an error of the question, a write error on stdout, and a bug in mountprobe itself
(``MOUNTPROBE_TRACEBACK=1`` prints its traceback too).
"""

from __future__ import annotations

import os
import sys

from .output import PROG, error, guarded, os_error, out

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Sequence

IS_MOUNTPOINT_USAGE = (
    f"usage: {PROG} is-mountpoint [-q] [--no-bind] [--nofollow] [-d|--fs-devno] PATH\n"
    f"       {PROG} is-mountpoint [-q] -x|--devno DEVICE"
)
IS_MOUNTPOINT_HELP = f"""{IS_MOUNTPOINT_USAGE}

Tell whether PATH is a mount point, like mountpoint(1): "PATH is a mountpoint" and exit 0,
"PATH is not a mountpoint" and exit 32, an error message and exit 1 (a missing PATH included).

options:
  -q, --quiet      no message, only the exit status (and the MAJ:MIN of -d or -x)
  -d, --fs-devno   print the MAJ:MIN of the filesystem mounted at PATH
  -x, --devno      print the MAJ:MIN of the block device DEVICE (exit 32 if it is none)
  --nofollow       do not follow a final symlink (a symlink is not a mount point)
  --no-bind        count only another filesystem mounted there, not bind mounts
  -h, --help       show this help
"""
NOT_A_MOUNTPOINT = 32


def _is_mountpoint(args: Sequence[str]) -> int:
    quiet = devno = device = nofollow = no_bind = False
    paths: List[str] = []
    words = list(args)
    while words:
        arg = words.pop(0)
        if arg == "--" and not paths:  # the rest are paths, as getopt(3) reads mountpoint's
            paths += words
            break
        if len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and not paths:  # -qd: one flag at a time
            words[:0] = [arg[:2], "-" + arg[2:]]
            continue
        if arg in ("-q", "--quiet"):
            quiet = True
        elif arg in ("-d", "--fs-devno"):
            devno = True
        elif arg in ("-x", "--devno"):
            device = True
        elif arg == "--nofollow":
            nofollow = True
        elif arg == "--no-bind":
            no_bind = True
        elif arg in ("-h", "--help"):
            return guarded(lambda: _help_text(IS_MOUNTPOINT_HELP), False)
        elif arg.startswith("-") and arg != "-" and not paths:
            return error(f"is-mountpoint: unknown option {arg} (see {PROG} is-mountpoint --help)")
        else:
            paths.append(arg)
    if len(paths) != 1:
        return error(f"is-mountpoint: expected one PATH (see {PROG} is-mountpoint --help)")
    path = paths[0]
    if device:
        return guarded(lambda: _device_number(path, quiet), quiet)
    return guarded(lambda: _answer(path, quiet, devno, nofollow, no_bind), quiet)


def _device_number(path: str, quiet: bool) -> int:
    """mountpoint -x: the MAJ:MIN of a block device, printed even with -q; 32 for a path
    that is not one."""
    import stat

    try:
        st = os.stat(path)
    except OSError as exc:
        return error(os_error(exc, path, "is-mountpoint"), quiet)
    except ValueError as exc:
        return error(f"{path!r}: {exc}", quiet)
    if not stat.S_ISBLK(st.st_mode):
        error(f"{path}: not a block device", quiet)
        return NOT_A_MOUNTPOINT
    out(f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}\n".encode())
    return 0


def _help_text(text: str) -> int:
    out(text.encode())
    return 0


def _answer(path: str, quiet: bool, devno: bool, nofollow: bool, no_bind: bool) -> int:
    from .. import api
    from ..errors import MountprobeError

    try:
        mounted = api.is_mountpoint(path, bind=not no_bind, follow_symlinks=not nofollow)
        where = api.mount_at(path) if mounted and devno else None
    except OSError as exc:
        return error(os_error(exc, path, "is-mountpoint"), quiet)
    except ValueError as exc:
        return error(f"{path!r}: {exc}", quiet)
    except MountprobeError as exc:
        return error(str(exc) or type(exc).__name__, quiet)
    if where is not None:  # printed even with -q, as mountpoint -qd does
        out(where.devno.encode() + b"\n")
    elif not quiet:
        out(os.fsencode(path) + (b" is a mountpoint\n" if mounted else b" is not a mountpoint\n"))
    return 0 if mounted else NOT_A_MOUNTPOINT


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line ``argv`` (default: ``sys.argv[1:]``) to its exit status. SIGPIPE keeps
    the caller's disposition: ignored, a closed pipe on stdout is a one-line write error."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] == "is-mountpoint":
        return _is_mountpoint(args[1:])
    return guarded(lambda: _commands(args), False)


def _commands(args: Sequence[str]) -> int:
    from .commands import run

    return run(args)


def program() -> int:
    """``mountprobe`` run as a program (bin/mountprobe, ``python -m mountprobe``)."""
    import _signal  # type: ignore[import-not-found, unused-ignore]  # built in; signal imports enum

    # CPython ignores SIGPIPE before any Python code runs, so what the parent left cannot be
    # known: restore the default every program starts with, so that a command whose reader
    # went away (`mountprobe list | head`) ends by SIGPIPE, as coreutils' commands do.
    _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
    return main()
