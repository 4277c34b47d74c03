"""The timeout arguments of the waits, ``Watcher.read`` and ``with_timeout``, checked once.

A timeout is a number of seconds >= 0, or None or ``inf`` for no limit. poll(2) takes an
int of milliseconds and Python's epoll and select refuse what does not fit their C types
(``OverflowError``), so a long wait is made of waits of at most ``LONGEST_WAIT`` each: any
finite number is a deadline, however far (issue 15: ``inf`` and ``1e300`` raised there).
"""

from __future__ import annotations

LONGEST_WAIT = 86400.0  # seconds in one poll/epoll/select: well inside 2**31 - 1 ms


def seconds(value: object, where: str, name: str = "timeout") -> float:
    """``value`` as seconds to wait (``inf`` for None, no limit); TypeError for what is no
    number (a str, a bool), ValueError for nan and negatives, each naming ``where`` and the
    argument ``name``."""
    if value is None:
        return float("inf")
    wrong = f"{where}: {name} must be a number of seconds or None, not {type(value).__name__} {value!r}"
    if isinstance(value, bool) or not hasattr(type(value), "__float__"):  # str has none
        raise TypeError(wrong)
    try:
        number = float(value)  # type: ignore[arg-type]  # int, float, Fraction, Decimal, numpy
    except TypeError:  # complex on Python 3.9, whose __float__ only raises (gone in 3.10)
        raise TypeError(wrong) from None
    if not number >= 0:  # nan as well
        raise ValueError(f"{where}: {name} must be >= 0 seconds (None or inf: no limit), not {value!r}")
    return number
