"""The package's shape stays as DESIGN.md asks: no import circles, and long modules say why they are long.

Import graph: an edge A → B for every import statement in module A's body that names a tagd module B —
statements at module level, including those under ``if``/``try`` and ``if TYPE_CHECKING:`` (a type-only
import is still a dependency, and one edit away from an import-time one). Imports inside functions and
methods do not count: Python runs them on the first call, not while the module loads, so they cannot make
an import-time cycle — the risk this test guards against. Importing ``a.b.c`` also runs ``a/__init__`` and
``a/b/__init__``; those parent edges are left out, as a package importing its own submodules is how
re-exports work and Python handles it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tagd

ROOT = Path(tagd.__file__).parent
LONG = 450  # lines (DESIGN.md says ~400; over this a module must say why it is one module)
WHY_LONG = re.compile(r"^\s*why it is long:", re.IGNORECASE | re.MULTILINE)


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("tagd", *path.relative_to(ROOT).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _body_imports(stmts: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run while the module loads: not inside a function (class bodies do run)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for stmt in stmts:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            found.append(stmt)
        elif not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for name in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(stmt, name, []):
                    found += _body_imports(child.body if isinstance(child, ast.ExceptHandler) else [child])
    return found


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The tagd module a dotted name is (``tagd.readers.base``) or lies in (``tagd.readers.base.Reader``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in _body_imports(ast.parse(path.read_text(encoding="utf-8"), str(path)).body):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                targets = [f"{base}.{a.name}" for a in node.names]
            edges |= {t for t in (_owner(t, modules) for t in targets) if t is not None and t != name}
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_circle_and_only_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_module_level_imports_and_not_function_level_ones() -> None:
    graph = import_graph()
    assert "tagd.readers.base" in graph["tagd.readers.manager"]  # from tagd.readers.base import …
    assert "tagd.daemon.config.checks" in graph["tagd.daemon.config.schema"]
    assert "tagd.readers.manager" in graph["tagd.daemon.service"]  # under `if TYPE_CHECKING:` (and in _start)
    assert "tagd.daemon.mappings" not in graph["tagd.daemon.config.loading"]  # only inside _check_mapping_entries
    tree = ast.parse("import tagd.token\ndef f():\n    import tagd.readers.base\nif X:\n    from . import y\n")
    assert [type(n).__name__ for n in _body_imports(tree.body)] == ["Import", "ImportFrom"]


def test_tagd_has_no_import_circles() -> None:
    found = cycles(import_graph())
    assert not found, "import circles (module-level imports): " + "; ".join(" → ".join(c) for c in found)


def test_a_module_over_450_lines_says_why_in_its_docstring() -> None:
    unexplained = []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > LONG and not WHY_LONG.search(ast.get_docstring(ast.parse(text)) or ""):
            unexplained.append(f"{name} ({lines} lines)")
    assert not unexplained, (f"over {LONG} lines without a 'Why it is long: …' line in the module docstring "
                             f"(split it, or say why it is one module): {', '.join(unexplained)}")
