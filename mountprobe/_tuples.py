"""``Record``: the base of every record class of mountprobe, each declared once, as a class
with annotated fields (and defaults, properties and methods where it has them)::

    class Mount(Record):
        id: int
        ...

The type checker reads ``Record`` as ``typing.NamedTuple`` and checks the class as one. At
run time the class is built here instead, with what ``collections.namedtuple`` gives (a
read-only property per field, ``__new__`` with the defaults, ``_make``, ``_replace``,
``_asdict``, ``_fields``, ``_field_defaults``, the repr, pickling) but without importing
``typing`` or ``collections``: either would take more than the start-up budget of
``mountprobe is-mountpoint`` (``scripts/bench_startup.py``, ``tests/test_startup_imports.py``).
A module declaring records imports ``from __future__ import annotations``, so the field
types stay strings, which nothing here evaluates."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, Tuple

try:  # the C field descriptor of collections.namedtuple (CPython 3.8+), a built-in module
    from _collections import _tuplegetter  # type: ignore[import-not-found]
except ImportError:  # another interpreter
    from operator import itemgetter

    def _tuplegetter(index: int, doc: str) -> property:
        return property(itemgetter(index), doc=doc)


_new = tuple.__new__


def _repr(self: Any) -> str:
    fields = ", ".join(f"{n}={v!r}" for n, v in zip(self._fields, self))
    return f"{type(self).__name__}({fields})"


def _replace(self: Any, **changes: object) -> Any:
    made = _new(type(self), map(changes.pop, self._fields, self))
    if changes:
        raise ValueError(f"Got unexpected field names: {list(changes)!r}")
    return made


def _asdict(self: Any) -> Dict[str, Any]:
    return dict(zip(self._fields, self))


def _getnewargs(self: Any) -> Tuple[Any, ...]:
    return tuple(self)


def _make(cls: Any, iterable: Iterable[Any]) -> Any:
    made = _new(cls, iterable)
    if len(made) != len(cls._fields):
        raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(made)}")
    return made


def _build(name: str, namespace: Dict[str, Any]) -> type:
    annotations = namespace.get("__annotations__")
    if annotations is None:
        raise TypeError(f"{name}: a Record declares its fields as annotations (from __future__ import annotations)")
    fields = tuple(annotations)
    defaults = {field: namespace.pop(field) for field in fields if field in namespace}
    if list(defaults) != list(fields[len(fields) - len(defaults) :]):
        raise TypeError(f"{name}: a field without a default follows one with a default")
    args = ", ".join(fields)
    # One positional parameter per field, as collections.namedtuple compiles it: building a
    # record stays one call, with no loop over the fields.
    new: Callable[..., Any] = eval(f"lambda _cls, {args}: _new(_cls, ({args}{',' if fields else ''}))", {"_new": _new})
    new.__name__ = "__new__"
    new.__qualname__ = f"{namespace.get('__qualname__', name)}.__new__"
    new.__defaults__ = tuple(defaults.values()) or None
    body: Dict[str, Any] = {
        "__doc__": f"{name}({args})",
        "__slots__": (),
        "_fields": fields,
        "_field_defaults": defaults,
        "__match_args__": fields,
        "__new__": new,
        "__repr__": _repr,
        "__getnewargs__": _getnewargs,
        "_replace": _replace,
        "_asdict": _asdict,
        "_make": classmethod(_make),
    }
    body.update(namespace)
    for index, field in enumerate(fields):
        body[field] = _tuplegetter(index, f"Alias for field number {index}")
    return type(name, (tuple,), body)


class _RecordType(type):
    """The metaclass of ``Record``: a class statement on it builds the record instead."""

    def __new__(mcls, name: str, bases: Tuple[type, ...], namespace: Dict[str, Any]) -> type:
        return _build(name, namespace)


if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:
    Record = type.__new__(_RecordType, "Record", (), {})

__all__ = ["Record"]
