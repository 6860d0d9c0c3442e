"""The import graph of skyd/: no cycles, and the layering the design asks for.

Walks every `import` statement with `ast`. Cycles are looked for among the imports that run
when a module is loaded (TYPE_CHECKING ones included: a cycle only the type checker sees is
still a cycle); a deliberate import inside a function is not an edge of that graph. The
layering rules count every import, lazy ones too.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Pure scheduler modules: decisions from records, no I/O.
PURE_SCHEDULER = {
    "skyd.scheduler.selection",
    "skyd.scheduler.blocks",
    "skyd.scheduler.watching",
    "skyd.scheduler.recovery",
    "skyd.scheduler.budgets",
    "skyd.scheduler.changeover",
    "skyd.scheduler.plan_moves",
}
IMPURE = ("skyd.store", "skyd.providers", "skyd.runner", "asyncio")
RECORDS = {"skyd.store.records"}  # plain records the store returns: no I/O in them
ABOVE_SCHEDULER = ("skyd.accounting", "skyd.clusters", "skyd.api")
LEAVES = {"skyd.identity", "skyd.model", "skyd.errors", "skyd.clock"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _statements(tree: ast.AST, *, lazy: bool) -> Iterator[ast.AST]:
    """Every node of `tree`; without `lazy`, none inside a function body."""
    for node in ast.iter_child_nodes(tree):
        if not lazy and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield node
        yield from _statements(node, lazy=lazy)


def imports_of(root: Path, path: Path, known: set[str], *, lazy: bool = True) -> set[str]:
    """The modules `path` imports (skyd's own resolved to modules; others by their name);
    with `lazy`, also those imported inside functions."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _statements(ast.parse(path.read_text(), str(path)), lazy=lazy):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in known else source)
    return found


def import_graph(root: Path, package: str, *, lazy: bool = True) -> dict[str, set[str]]:
    paths = sorted((root / package).rglob("*.py"))
    known = {module_name(root, p) for p in paths}
    return {module_name(root, p): imports_of(root, p, known, lazy=lazy) for p in paths}


def own(graph: Mapping[str, set[str]], prefix: str) -> dict[str, set[str]]:
    """The graph restricted to edges into `prefix` (a cycle through a library is no concern)."""
    return {m: {t for t in ts if under(t, [prefix])} for m, ts in graph.items()}


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def under(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def forbidden_edges(graph: Mapping[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if module in PURE_SCHEDULER and under(target, IMPURE) and target not in RECORDS:
                bad.append(f"{module} is pure but imports {target}")
            if under(module, ["skyd.scheduler"]) and under(target, ABOVE_SCHEDULER):
                bad.append(f"{module} imports {target} (use skyd.scheduler.interfaces)")
            if module in LEAVES and under(target, ["skyd"]):
                bad.append(f"{module} must import nothing of skyd, imports {target}")
    return bad


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(REPO, "skyd")


def test_skyd_has_no_import_cycle() -> None:
    loading = import_graph(REPO, "skyd", lazy=False)
    assert len(loading) > 100  # the walk found the package
    assert find_cycle(own(loading, "skyd")) is None


def test_no_forbidden_import_edges(graph: dict[str, set[str]]) -> None:
    assert forbidden_edges(graph) == []


def test_every_pure_scheduler_module_exists(graph: dict[str, set[str]]) -> None:
    assert set(graph) >= PURE_SCHEDULER


def test_the_walk_finds_a_cycle_and_forbidden_edges(tmp_path: Path) -> None:
    """The checks above can fail: a planted cycle and planted edges are caught."""
    pkg = tmp_path / "skyd" / "scheduler"
    pkg.mkdir(parents=True)
    (tmp_path / "skyd" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "selection.py").write_text("import asyncio\nfrom skyd.store import jobs\n")
    (pkg / "driver.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import launching\n"
    )
    (pkg / "launching.py").write_text("from skyd.scheduler.driver import x\nimport skyd.api\n")
    (pkg / "watching.py").write_text("def f():\n    import skyd.scheduler.blocks\n")
    (pkg / "blocks.py").write_text("import skyd.scheduler.watching\n")
    planted = import_graph(tmp_path, "skyd")
    # the lazy import is no edge of the loading graph: only driver <-> launching is a cycle
    assert find_cycle(own(import_graph(tmp_path, "skyd", lazy=False), "skyd")) in (
        ["skyd.scheduler.driver", "skyd.scheduler.launching", "skyd.scheduler.driver"],
        ["skyd.scheduler.launching", "skyd.scheduler.driver", "skyd.scheduler.launching"],
    )
    assert find_cycle(own(planted, "skyd")) is not None
    assert forbidden_edges(planted) == [
        "skyd.scheduler.launching imports skyd.api (use skyd.scheduler.interfaces)",
        "skyd.scheduler.selection is pure but imports asyncio",
        "skyd.scheduler.selection is pure but imports skyd.store",
    ]
