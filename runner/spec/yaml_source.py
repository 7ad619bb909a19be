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


#: Bounds on what one spec may be, so that a hostile or broken file gets an answer at once:
#: bytes read, values built (aliases of aliases expand geometrically: nine levels of nine
#: are 387 million), and nesting depth (PyYAML and the validators recurse).
MAX_BYTES = 2_000_000
MAX_VALUES = 200_000
MAX_DEPTH = 64


@dataclass
class Source:
    """A YAML document as plain data, with the location of every value and key in it."""

    data: Any
    values: dict[Path, Location] = field(default_factory=dict)
    keys: dict[Path, Location] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: The file (or ``--set`` argument) it came from: where a problem with no value of its own is.
    name: str = "<spec>"
    #: Values written but not readable (``!!int abc``): reported once, not again by the schema.
    unreadable: set[Path] = field(default_factory=set)

    def locate(self, path: Path, *, key: bool = False) -> Location:
        """The location of ``path``, or of its nearest written ancestor."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in table:
                return table[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return Location(self.name)


def _mark(name: str, node: yaml.Node) -> Location:
    return Location(name, node.start_mark.line + 1, node.start_mark.column + 1)


def parse(text: str, name: str) -> Source:
    """Parse one YAML document; syntax errors, values that cannot be read and duplicate keys
    become problems, and so does a document beyond the bounds above."""
    source = Source(data=None, name=name)
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as error:  # a character YAML does not allow (NUL, control characters)
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        source.problems.append(Problem(Location(name, line, column), "", f"character U+{error.character:04X} is not allowed in YAML"))
        return source
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name)
        source.problems.append(Problem(where, "", f"invalid YAML: {error.problem}"))
        return source
    except yaml.YAMLError as error:  # the reader's: a character YAML does not allow
        source.problems.append(Problem(Location(name), "", f"invalid YAML: {error}".replace("\n", " ")))
        return source
    except RecursionError:
        source.problems.append(Problem(Location(name), "", f"nested too deeply (more than {MAX_DEPTH} levels)"))
        return source
    finally:
        loader.dispose()
    if node is None:
        source.data = {}
        return source
    try:
        source.data = _build(node, (), name, source, loader, _Budget())
    except _TooLarge as error:
        source.data = None  # a runaway document: its first problems, then why it was given up
        source.problems = [*source.problems[:20], Problem(error.where, "", error.message)]
    return source


class _TooLarge(Exception):
    def __init__(self, where: Location, message: str) -> None:
        self.where, self.message = where, message


@dataclass
class _Budget:
    """What is left of :data:`MAX_VALUES`, and the nodes being built (an alias to one of them
    refers to itself)."""

    left: int = MAX_VALUES
    open: set[int] = field(default_factory=set)


def _construct(node: yaml.Node, path: Path, name: str, source: Source, loader: _Loader) -> Any:
    """A scalar's value; a value its tag cannot make (``!!int abc``, an unknown tag) is a problem."""
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    try:
        return loader.construct_object(node, deep=True)
    except yaml.MarkedYAMLError as error:
        problem = str(error.problem or error)
        if "could not determine a constructor" in problem:
            problem = f"unknown tag {tag}: a spec holds plain values"
        source.problems.append(Problem(_mark(name, node), dotted(path), problem))
    except Exception as error:  # PyYAML's constructors fail in many ways (`!!int` of nothing: IndexError)
        source.problems.append(Problem(_mark(name, node), dotted(path), f"{shorten(str(node.value))!r} cannot be read as {tag}: {error}"))
    source.unreadable.add(path)
    return None


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters for a message (a value may be 200,000 long), with
    characters that would not print (a NUL, a newline) escaped."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text)} characters)"


def _build(node: yaml.Node, path: Path, name: str, source: Source, loader: _Loader, budget: _Budget) -> Any:
    budget.left -= 1
    if budget.left < 0:
        raise _TooLarge(_mark(name, node), f"the spec expands to more than {MAX_VALUES} values (aliases of aliases?)")
    if len(path) > MAX_DEPTH:
        raise _TooLarge(_mark(name, node), f"nested too deeply (more than {MAX_DEPTH} levels)")
    if id(node) in budget.open:
        raise _TooLarge(_mark(name, node), "an alias refers to the collection it is in")
    source.values[path] = _mark(name, node)
    if isinstance(node, yaml.MappingNode):
        budget.open.add(id(node))
        try:
            return _mapping(node, path, name, source, loader, budget)
        finally:
            budget.open.discard(id(node))
    if isinstance(node, yaml.SequenceNode):
        budget.open.add(id(node))
        try:
            return [_build(item, (*path, i), name, source, loader, budget) for i, item in enumerate(node.value)]
        finally:
            budget.open.discard(id(node))
    return _construct(node, path, name, source, loader)


def _mapping(node: yaml.MappingNode, path: Path, name: str, source: Source, loader: _Loader, budget: _Budget) -> dict[Any, Any]:
    try:
        loader.flatten_mapping(node)  # `<<: *base` merge keys
    except yaml.MarkedYAMLError as error:
        source.problems.append(Problem(_mark(name, node), dotted(path), f"invalid merge key: {error.problem}"))
        return {}
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            source.problems.append(Problem(_mark(name, key_node), dotted(path), "keys must be plain scalars"))
            continue
        before = len(source.problems)
        key = _construct(key_node, path, name, source, loader)
        if len(source.problems) > before:  # a key its tag cannot make: said already
            continue
        if not isinstance(key, (str, int, float, bool)):
            source.problems.append(Problem(_mark(name, key_node), dotted(path), "keys must be plain scalars"))
            continue
        child = (*path, key)
        if key in result:
            first = source.keys[child]
            source.problems.append(Problem(_mark(name, key_node), dotted(child), f"duplicate key (first written at line {first.line})"))
            continue
        source.keys[child] = _mark(name, key_node)
        result[key] = _build(value_node, child, name, source, loader, budget)
    return result


def read(file: FilePath) -> Source:
    """Parse a spec file; an unreadable file is a problem, not an exception."""
    source = Source(data=None, name=str(file))  # nothing to validate: missing keys would only echo a problem
    try:
        with open(file, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        reason = getattr(error, "strerror", None) or str(error)
        source.problems.append(Problem(Location(str(file)), "", f"cannot read: {reason}"))
        return source
    if len(raw) > MAX_BYTES:
        source.problems.append(Problem(Location(str(file)), "", f"larger than {MAX_BYTES // 1_000_000} MB: not a spec"))
        return source
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        where = Location(str(file), line, error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1)
        source.problems.append(Problem(where, "", f"not UTF-8 text (byte 0x{raw[error.start]:02x})"))
        return source
    return parse(text, str(file))


def scalar(text: str) -> tuple[Any, list[Problem]]:
    """A ``--set`` value read as a YAML scalar or flow collection (``0.01``, ``[64, 32]``), and
    what is wrong with it: YAML that does not parse, or anchors, aliases and tags, which a
    value on the command line has no use for."""
    try:
        tokens = list(yaml.scan(text, Loader=_Loader))
    except yaml.YAMLError:
        tokens = []  # parse() below says what is wrong
    special = {yaml.AnchorToken: "an anchor", yaml.AliasToken: "an alias", yaml.TagToken: "a tag"}
    found = sorted({name for token in tokens for kind, name in special.items() if isinstance(token, kind)})
    if found:
        return None, [Problem(Location("--set"), "", f"{' and '.join(found)} in a --set value")]
    parsed = parse(text, "--set")
    return parsed.data, parsed.problems
