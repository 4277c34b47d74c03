"""``with_timeout``: ask a question in a child process and give up after a deadline.

Questions about a mount never touch the filesystem behind it, but a path that lies *below*
a mount point must be looked up in that filesystem: on a dead NFS, CIFS or FUSE server the
lookup waits for the server, and a thread waiting for it cannot be interrupted (a FUSE
request the server has read cannot even be killed). The only bounded way to ask is from
another process, which the caller may abandon: this module runs the function there.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Optional, TypeVar

from ._seconds import LONGEST_WAIT
from ._seconds import seconds as _seconds
from .errors import MountprobeError, timed_out

T = TypeVar("T")

_CHILD = "from mountprobe.timeout import _child; _child()"


def with_timeout(seconds: float, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` run in a new Python process: its result, or the
    exception it raised, or ``TimeoutError`` after ``seconds`` (None or inf: no limit;
    TypeError or ValueError for what is no number of seconds >= 0). ``function``, its
    arguments, its result and its exception travel by pickle: ``function`` must be
    importable by name (every mountprobe function is), and what cannot travel is a
    TypeError naming it (a MountprobeError for an exception that cannot). The child
    writes to the caller's stdout and stderr. On a timeout the child is killed; one stuck
    on a FUSE request its server has read lingers until the server answers or dies.
    Costs one interpreter start (45 ms measured on the test VM)."""
    limit = _seconds(seconds, "with_timeout", "seconds")
    name = getattr(function, "__qualname__", None) or repr(function)
    if not sys.executable:
        raise MountprobeError("with_timeout: no Python interpreter to start (sys.executable is empty)")
    try:
        request = pickle.dumps((function, args, kwargs))
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise TypeError(f"with_timeout: {function!r} cannot be sent to a child process: {exc}") from None
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_dir, os.environ.get("PYTHONPATH")])))
    # The reply has a pipe of its own (the child's stdout, which it moves aside), so that
    # what the function prints reaches the caller's stdout, never the reply: a bare
    # ``print`` corrupted it (issue 15).
    try:
        stdout = os.dup(1)
    except OSError:
        stdout = -1  # no stdout here: the child's output goes nowhere
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(stdout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=os.getcwd(),
            pass_fds=(stdout,) if stdout >= 0 else (),
        )
    finally:
        if stdout >= 0:
            os.close(stdout)
    until = time.monotonic() + limit
    data: Optional[bytes] = request
    while True:
        try:  # a day at a time: select and poll refuse longer waits
            reply, _ = child.communicate(data, timeout=min(max(until - time.monotonic(), 0), LONGEST_WAIT))
            break
        except subprocess.TimeoutExpired:
            data = None  # sent already
            if time.monotonic() < until:
                continue
            child.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):  # stuck in the kernel: reaped
                child.wait(0.1)  # by a later subprocess call once it dies
            raise timed_out(name, seconds) from None
    if not reply:
        status = child.returncode
        how = f"was killed by {signal.Signals(-status).name}" if status < 0 else f"exited with status {status}"
        raise MountprobeError(f"with_timeout: the child process running {name} {how} before it answered")
    try:
        kind, value = pickle.loads(reply)
    except Exception as exc:  # a class the child could build and this process cannot
        raise MountprobeError(f"with_timeout: the answer of {name} cannot be read here: {exc!r}") from None
    if kind == "returned":
        return value  # type: ignore[no-any-return]
    if kind == "raised":
        raise value
    if kind == "unloadable":
        raise TypeError(f"with_timeout: {name} cannot be loaded in the child process: {value}")
    if kind == "unsendable result":
        raise TypeError(f"with_timeout: the result of {name} cannot be sent back: {value}")
    raise MountprobeError(f"with_timeout: {name} raised {value}, which cannot be sent back")


def _travels(value: object) -> bytes:
    """``value`` pickled, once it is known to unpickle as well (an exception whose
    ``__init__`` takes other arguments than its ``args`` pickles, and fails to unpickle)."""
    data = pickle.dumps(value)
    pickle.loads(data)
    return data


def _child() -> None:
    reply = os.dup(1)
    caller = int(sys.argv[1])
    if caller < 0:
        caller = os.open(os.devnull, os.O_WRONLY)
    os.dup2(caller, 1)
    os.close(caller)
    try:
        function, args, kwargs = pickle.loads(sys.stdin.buffer.read())
    except Exception as exc:  # a module or name this process cannot import
        answer = _travels(("unloadable", f"{type(exc).__name__}: {exc}"))
    else:
        try:
            result = function(*args, **kwargs)
        except BaseException as exc:  # handed to the caller, who raises it
            try:
                answer = _travels(("raised", exc))
            except Exception as why:
                answer = _travels(("unsendable exception", f"{type(exc).__name__}: {exc} ({why})"))
        else:
            try:
                answer = _travels(("returned", result))
            except Exception as why:
                answer = _travels(("unsendable result", f"{type(result).__name__}: {why}"))
    sys.stdout.flush()
    with open(reply, "wb") as out:
        out.write(answer)
