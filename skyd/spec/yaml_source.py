"""Loading a task file's YAML while remembering where each field was written.

PyYAML (with libyaml when present) builds the node tree once; the same tree gives
the Python values, the line/column of every key and value, and the exact text of
each scalar (so `envs: {LR: 1.10}` stays "1.10" and prices stay exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from skyd.errors import SpecError

MAX_TASK_BYTES = 1_000_000
# A file that aliases nodes into each other can describe a huge tree in a few lines;
# locations are only recorded for this many nodes (values still load fine).
MAX_LOCATED_NODES = 20_000

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(slots=True)
class SourceMap:
    """Where each field path was written: its key, its value, and a scalar value's text."""

    source: str
    keys: dict[str, Position] = field(default_factory=dict)
    values: dict[str, Position] = field(default_factory=dict)
    scalars: dict[str, str] = field(default_factory=dict)

    def position(self, path: str, *, of_key: bool = False) -> Position | None:
        table = self.keys if of_key else self.values
        # A path inside a value YAML did not locate (an alias, say) points at its nearest parent.
        while True:
            if path in table:
                return table[path]
            if path in self.values:
                return self.values[path]
            cut = max(path.rfind("."), path.rfind("["))
            if cut <= 0:
                return None
            path = path[:cut]

    def where(self, path: str, *, of_key: bool = False) -> str:
        pos = self.position(path, of_key=of_key)
        return f"{self.source}:{pos.line}:{pos.column}" if pos else self.source


def child_path(parent: str, key: object) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def _position(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _record(node: yaml.Node, path: str, sources: SourceMap) -> None:
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(node, path)]
    while stack and len(seen) < MAX_LOCATED_NODES:
        current, here = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        sources.values[here] = _position(current)
        if isinstance(current, yaml.ScalarNode):
            sources.scalars[here] = str(current.value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, child_path(here, i)) for i, item in enumerate(current.value))
        elif isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                child = child_path(here, key)
                sources.keys.setdefault(child, _position(key_node))
                stack.append((value_node, child))


def load_yaml(text: str, source: str) -> tuple[Any, SourceMap]:
    """The document's value and its source map; YAML syntax errors become SpecError
    naming the line and column."""
    sources = SourceMap(source)
    if len(text.encode("utf-8", errors="replace")) > MAX_TASK_BYTES:
        raise SpecError(
            f"{source}: the task file is larger than {MAX_TASK_BYTES // 1000} kB; "
            "keep data out of it (use file_mounts or workdir)"
        )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, sources
        value = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = ": ".join(part for part in (exc.context, exc.problem) if part)
        raise SpecError(f"{where}: YAML syntax error: {problem or exc}") from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        # Constructors raise plain errors for things like an out-of-range date.
        raise SpecError(f"{source}: YAML could not be read: {exc}") from None
    finally:
        loader.dispose()
    _record(node, "", sources)
    return value, sources
