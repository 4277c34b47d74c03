"""Each record of mountprobe is declared once (issue 17): one class with annotated fields on
``_tuples.Record``, which the type checker reads as ``typing.NamedTuple`` and which builds,
at run time, what ``collections.namedtuple`` builds, without importing it. So mypy checks
the class that runs, and a record behaves as the NamedTuple that docs/CONTRACT.md promises:
fields, defaults, keywords, repr, ``_replace``/``_asdict``/``_make``, pickling, hashing."""

from __future__ import annotations

import ast
import collections
import copy
import pickle
from pathlib import Path
from typing import Any, Callable, List, Tuple

import pytest

import mountprobe
from mountprobe import compat, inventory, model, probe
from mountprobe._tuples import Record
from mountprobe.events import backend
from mountprobe.kernel import fhandle, mount, statx

pytestmark = pytest.mark.host_only  # asks no kernel: not run in the real-kernel guests

# The package under test, wherever it is imported from (the checkout, or a venv in the
# unprivileged CI run, which copies only the tests).
PACKAGE = Path(mountprobe.__file__).resolve().parent
RECORDS: List[Any] = [
    model.Mount,
    model.Answer,
    probe.Interface,
    probe.Capabilities,
    inventory.Namespace,
    inventory.Holder,
    backend.Event,
    compat.sdiskpart,
    statx.Statx,
    fhandle.FileHandle,
    mount.StatmountReply,
]


def _record_classes() -> List[Tuple[str, str]]:
    """(module, class) of every class declared on Record in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "Record" for b in node.bases):
                found.append((str(path.relative_to(PACKAGE)), node.name))
    return found


def test_each_record_is_declared_once_and_no_second_form_is_kept() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call):
                called = ast.unparse(node.func)
                assert called not in ("namedtuple", "collections.namedtuple", "named_tuple"), (path, node.lineno)
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b) for b in node.bases]
                assert "NamedTuple" not in bases, (path, node.name)
    declared = _record_classes()
    names = [name for _, name in declared]
    assert len(names) == len(set(names)), declared
    assert sorted(names) == sorted(r.__name__ for r in RECORDS)


def _reference(record: Any) -> Any:
    return collections.namedtuple(record.__name__, record._fields, defaults=list(record._field_defaults.values()))


@pytest.mark.parametrize("record", RECORDS, ids=[r.__name__ for r in RECORDS])
def test_a_record_behaves_as_the_namedtuple_of_its_fields(record: Any) -> None:
    ref = _reference(record)
    values = tuple(f"v{i}" for i in range(len(record._fields)))
    r: Any = record(*values)
    expected: Any = ref(*values)
    assert isinstance(record(*values), tuple) and type(r) is record and r == values and hash(r) == hash(values)
    assert repr(r) == repr(expected)
    assert r._asdict() == expected._asdict()
    assert record(**dict(zip(record._fields, values))) == r
    assert record._make(values) == r and type(record._make(values)) is record
    assert r._replace(**{record._fields[0]: "x"}) == expected._replace(**{record._fields[0]: "x"})
    assert type(r._replace()) is record
    assert record.__match_args__ == record._fields
    assert record.__module__.startswith("mountprobe.") and record.__qualname__ == record.__name__
    assert not hasattr(r, "__dict__")
    wrong: List[Callable[[], object]] = [
        lambda: record(*values, "extra"),
        lambda: record(*values[:-1]) if not record._field_defaults else record(),
        lambda: record._make(values[:-1]),
    ]
    for call in wrong:
        with pytest.raises(TypeError):
            call()
    with pytest.raises(ValueError):
        r._replace(no_such_field=1)
    with pytest.raises(AttributeError):
        setattr(r, record._fields[0], "y")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        again = pickle.loads(pickle.dumps(r, protocol))
        assert again == r and type(again) is record
    assert copy.copy(r) == r and copy.deepcopy(r) == r


def test_a_default_is_kept_as_the_namedtuple_keeps_it() -> None:
    assert probe.Interface._field_defaults == {"errno": None}
    assert probe.Interface("statx", "available", "") == ("statx", "available", "", None)
    assert probe.Interface("statx", "available", "").usable


def test_the_public_records_keep_their_fields_and_derived_properties() -> None:
    assert mountprobe.Mount._fields == (
        "id",
        "parent_id",
        "unique_id",
        "parent_unique_id",
        "major",
        "minor",
        "root",
        "mountpoint",
        "options",
        "fstype",
        "source",
        "super_options",
        "shared",
        "master",
        "propagate_from",
        "unbindable",
    )
    m = mountprobe.Mount(1, 0, None, None, 0, 40, "/", "/mnt", ("ro",), "tmpfs", "tmpfs", ("rw",), 3, 4, None, True)
    assert (m.read_only, m.propagation, m.devno) == (True, "shared,slave,unbindable", "0:40")
    assert mountprobe.Answer._fields == ("question", "strategy", "declined")
    assert mountprobe.Namespace._fields == ("inode", "id", "mounts", "pids", "command")
    assert mountprobe.Holder._fields == ("namespace", "mount")
    assert mountprobe.Event._fields == ("action", "mount", "old")
    assert mountprobe.Interface._fields == ("name", "status", "detail", "errno")


def test_a_record_without_annotations_is_refused() -> None:
    with pytest.raises(TypeError, match="annotations"):

        class Bare(Record):
            pass
