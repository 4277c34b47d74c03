"""Imports made after ``import mountprobe``: the public names (PEP 562), each question's
strategies, and what a function needs only once it runs.

Two things go wrong with an import made late, and this module is the one place that
handles both:

- **fork**: CPython resets only its global import lock in a forked child, not the lock of
  each module (``importlib._bootstrap._ModuleLock``). A child forked while another thread
  was importing a module finds that lock held by a thread that does not exist there, and
  the module half executed: its first import of it waits for ever. So every late import
  holds ``_lock``, and ``os.fork()`` waits for it (the ``before`` hook): no child is ever
  forked in the middle of one. The child, with one thread, starts with a fresh lock.
- **losing the files**: after a chroot, or a setuid to a user who may not read the
  install, the import fails. ``load`` then says so and how to avoid it
  (``mountprobe.preload()`` before), instead of a bare ``ModuleNotFoundError``.

No module may call ``load`` while it is being imported (at its top level): a thread holding
``_lock`` may be waiting for that module.
"""

from __future__ import annotations

import _thread
import os
import sys

from .errors import MountprobeError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

_lock = _thread.RLock()  # reentrant: an import inside an import, a fork inside an import


def load(name: str) -> ModuleType:
    """The module ``name`` (absolute), imported now if it was not yet. An ImportError of
    one of mountprobe's own modules means its files are gone: a ``MountprobeError``."""
    with _lock:
        try:
            __import__(name)
        except ImportError as exc:
            if name.startswith("mountprobe."):
                raise MountprobeError(
                    f"cannot import {name} ({exc}): the process lost access to mountprobe's files after "
                    "importing it (a chroot, a setuid, a removed install?); call mountprobe.preload() "
                    "before, which imports everything every function needs"
                ) from exc
            raise
        return sys.modules[name]


def _fresh_lock() -> None:
    global _lock
    _lock = _thread.RLock()


os.register_at_fork(before=lambda: _lock.acquire(), after_in_parent=lambda: _lock.release(), after_in_child=_fresh_lock)
