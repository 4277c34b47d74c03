"""The exceptions of mountprobe. Standard ``OSError`` subclasses and ``ValueError`` keep their
usual meaning; everything specific to this library derives from ``MountprobeError``."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .model import Mount


class MountprobeError(Exception):
    """Base of every error specific to mountprobe."""


class Unsupported(MountprobeError):
    """A strategy cannot answer here (kernel too old, syscall blocked, filesystem without the
    feature). Raised inside the strategy chain, where it means "ask the next strategy"; it
    reaches a caller only when no strategy at all can answer."""


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
