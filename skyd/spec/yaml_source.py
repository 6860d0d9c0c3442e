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
# Locations are recorded for at most this many nodes (values still load fine past it).
MAX_LOCATED_NODES = 20_000

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(slots=True)
class SourceMap:
    """Where each field path was written: its key node, its value node, a scalar's text."""

    source: str
    keys: dict[str, yaml.Node] = field(default_factory=dict)
    values: dict[str, yaml.Node] = field(default_factory=dict)
    # Field paths whose value came from the command line, with the option that set it.
    options: dict[str, str] = field(default_factory=dict)

    def scalar_text(self, path: str) -> str | None:
        """The value at `path` exactly as written, if it is a scalar."""
        node = self.values.get(path)
        return str(node.value) if isinstance(node, yaml.ScalarNode) else None

    def position(self, path: str, *, of_key: bool = False) -> Position | None:
        table = self.keys if of_key else self.values
        # A path inside a value YAML did not locate (an alias, say) points at its nearest parent.
        while True:
            node = table.get(path) or self.values.get(path)
            if node is not None:
                return Position(node.start_mark.line + 1, node.start_mark.column + 1)
            cut = max(path.rfind("."), path.rfind("["))
            if cut <= 0:
                return None
            path = path[:cut]

    def where(self, path: str, *, of_key: bool = False) -> str:
        option = self.options.get(path)
        if option is not None:
            return option
        pos = self.position(path, of_key=of_key)
        return f"{self.source}:{pos.line}:{pos.column}" if pos else self.source


def child_path(parent: str, key: object) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


class _Converter:
    """Node tree → Python values in one pass that also fills the source map.

    Equivalent to SafeLoader's construction for the tags a task file uses, and
    defers to it for the rest. A node reached again through an alias yields the
    same object, as in PyYAML, so aliases cannot blow up the work.
    """

    def __init__(self, loader: yaml.SafeLoader, sources: SourceMap) -> None:
        self.loader = loader
        self.sources = sources
        self.done: dict[int, Any] = {}
        self.scalar_constructors = {
            "tag:yaml.org,2002:null": loader.construct_yaml_null,
            "tag:yaml.org,2002:bool": loader.construct_yaml_bool,
            "tag:yaml.org,2002:int": loader.construct_yaml_int,
            "tag:yaml.org,2002:float": loader.construct_yaml_float,
            "tag:yaml.org,2002:timestamp": loader.construct_yaml_timestamp,
        }

    def convert(self, node: yaml.Node, path: str) -> Any:
        known = self.done.get(id(node))
        if known is not None or id(node) in self.done:
            return known
        if len(self.sources.values) < MAX_LOCATED_NODES:
            self.sources.values[path] = node
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = self._scalar(node)
        elif isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            value = []
            self.done[id(node)] = value
            value.extend(
                self.convert(item, child_path(path, i)) for i, item in enumerate(node.value)
            )
        elif isinstance(node, yaml.MappingNode) and node.tag == _MAP:
            value = {}
            self.done[id(node)] = value
            self._fill_mapping(node, path, value)
        else:
            value = self.loader.construct_object(node, deep=True)
        self.done[id(node)] = value
        return value

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _STR:
            return node.value
        if (construct := self.scalar_constructors.get(node.tag)) is not None:
            return construct(node)
        return self.loader.construct_object(node, deep=True)

    def _fill_mapping(self, node: yaml.MappingNode, path: str, mapping: dict[Any, Any]) -> None:
        # Keys written in this mapping itself; those pulled in by `<<: *base` may be
        # overridden by them, but a key written twice here is a mistake.
        written = {id(key) for key, _ in node.value if key.tag != _MERGE}
        if len(written) != len(node.value):
            self.loader.flatten_mapping(node)
        first_seen: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                where = self._where(key_node)
                raise SpecError(f"{where}: {path or 'top level'}: a key must be a plain word")
            key = self._scalar(key_node)
            child = child_path(path, key_node.value)
            if key in first_seen and id(first_seen[key]) in written and id(key_node) in written:
                line = first_seen[key].start_mark.line + 1
                raise SpecError(
                    f"{self._where(key_node)}: {child}: set twice (first on line {line}); keep one",
                    field=child,
                )
            first_seen[key] = key_node
            if len(self.sources.keys) < MAX_LOCATED_NODES:
                self.sources.keys[child] = key_node
            mapping[key] = self.convert(value_node, child)

    def _where(self, node: yaml.Node) -> str:
        return f"{self.sources.source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def load_yaml(text: str, source: str) -> tuple[Any, SourceMap]:
    """The document's value and its source map; YAML syntax errors become SpecError
    naming the line and column."""
    documents = load_yaml_documents(text, source, single=True)
    return documents[0] if documents else (None, SourceMap(source))


def load_yaml_documents(
    text: str, source: str, *, single: bool = False
) -> list[tuple[Any, SourceMap]]:
    """Every document of the stream (`---` separated) with its own source map; with
    `single`, a second document is a syntax error."""
    if len(text) > MAX_TASK_BYTES or len(text.encode("utf-8", errors="replace")) > MAX_TASK_BYTES:
        raise SpecError(
            f"{source}: the task file is larger than {MAX_TASK_BYTES // 1000} kB; "
            "keep data out of it (use file_mounts or workdir)"
        )
    loader = _Loader(text)
    try:
        if single:
            node = loader.get_single_node()
            nodes = [] if node is None else [node]
        else:
            nodes = []
            while loader.check_node():
                document = loader.get_node()
                if document is not None:
                    nodes.append(document)
        documents = []
        for node in nodes:
            sources = SourceMap(source)
            documents.append((_Converter(loader, sources).convert(node, ""), sources))
        return documents
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
