"""The exceptions of mountprobe. Standard ``OSError`` subclasses and ``ValueError`` keep their
usual meaning; everything specific to this library derives from ``MountprobeError``."""

from __future__ import annotations


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
