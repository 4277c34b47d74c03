"""No import cycle among mountprobe's modules (issue 17), counting every import that runs: at a
module's top level, inside functions, and the late ones made through ``_lazy.load`` (the
strategies that ``chain`` loads by name, the homes of the public names in ``__init__``).
Imports under ``if TYPE_CHECKING:`` never run and do not count. Read from the source with
ast: nothing is imported to find out."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set

import pytest

import mountprobe
from mountprobe import chain

pytestmark = pytest.mark.host_only  # asks no kernel: not run in the real-kernel guests

# The package under test, wherever it is imported from (the checkout, or a venv in the
# unprivileged CI run, which copies only the tests).
PACKAGE = Path(mountprobe.__file__).resolve().parent


def _module_names(package: Path) -> Dict[str, Path]:
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _runtime_nodes(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node outside ``if TYPE_CHECKING:`` blocks."""
    todo: List[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _lazy_target(node: ast.Call, module: str, package: str, late: Dict[str, List[str]]) -> Optional[List[str]]:
    """The modules a ``load(f"{__package__}.x")`` call imports; None for a call that is no
    ``load`` of a module of the package (``load("psutil")``)."""
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
    if name != "load" or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant):
        return None  # a module outside the package
    if isinstance(arg, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in arg.values[1:]):
        first = arg.values[0]  # its node, not ast.unparse's text, which differs on 3.9
        head = first.value.id if isinstance(first, ast.FormattedValue) and isinstance(first.value, ast.Name) else None
        assert head in ("__package__", "__name__"), ast.unparse(node)
        rest = "".join(str(v.value) for v in arg.values[1:] if isinstance(v, ast.Constant))
        return [(package if head == "__package__" else module) + rest]
    key = ast.unparse(arg)
    assert key in late, f"a late import the test does not know how to follow: {key}"
    return late[key]


def import_graph(package_dir: Path, late: Dict[str, List[str]]) -> Dict[str, Set[str]]:
    """module -> the modules of the package that running it may import. ``late``: the
    targets of the ``load`` calls whose name is computed (keyed by their f-string)."""
    modules = _module_names(package_dir)
    graph: Dict[str, Set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        out: Set[str] = set()
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                origin = ".".join([*base, *([node.module] if node.module else [])])
                targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in modules else origin for a in node.names]
            elif isinstance(node, ast.Call):
                targets = _lazy_target(node, name, package, late) or []
            for target in targets:
                parts = target.split(".")
                # importing a.b.c runs a, a.b and a.b.c; the importer's own packages ran before it
                for end in range(1, len(parts) + 1):
                    step = ".".join(parts[:end])
                    if step in modules and step != name and not name.startswith(step + "."):
                        out.add(step)
        graph[name] = out
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan), and the modules
    that import themselves."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _late_imports() -> Dict[str, List[str]]:
    strategies = sorted({f"mountprobe.strategies.{module}" for chain_ in chain.CHAINS.values() for module, _ in chain_})
    homes = sorted({f"mountprobe.{home}" for home in mountprobe._HOMES.values()})
    also = sorted({f"mountprobe.{m}" for ms in mountprobe._ALSO.values() for m in ms})
    return {
        "f'{__package__}.strategies.{module}'": strategies,
        "f'{__name__}.{home}'": homes,
        "f'{__name__}.{also}'": also,
        "extra": [],  # preload's ("re", "psutil")
    }


def test_no_import_cycle_among_the_packages_modules_lazy_imports_included() -> None:
    graph = import_graph(PACKAGE, _late_imports())
    assert graph["mountprobe.chain"] >= {"mountprobe.strategies.statmount", "mountprobe.strategies.mountinfo"}
    assert "mountprobe.api" in graph["mountprobe"]
    assert cycles(graph) == []


def test_the_graph_sees_a_cycle_made_by_an_import_inside_a_function_or_a_late_load(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def f():\n    from .sub import c\n")
    (package / "sub" / "c.py").write_text("from .. import _lazy\ndef g():\n    _lazy.load(f'{__package__}.d')\n")
    (package / "sub" / "d.py").write_text("TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from .. import b\n")
    (package / "_lazy.py").write_text("")
    assert cycles(import_graph(package, {})) == []
    (package / "sub" / "d.py").write_text("def h():\n    from ..a import b\n")
    assert cycles(import_graph(package, {})) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.sub.d"]]


@pytest.mark.parametrize("name", ["mountprobe.strategies.statmount", "mountprobe.api"])
def test_the_graph_follows_imports_inside_functions(name: str) -> None:
    """statmount imports the mountinfo strategy's helpers in a function, api the source
    matching of ``is_mounted``: both only once a question needs them."""
    graph = import_graph(PACKAGE, _late_imports())
    late = {
        "mountprobe.strategies.statmount": "mountprobe.strategies.mountinfo",
        "mountprobe.api": "mountprobe.sources",
    }
    assert late[name] in graph[name]
