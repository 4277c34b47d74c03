"""The exceptions of mountprobe. Standard ``OSError`` subclasses and ``ValueError`` keep their
usual meaning; everything specific to this library derives from ``MountprobeError``."""

from __future__ import annotations

import errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from .model import Mount


class MountprobeError(Exception):
    """Base of every error specific to mountprobe."""


class Unsupported(MountprobeError):
    """A strategy cannot answer here (kernel too old, syscall blocked, filesystem without the
    feature). Raised inside the strategy chain, where it means "ask the next strategy"; it
    reaches a caller only when no strategy at all can answer."""


class ProcUnavailable(MountprobeError):
    """No mountinfo file can be read (no procfs mounted: a chroot, early boot, a minimal
    container) and no system call could answer instead."""


class OutsideRoot(MountprobeError):
    """The mount asked about holds this process's root from outside it (a chroot to a plain
    directory): mountinfo omits it, since its mount point is not reachable from the root, and
    statmount gives it no mount point, so no record of it can be built from here. ``path`` is
    the path asked about (None when the mount was named by id), ``mnt_id`` the mount's id."""

    def __init__(self, path: Optional[bytes], mnt_id: int) -> None:
        what = f"{os.fsdecode(path)}: its mount ({mnt_id})" if path is not None else f"mount {mnt_id}"
        super().__init__(
            f"{what} holds this process's root from outside it (a chroot to a plain directory): "
            "neither mountinfo nor statmount describes it from here"
        )
        self.path = path
        self.mnt_id = mnt_id


class ParseError(MountprobeError, ValueError):
    """A mountinfo line that cannot be parsed (raised by ``parse_mountinfo(strict=True)``)."""

    def __init__(self, message: str, lineno: int, line: bytes) -> None:
        super().__init__(f"line {lineno}: {message}: {line!r}")
        self.lineno = lineno
        self.line = line


class ParseWarning(UserWarning):
    """A malformed mountinfo line was skipped; the rest of the table was kept."""


class MountedBelow(MountprobeError):
    """``safe_rmtree`` refused: something is mounted at or below ``path``. ``mounts`` lists
    what is mounted there now; ``during`` is True when the mount appeared while the tree was
    being deleted (what was deleted before stays deleted; nothing in the mount was touched)."""

    def __init__(self, path: str, mounts: list[Mount], during: bool) -> None:
        shown = ", ".join(f"{m.mountpoint} ({m.fstype} {m.source or '-'})" for m in mounts[:10])
        more = f" and {len(mounts) - 10} more" if len(mounts) > 10 else ""
        when = "a mount appeared during the deletion, which stopped there" if during else "nothing was deleted"
        listing = f": {shown}{more}" if mounts else ""
        super().__init__(f"refusing to delete {path}: mounted at or below it{listing} ({when})")
        self.path = path
        self.mounts = mounts
        self.during = during


def timed_out(what: str, seconds: Optional[float]) -> TimeoutError:
    """The ``TimeoutError`` of every wait and deadline here: ETIMEDOUT, naming what did not
    finish and the time it was given."""
    return TimeoutError(errno.ETIMEDOUT, f"{what}: not within {seconds} s")
