"""The tests' own layout: any set of test directories can be collected in one pytest run.

Test directories are not packages, so pytest imports every file in them by its bare name
(`rootdir`-less "prepend" mode): two files with one name, or a test importing `conftest`
(each directory has one and only the last loaded keeps the name), break a run that collects
both directories, while each directory alone still passes.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _python_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "fixtures" not in p.relative_to(TESTS).parts)


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_test_module_imports_a_conftest() -> None:
    offenders = [
        str(p.relative_to(TESTS)) for p in _python_files() if "conftest" in _imported_modules(p)
    ]
    assert offenders == [], f"move the shared helpers to a uniquely named module: {offenders}"


def test_every_test_file_name_is_unique() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in _python_files():
        if path.name not in ("conftest.py", "__init__.py"):
            by_name[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert clashes == {}, f"two test files share a name (pytest imports them by it): {clashes}"
