"""``watch``: mount events as they happen, one line (or one JSON object) each, like
``findmnt --poll``; loaded only for this command."""

from __future__ import annotations

from . import columns, formats
from .output import UsageError, flush

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from .options import Args

# What Event.action can be, in the order the help names them.
ACTIONS = ("mount", "umount", "remount", "move")
# Fixed widths, as findmnt --poll's: a line goes out as soon as its event is read, so the
# widths cannot wait for the widest cell; a column not named here is not padded.
_WIDTHS = {"ACTION": 8, "TARGET": 24, "SOURCE": 12, "FSTYPE": 8, "OPTIONS": 24, "OLD-TARGET": 24}

# The longest one read of the watcher waits: the loop then waits again. epoll's timeout is
# an int of milliseconds (2**31 ms, under 25 days), which a --timeout of 1e15 overflows.
_LONGEST_WAIT = 3600.0


def run(args: Args) -> int:
    """Print events until --first-only or --timeout ends the watch: exit 0 when one was
    printed, 1 on an error or when the time passed without one (130 on Ctrl-C)."""
    import time

    from .. import watch

    shown = columns.parse(args.output, columns.WATCH_COLUMNS, columns.EVENT_COLUMNS)
    widths = [_WIDTHS.get(c.header, 0) for c in shown]
    actions = set(ACTIONS)
    if args.action is not None:
        actions = {a.strip() for a in args.action.split(",") if a.strip()}
        if not actions or not actions <= set(ACTIONS):
            raise UsageError(f"watch: --action takes some of {','.join(ACTIONS)}, not {args.action!r}")
    timeout = _seconds(args.timeout)
    until = None if timeout is None else time.monotonic() + timeout
    printed = 0
    with watch(under=args.under) as watcher:
        while True:
            left = None if until is None else until - time.monotonic()
            if left is not None and left <= 0:
                return 0 if printed else 1
            for event in watcher.read(None if left is None else min(left, _LONGEST_WAIT)):
                if event.action not in actions:
                    continue
                if args.json:
                    formats.dump({c.key: c.json(event) for c in shown}, indent=None)
                else:
                    if not printed:  # the header comes with the first event, as findmnt's does
                        formats.row([c.header.encode() for c in shown], widths)
                    formats.row([c.text(event) for c in shown], widths)
                flush()
                printed += 1
                if args.first_only:
                    return 0


def _seconds(text: Optional[str]) -> Optional[float]:
    """--timeout: seconds, ``inf`` (or beyond any float) for no limit; None when not given."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:  # also nan
        raise UsageError(f"watch: --timeout takes a number of seconds (0 or more, or inf), not {text!r}")
    return None if value == float("inf") else value
