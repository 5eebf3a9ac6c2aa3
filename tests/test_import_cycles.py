"""No import cycles between ml_pipelines modules, and the layering holds.

The graph is read from the source with `ast`: every import, at module level or inside a
function, except those under `if TYPE_CHECKING:`. `from ml_pipelines.x import y` counts
as importing `ml_pipelines.x.y` when `y` is a submodule, else `ml_pipelines.x`.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "ml_pipelines"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, *, type_checking: bool) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, each with whether it sits under `if TYPE_CHECKING:`."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node, type_checking))
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                found += _imports(ast.Module(body=[child], type_ignores=[]), type_checking=True)
            for child in node.orelse:
                found += _imports(ast.Module(body=[child], type_ignores=[]), type_checking=type_checking)
        else:
            found += _imports(node, type_checking=type_checking)
    return found


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The modules (any package) a statement imports."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    return {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}


def _imported(module: str, *, with_type_checking: bool) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))
    out: set[str] = set()
    for node, under_type_checking in _imports(tree, type_checking=False):
        if with_type_checking or not under_type_checking:
            out |= _targets(module, node)
    return out


def _graph() -> dict[str, set[str]]:
    return {m: {t for t in _imported(m, with_type_checking=False) if t in MODULES and t != m} for m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per back edge found by a depth-first search."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_function_level_and_submodule_imports() -> None:
    graph = _graph()
    assert "ml_pipelines.config.loader" in graph["ml_pipelines.cli"]  # imported inside a function
    assert "ml_pipelines.factory.describe" in graph["ml_pipelines.factory.assets"]  # from package import submodule


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_config_and_plan_import_no_dagster() -> None:
    offenders = {
        module: sorted(t for t in _imported(module, with_type_checking=True) if _under(t, "dagster"))
        for module in MODULES
        if _under(module, f"{PACKAGE}.config") or _under(module, f"{PACKAGE}.plan")
    }
    assert not {m: t for m, t in offenders.items() if t}


def test_layers() -> None:
    """config imports none of ours; plan imports only config (at run time)."""
    allowed = {f"{PACKAGE}.config": (f"{PACKAGE}.config",), f"{PACKAGE}.plan": (f"{PACKAGE}.config", f"{PACKAGE}.plan")}
    graph = _graph()
    wrong = {
        module: sorted(t for t in targets if not any(_under(t, ok) for ok in allowed[layer]))
        for layer in allowed
        for module, targets in graph.items()
        if _under(module, layer)
    }
    assert not {m: t for m, t in wrong.items() if t}
