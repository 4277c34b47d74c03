"""What every command writes and how it ends: its output on stdout (a write error there is
reported, never a traceback), an error as one line on stderr, and the exit status of a run.

``is-mountpoint`` loads this module too: it imports nothing beyond ``os`` and ``sys``.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional


PROG = "mountprobe"


class WriteError(Exception):
    """Standard output cannot be written (a full disk, a closed pipe with SIGPIPE ignored, a
    closed descriptor). Not an ``OSError``, so that no command mistakes it for its own."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


class UsageError(Exception):
    """A command line that asks for what does not exist (an unknown column, a bad process
    id): the command reports it as one line, exit status 1."""


def out(data: bytes) -> None:
    stdout = sys.stdout
    try:
        if stdout is None:  # started with descriptor 1 closed
            raise _closed()
        stdout.buffer.write(data)
    except OSError as exc:
        raise WriteError(exc) from None
    except ValueError:  # closed after an earlier write error (main() called again)
        raise WriteError(_closed()) from None


def line(text: str) -> None:
    """``text`` and a newline, a name's bytes as they were."""
    out(os.fsencode(text) + b"\n")


def flush() -> None:
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError as exc:
        raise WriteError(exc) from None
    except ValueError:
        raise WriteError(_closed()) from None


def _closed() -> OSError:
    return OSError(9, os.strerror(9))  # EBADF, what a write to a closed descriptor gets


def error(message: str, quiet: bool = False) -> int:
    """Print ``mountprobe: message`` as one line (control characters of a name escaped), and
    give exit status 1."""
    if not quiet and sys.stderr is not None:
        text = message.translate({c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F) if c != 0x09})
        try:
            sys.stderr.write(f"{PROG}: {text}\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr is gone too: the exit status says it
            pass
    return 1


def os_error(exc: OSError, path: Optional[str], command: str) -> str:
    """``NAME: what failed``: the file the error names, else the PATH the command was given,
    else the command (never an empty name)."""
    name = exc.filename if exc.filename not in (None, "", b"") else path or command
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    return f"{name}: {exc.strerror or exc}"


def guarded(command: Callable[[], int], quiet: bool) -> int:
    """Run a command to its exit status: what it prints reaches stdout (flushed here, so that
    a write error is reported here), and nothing escapes as a traceback."""
    try:
        status = command()
        flush()
        return status
    except WriteError as exc:
        return _write_failed(exc.error, quiet)
    except KeyboardInterrupt:
        return _stopped(130)
    except Exception as exc:  # a bug in mountprobe: one line, the traceback on request
        if os.environ.get("MOUNTPROBE_TRACEBACK"):
            import traceback

            traceback.print_exception(type(exc), exc, exc.__traceback__)
            return _stopped(error(f"internal error: {type(exc).__name__}: {exc}"))
        hint = " (MOUNTPROBE_TRACEBACK=1 shows where)"
        return _stopped(error(f"internal error: {type(exc).__name__}: {exc}{hint}", quiet))


def _stopped(status: int) -> int:
    """After Ctrl-C or a bug: what was printed so far still goes out, quietly."""
    try:
        flush()
    except (WriteError, KeyboardInterrupt):
        _close_stdout()
    return status


def _write_failed(exc: OSError, quiet: bool) -> int:
    _close_stdout()
    return error(f"write error on standard output: {exc.strerror or exc}", quiet)


def _close_stdout() -> None:
    # Closed, sys.stdout is not flushed again at exit, where the same error would print
    # "Exception ignored ... BrokenPipeError" and make the exit status 120. Its descriptor
    # stays open: Python opens the standard streams with closefd=False.
    try:
        if sys.stdout is not None:
            sys.stdout.close()
    except (OSError, ValueError):
        pass
