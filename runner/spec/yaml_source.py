"""Safe YAML loading that remembers where every key and value was written.

PyYAML's ``SafeLoader`` builds the node tree; we turn it into plain Python values ourselves
so that each value keeps its line and column, and a key written twice is an error instead
of silently keeping the last one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import yaml

from runner.spec.errors import Location, Path, Problem, dotted


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` as a float (YAML 1.1 needs ``1.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)(?:\.[\d_]*)?[eE][-+]?\d+$"),
    list("-+0123456789"),
)


@dataclass
class Source:
    """A YAML document as plain data, with the location of every value and key in it."""

    data: Any
    values: dict[Path, Location] = field(default_factory=dict)
    keys: dict[Path, Location] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def locate(self, path: Path, *, key: bool = False) -> Location:
        """The location of ``path``, or of its nearest written ancestor."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in table:
                return table[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return Location("<spec>")


def _mark(name: str, node: yaml.Node) -> Location:
    return Location(name, node.start_mark.line + 1, node.start_mark.column + 1)


def parse(text: str, name: str) -> Source:
    """Parse one YAML document; syntax errors and duplicate keys become problems."""
    source = Source(data=None)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name)
        source.problems.append(Problem(where, "", f"invalid YAML: {error.problem}"))
        return source
    finally:
        loader.dispose()
    if node is None:
        source.data = {}
        return source
    source.data = _build(node, (), name, source, loader)
    return source


def _build(node: yaml.Node, path: Path, name: str, source: Source, loader: _Loader) -> Any:
    source.values[path] = _mark(name, node)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                source.problems.append(Problem(_mark(name, key_node), "", "keys must be plain scalars"))
                continue
            child = (*path, key)
            if key in result:
                first = source.keys[child]
                source.problems.append(Problem(_mark(name, key_node), dotted(child), f"duplicate key (first written at line {first.line})"))
                continue
            source.keys[child] = _mark(name, key_node)
            result[key] = _build(value_node, child, name, source, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), name, source, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def read(file: FilePath) -> Source:
    """Parse a spec file; an unreadable file is a problem, not an exception."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        source = Source(data=None)  # nothing to validate: missing keys would only echo this
        source.problems.append(Problem(Location(str(file)), "", f"cannot read: {error.strerror}"))
        return source
    return parse(text, str(file))


def scalar(text: str) -> Any:
    """A ``--set`` value parsed as a YAML scalar or flow collection (``0.01``, ``[64, 32]``)."""
    return yaml.load(text, Loader=_Loader)
