"""``--set a.b=value`` overrides and ``extends:`` inheritance, applied to located YAML data."""

from __future__ import annotations

import copy
from typing import Any

from runner.spec.errors import Location, Path, Problem, dotted
from runner.spec.yaml_source import Source, scalar, shorten


def parse_path(text: str) -> Path:
    """``model.hidden[0]`` or ``model.hidden.0`` -> ``("model", "hidden", 0)``."""
    keys: list[str | int] = []
    for part in text.replace("[", ".").replace("]", "").split("."):
        if part == "":
            raise ValueError(f"empty key in path {text!r}")
        keys.append(int(part) if part.isdigit() else part)
    return tuple(keys)


def set_path(data: dict[str, Any], path: Path, value: Any) -> None:
    """Set ``value`` at ``path``, creating mappings on the way; list items must exist.
    ``ValueError`` says which step of the path cannot be taken."""
    node: Any = data
    for depth, key in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, list):
            if not isinstance(key, int) or not -len(node) <= key < len(node):
                raise ValueError(f"{dotted(path[:depth]) or 'the spec'} is a list of {len(node)}: {key!r} is not one of its items")
            if last:
                node[key] = value
            else:
                node = node[key]
            continue
        if not isinstance(node, dict):
            raise ValueError(f"{dotted(path[:depth])} is {shorten(repr(node))}, not a mapping or a list")
        if last:
            node[key] = value
        else:
            child = node.get(key)
            if not isinstance(child, (dict, list)):
                child = node[key] = {}
            node = child


def get_path(data: Any, path: Path) -> Any:
    """The value at ``path``; KeyError/IndexError/TypeError when absent."""
    for key in path:
        data = data[key]
    return data


def apply_sets(source: Source, assignments: list[str]) -> None:
    """Apply ``KEY=VALUE`` assignments; the value is read as YAML (``0.01``, ``[64, 32]``)."""
    for assignment in assignments:
        where = Location(f"--set {assignment}")
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            source.problems.append(Problem(where, "", "expected KEY=VALUE, e.g. optimizer.lr=0.01"))
            continue
        try:
            path = parse_path(key.strip())
        except ValueError as error:
            source.problems.append(Problem(where, key.strip(), f"cannot set: {error}"))
            continue
        value, problems = scalar(raw)
        if problems:
            source.problems += [Problem(where, key.strip(), f"the value is not plain YAML: {p.message}") for p in problems]
            continue
        if not isinstance(source.data, dict):
            source.data = {}
        try:
            set_path(source.data, path, value)
        except ValueError as error:
            source.problems.append(Problem(where, key.strip(), f"cannot set: {error}"))
            continue
        for located in list(source.values):
            if located[: len(path)] == path:
                del source.values[located]
        source.values[path] = where
        source.keys[path] = where
        for end in range(1, len(path)):  # mappings the assignment created are written there too
            source.keys.setdefault(path[:end], where)
            source.values.setdefault(path[:end], where)


def merge(base: Source, child: Source) -> Source:
    """``child`` deep-merged over ``base``: mappings merge key by key, anything else replaces."""
    merged = Source(
        data=copy.deepcopy(base.data) if isinstance(base.data, dict) else {},
        values=dict(base.values),
        keys=dict(base.keys),
        problems=[*base.problems, *child.problems],
        name=child.name,
        unreadable=base.unreadable | child.unreadable,
    )

    def overlay(target: dict[str, Any], patch: dict[str, Any], path: Path) -> None:
        for key, value in patch.items():
            here = (*path, key)
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                overlay(target[key], value, here)
                continue
            target[key] = copy.deepcopy(value)
            for located in [p for p in merged.values if p[: len(here)] == here]:
                del merged.values[located]
                merged.keys.pop(located, None)

    if isinstance(child.data, dict):
        overlay(merged.data, child.data, ())
    merged.values.update(child.values)
    merged.keys.update(child.keys)
    return merged


__all__ = ["apply_sets", "dotted", "get_path", "merge", "parse_path", "set_path"]
