"""The code's structure, read statically with ``ast`` (nothing is imported): no import cycles among
etl_project's modules, functions that read in one screen, and Dagster's public API only."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "etl_project"
TESTS = Path(__file__).resolve().parent
MAX_FUNCTION_LINES = 80
GENERATED = {"generate_names.py"}  # data (name lists) written as Python, not logic


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imported_names(node: ast.AST, package: str) -> list[str]:
    """The dotted names an import statement (or ``importlib.import_module("literal")``) loads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return [node.args[0].value]
    return []


def import_graph(known: dict[str, Path]) -> dict[str, dict[str, int]]:
    """Module -> {module it imports: line of the first such import}.

    An import of ``a.b.c`` also runs the packages ``a.b`` and ``a`` first, so they are edges too, except the
    importing module's own packages, which are already being imported when its code runs."""
    graph: dict[str, dict[str, int]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _imported_names(node, package):
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    loaded = ".".join(parts[:i])
                    if loaded in known and loaded not in own:
                        edges[loaded] = min(edges.get(loaded, node.lineno), node.lineno)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle as [m1, m2, ..., m1], or None when the graph is a DAG (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def describe(cycle: list[str], graph: dict[str, dict[str, int]], known: dict[str, Path]) -> str:
    steps = [
        f"{a} imports {b} ({known[a].relative_to(PACKAGE.parent)}:{graph[a][b]})"
        for a, b in itertools.pairwise(cycle)
    ]
    return "import cycle: " + "; ".join(steps)


def test_the_cycle_finder_reports_a_cycle_and_accepts_a_dag():
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {}}) is None
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 3}}) == ["a", "b", "c", "a"]


def test_no_import_cycles_among_etl_project_modules():
    """The import graph of etl_project must be a DAG.

    The rule: every import of an etl_project module counts as an edge, wherever it stands (module level,
    inside a function, under ``if TYPE_CHECKING``) and also ``importlib.import_module("etl_project...")``
    with a literal name. A lazy import inside a function that only defers a cycle is still a cycle: the two
    modules still need each other, so the fix is to move the shared piece into its own module. Importing a
    module also imports the packages above it, except the importer's own packages."""
    known = modules()
    graph = import_graph(known)
    cycle = find_cycle(graph)
    assert cycle is None, describe(cycle, graph, known)


def functions(path: Path) -> Iterator[tuple[str, int]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node.end_lineno - node.lineno + 1


def test_every_function_reads_in_one_screen():
    """At most MAX_FUNCTION_LINES lines per function (decorators not counted, docstring and blank lines
    counted), so that a function's steps are seen together; long ones are split along their steps."""
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in GENERATED:
            continue
        where = path.relative_to(PACKAGE).as_posix()
        for name, lines in functions(path):
            if lines > MAX_FUNCTION_LINES:
                too_long.append(f"{where}:{name} has {lines} lines")
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: " + ", ".join(too_long)


PRIVATE_DAGSTER = re.compile(r"^\s*(from|import)\s+dagster(_\w+)?\._", re.MULTILINE)


def test_only_dagsters_public_api_is_imported():
    """No ``dagster._...`` (or ``dagster_aws._...``, ...) import in the package or its tests: private modules
    change without notice between Dagster releases."""
    private = [
        f"{path.relative_to(PACKAGE.parent)}:{source[: m.start()].count(chr(10)) + 1}"
        for root in (PACKAGE, TESTS)
        for path in sorted(root.rglob("*.py"))
        for source in [path.read_text()]
        for m in PRIVATE_DAGSTER.finditer(source)
    ]
    assert not private, "private Dagster imports: " + ", ".join(private)
