"""Each policy and each kernel quirk is written once in the package (issue 17): the errnos that
mean "this syscall cannot be used here", the mountinfo files to try, the legacy mount id, the
identity of a mount without unique ids, the decoder of ``struct statmount``. Read from the
source with ast, so that a second copy fails here instead of drifting."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, List, Set, Tuple

import pytest

import mountprobe

pytestmark = pytest.mark.host_only  # asks no kernel: not run in the real-kernel guests

# The package under test, wherever it is imported from (the checkout, or a venv in the
# unprivileged CI run, which copies only the tests).
PACKAGE = Path(mountprobe.__file__).resolve().parent
# cli/output.py builds its EBADF as OSError(9), so that a command's start-up imports nothing
# beyond os and sys (tests/test_startup_imports.py).
NOT_YET = {"cli/output.py"}


def _modules() -> Iterator[Tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE))
        yield name, ast.parse(path.read_text(), name)


def _errno_sets(tree: ast.Module, errnos: Set[str]) -> List[int]:
    """Lines of tuples, lists or sets that hold all of ``errnos`` (as errno.NAME)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
            items = node.keys if isinstance(node, ast.Dict) else node.elts
            names = {n.attr for n in items if isinstance(n, ast.Attribute)}
            if errnos <= names:
                found.append(node.lineno)
    return found


@pytest.mark.parametrize(
    ("errnos", "home"),
    [
        ({"ENOSYS", "EPERM"}, "kernel/_syscall.py"),  # OFF: the syscall cannot be used here
        ({"EOPNOTSUPP", "EINVAL"}, "strategies/_calls.py"),  # NO_HANDLE_ID: name_to_handle_at gives no id
    ],
)
def test_each_group_of_errnos_is_written_in_one_place(errnos: Set[str], home: str) -> None:
    found = {name: lines for name, tree in _modules() if (lines := _errno_sets(tree, errnos))}
    assert list(found) == [home] and len(found[home]) == 1, found


def test_no_errno_is_written_as_a_bare_number() -> None:
    for name, tree in _modules():
        for node in ast.walk(tree) if name not in NOT_YET else ():
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("OSError", "TimeoutError"):
                first = node.args[0] if node.args else None
                assert not isinstance(first, ast.Constant) or not isinstance(first.value, int), (name, node.lineno)


def test_the_mountinfo_files_are_listed_in_one_place() -> None:
    holders = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value == "/proc/thread-self/mountinfo":
                holders.append(name)
    assert holders == ["_procfs.py"]


def _defined(function: str) -> List[str]:
    return [
        name
        for name, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == function
    ]


def test_a_mounts_identity_and_its_legacy_id_are_each_defined_once() -> None:
    assert _defined("_identity") == []
    assert _defined("identity") == ["model.py"]
    assert _defined("_legacy_id") == []
    assert _defined("legacy_mount_id") == ["strategies/_calls.py"]


def test_struct_statmount_is_decoded_only_in_kernel_mount() -> None:
    unpacking = [
        name
        for name, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "unpack_from" and ast.unparse(node.value).endswith("REPLY")
    ]
    assert unpacking == ["kernel/mount.py"]


def test_the_statmount_strategy_names_its_flags() -> None:
    """MOUNT_ATTR_* and MS_* come from kernel/mount.py by name, never as bare numbers."""
    tree = dict(_modules())["strategies/statmount.py"]
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.LShift)):
            for side in (node.left, node.right):
                assert not (isinstance(side, ast.Constant) and isinstance(side.value, int)), ast.unparse(node)
        if isinstance(node, ast.Tuple) and node.elts and isinstance(node.elts[0], ast.Constant):
            assert not isinstance(node.elts[0].value, int) or isinstance(node.elts[0].value, bool), ast.unparse(node)
