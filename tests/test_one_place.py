"""Each policy and each kernel quirk is written once in the package (issue 17). Read from the
source with ast, so that a second copy fails here instead of drifting."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Tuple

PACKAGE = Path(__file__).resolve().parent.parent / "mountprobe"


def _modules() -> Iterator[Tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE))
        yield name, ast.parse(path.read_text(), name)


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
