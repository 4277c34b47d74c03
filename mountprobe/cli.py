"""The ``mountprobe`` command: argument parsing and printing only; every answer comes from
``mountprobe.api``.

``is-mountpoint`` parses its few options by hand and imports nothing it does not need, so
that it starts about as fast as the interpreter itself: scripts call it in loops. The other
commands live in ``commands.py``.

Every failure is one line on stderr and exit status 1 (``is-mountpoint -q``: nothing
printed): an error of the question, a write error on stdout, and a bug in mountprobe itself
(``MOUNTPROBE_TRACEBACK=1`` prints its traceback too).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, List, Optional, Sequence


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


class _WriteError(Exception):
    """Standard output cannot be written (a full disk, a closed pipe with SIGPIPE ignored, a
    closed descriptor). Not an ``OSError``, so that no command mistakes it for its own."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


def _out(data: bytes) -> None:
    stdout = sys.stdout
    try:
        if stdout is None:  # started with descriptor 1 closed
            raise _closed()
        stdout.buffer.write(data)
    except OSError as exc:
        raise _WriteError(exc) from None
    except ValueError:  # closed after an earlier write error (main() called again)
        raise _WriteError(_closed()) from None


def _flush() -> None:
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError as exc:
        raise _WriteError(exc) from None
    except ValueError:
        raise _WriteError(_closed()) from None


def _closed() -> OSError:
    return OSError(9, os.strerror(9))  # EBADF, what a write to a closed descriptor gets


def _error(message: str, quiet: bool = False) -> int:
    """Print ``mountprobe: message`` as one line (control characters of a name escaped), and
    give exit status 1."""
    if not quiet and sys.stderr is not None:
        line = message.translate({c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F) if c != 0x09})
        try:
            sys.stderr.write(f"{PROG}: {line}\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr is gone too: the exit status says it
            pass
    return 1


def _os_error(exc: OSError, path: Optional[str], command: str) -> str:
    """``NAME: what failed``: the file the error names, else the PATH the command was given,
    else the command (never an empty name)."""
    name = exc.filename if exc.filename not in (None, "", b"") else path or command
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    return f"{name}: {exc.strerror or exc}"


def _guarded(command: Callable[[], int], quiet: bool) -> int:
    """Run a command to its exit status: what it prints reaches stdout (flushed here, so that
    a write error is reported here), and nothing escapes as a traceback."""
    try:
        status = command()
        _flush()
        return status
    except _WriteError as exc:
        return _write_failed(exc.error, quiet)
    except KeyboardInterrupt:
        return _stopped(130)
    except Exception as exc:  # a bug in mountprobe: one line, the traceback on request
        if os.environ.get("MOUNTPROBE_TRACEBACK"):
            import traceback

            traceback.print_exception(type(exc), exc, exc.__traceback__)
            return _stopped(_error(f"internal error: {type(exc).__name__}: {exc}"))
        hint = " (MOUNTPROBE_TRACEBACK=1 shows where)"
        return _stopped(_error(f"internal error: {type(exc).__name__}: {exc}{hint}", quiet))


def _stopped(status: int) -> int:
    """After Ctrl-C or a bug: what was printed so far still goes out, quietly."""
    try:
        _flush()
    except (_WriteError, KeyboardInterrupt):
        _close_stdout()
    return status


def _write_failed(exc: OSError, quiet: bool) -> int:
    _close_stdout()
    return _error(f"write error on standard output: {exc.strerror or exc}", quiet)


def _close_stdout() -> None:
    # Closed, sys.stdout is not flushed again at exit, where the same error would print
    # "Exception ignored ... BrokenPipeError" and make the exit status 120. Its descriptor
    # stays open: Python opens the standard streams with closefd=False.
    try:
        if sys.stdout is not None:
            sys.stdout.close()
    except (OSError, ValueError):
        pass


def _is_mountpoint(args: Sequence[str]) -> int:
    quiet = devno = nofollow = no_bind = False
    paths: List[str] = []
    words = list(args)
    while words:
        arg = words.pop(0)
        if arg == "--" and not paths:  # the rest are paths, as getopt(3) reads mountpoint's
            paths += words
            break
        if arg in ("-q", "--quiet"):
            quiet = True
        elif arg in ("-d", "--fs-devno"):
            devno = True
        elif arg == "--nofollow":
            nofollow = True
        elif arg == "--no-bind":
            no_bind = True
        elif arg in ("-h", "--help"):
            return _guarded(lambda: _help_text(IS_MOUNTPOINT_HELP), False)
        elif arg.startswith("-") and arg != "-" and not paths:
            return _error(f"is-mountpoint: unknown option {arg} (see {PROG} is-mountpoint --help)")
        else:
            paths.append(arg)
    if len(paths) != 1:
        return _error(f"is-mountpoint: expected one PATH (see {PROG} is-mountpoint --help)")
    path = paths[0]
    return _guarded(lambda: _answer(path, quiet, devno, nofollow, no_bind), quiet)


def _help_text(text: str) -> int:
    _out(text.encode())
    return 0


def _answer(path: str, quiet: bool, devno: bool, nofollow: bool, no_bind: bool) -> int:
    from . import api
    from .errors import MountprobeError

    try:
        mounted = api.is_mountpoint(path, bind=not no_bind, follow_symlinks=not nofollow)
        where = api.mount_at(path) if mounted and devno else None
    except OSError as exc:
        return _error(_os_error(exc, path, "is-mountpoint"), quiet)
    except ValueError as exc:
        return _error(f"{path!r}: {exc}", quiet)
    except MountprobeError as exc:
        return _error(str(exc) or type(exc).__name__, quiet)
    if quiet:
        return 0 if mounted else NOT_A_MOUNTPOINT
    if where is not None:
        _out(where.devno.encode() + b"\n")
    else:
        _out(os.fsencode(path) + (b" is a mountpoint\n" if mounted else b" is not a mountpoint\n"))
    return 0 if mounted else NOT_A_MOUNTPOINT


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line ``argv`` (default: ``sys.argv[1:]``) to its exit status. SIGPIPE keeps
    the caller's disposition: ignored, a closed pipe on stdout is a one-line write error."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] == "is-mountpoint":
        return _is_mountpoint(args[1:])
    return _guarded(lambda: _commands(args), False)


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


if __name__ == "__main__":
    sys.exit(program())
