"""The public names of ``mountprobe`` come from one table in ``__init__.py`` (issue 17):
``_HOMES`` (name -> module), from which ``__all__`` and the lazy imports come. The type
checker cannot read a table, so the imports under ``TYPE_CHECKING`` repeat it; this holds
them to it, and the names to those the package has always exported (docs/CONTRACT.md)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import List, Tuple

import pytest

import mountprobe

pytestmark = pytest.mark.host_only  # asks no kernel: not run in the real-kernel guests

INIT = Path(mountprobe.__file__)
PUBLIC = {
    "Answer", "Capabilities", "Event", "Holder", "Interface", "Mount", "MountedBelow", "MountprobeError",
    "Namespace", "ParseError", "ParseWarning", "ProcUnavailable", "Unsupported", "Watcher", "capabilities",
    "holders", "is_mounted", "is_mountpoint", "last_answer", "list_mounts", "mount_at", "mount_namespaces",
    "mount_of", "mount_root", "mounts_under", "parse_mountinfo", "preload", "read_mountinfo", "safe_rmtree",
    "still_mounted", "wait_for_mount", "wait_for_unmount", "watch", "with_timeout",
}  # fmt: skip


def _typed_imports() -> List[Tuple[str, str]]:
    """(name, home) of each ``from .home import name as name`` under ``if TYPE_CHECKING:``."""
    found = []
    for node in ast.parse(INIT.read_text()).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for sub in node.body:
                assert isinstance(sub, ast.ImportFrom) and sub.level == 1 and sub.module, ast.unparse(sub)
                for alias in sub.names:
                    assert alias.asname == alias.name, ast.unparse(sub)  # an explicit re-export
                    found.append((alias.name, sub.module))
    return found


def test_all_is_the_table_and_preload_and_the_names_are_those_always_exported() -> None:
    assert mountprobe.__all__ == [*mountprobe._HOMES, "preload"]
    assert set(mountprobe.__all__) == PUBLIC and len(mountprobe.__all__) == len(PUBLIC)


def test_the_typed_imports_are_the_table() -> None:
    assert _typed_imports() == list(mountprobe._HOMES.items())


def test_each_name_of_the_table_is_found_in_its_home() -> None:
    for name, home in mountprobe._HOMES.items():
        module = importlib.import_module(f"mountprobe.{home}")
        assert getattr(mountprobe, name) is getattr(module, name), name
