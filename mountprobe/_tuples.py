"""Named tuple classes for the modules that a command loads at start-up, built without
``typing`` or ``collections``: importing either would take more than the start-up budget of
``mountprobe is-mountpoint`` (``scripts/bench_startup.py``, ``tests/test_startup_imports.py``).
Each module declares the same class as a ``typing.NamedTuple`` for the type checker."""

from __future__ import annotations

from operator import itemgetter


def named_tuple(name: str, fields: str, doc: str) -> type:
    """A tuple subclass with one read-only property per name in ``fields``."""
    names = tuple(fields.split())
    namespace: dict = {"__slots__": (), "__doc__": doc, "_fields": names, "__repr__": _repr, "_replace": _replace}  # type: ignore[type-arg]
    for index, field in enumerate(names):
        namespace[field] = property(itemgetter(index))
    return type(name, (tuple,), namespace)


def _repr(self: tuple) -> str:  # type: ignore[type-arg]
    fields = ", ".join(f"{n}={v!r}" for n, v in zip(type(self)._fields, self))  # type: ignore[attr-defined]
    return f"{type(self).__name__}({fields})"


def _replace(self: tuple, **changes: object) -> tuple:  # type: ignore[type-arg]
    values = [changes.pop(name, value) for name, value in zip(type(self)._fields, self)]  # type: ignore[attr-defined]
    if changes:
        raise ValueError(f"unknown fields: {sorted(changes)}")
    return tuple.__new__(type(self), values)
