"""Turn pydantic's validation errors into located, readable spec problems.

pydantic reports a ``loc`` through its own type structure (union tags, shorthand strings);
we walk the user's data along it to find the path they wrote, and the model's fields along
it to suggest the key they meant.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from registry._registry import closest
from runner.spec.errors import Path, Problem, dotted
from runner.spec.yaml_source import Source, shorten


def data_path(data: Any, loc: tuple[Any, ...]) -> Path:
    """The part of ``loc`` that names values in ``data`` (tags and wrappers dropped)."""
    path: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            continue
        path.append(part)
    return tuple(path)


def field_names(model: type[BaseModel], data: Any, path: Path) -> list[str]:
    """Field names of the pydantic model that validates the mapping at ``path``."""
    annotation: Any = model
    node = data
    for key in path:
        annotation = _member_for(annotation, node)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(key))
            if field is None:
                return []
            annotation = field.annotation
        else:
            annotation = _item_type(annotation)
        if isinstance(node, dict):
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int):
            node = node[key]
        else:
            node = None
    annotation = _member_for(annotation, node)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg)]
    return [annotation]


def _member_for(annotation: Any, node: Any) -> Any:
    """The union member that applies to ``node`` (by its ``type`` tag when it has one)."""
    members = _unwrap(annotation)
    if isinstance(node, str):
        node = {"type": node}
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    tag = node.get("type") if isinstance(node, dict) else None
    for candidate in models:
        field = candidate.model_fields.get("type")
        if field is not None and tag in typing.get_args(field.annotation):
            return candidate
    if models and isinstance(node, dict):
        return models[0]
    containers = [m for m in members if typing.get_origin(m) in (list, dict)]
    if containers and isinstance(node, (list, dict)):
        return containers[0]
    return members[0] if members else annotation


def _item_type(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list and args:
        return args[0]
    if typing.get_origin(annotation) is dict and len(args) == 2:
        return args[1]
    return Any


def _quoted(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text)


def problems_from(errors: Sequence[Mapping[str, Any]], source: Source, model: type[BaseModel]) -> list[Problem]:
    """One problem per offending value; alternatives of a union are merged into one message."""
    grouped: dict[tuple[Path, str], list[Mapping[str, Any]]] = {}
    for error in errors:
        path = data_path(source.data, tuple(error["loc"]))
        kind = error["type"]
        if kind in {"missing", "extra_forbidden"} and path[-1:] != (error["loc"][-1],):
            path = (*path, error["loc"][-1])
        grouped.setdefault((path, kind if kind in {"missing", "extra_forbidden"} else "value"), []).append(error)

    problems = []
    for (path, kind), group in grouped.items():
        error = group[0]
        if kind == "extra_forbidden":
            known = [f for f in field_names(model, source.data, path[:-1]) if f != "type"]
            hint = closest(str(path[-1]), known)
            text = f"unknown key {path[-1]!r}." + (f" Did you mean {hint!r}?" if hint else "")
            if known and not hint:
                text += f" Known keys: {', '.join(known)}."
            problems.append(Problem(source.locate(path, key=True), dotted(path), text))
        elif kind == "missing":
            problems.append(Problem(source.locate(path[:-1]), dotted(path), "is required but missing"))
        elif error["type"] == "union_tag_invalid":
            tag, known = error["ctx"]["tag"], _quoted(error["ctx"]["expected_tags"])
            hint = closest(tag, known)
            what = _kind_at(path)
            text = f"unknown {what} {tag!r}." + (f" Did you mean {hint!r}?" if hint else "")
            text += f" Known: {', '.join(known)}."
            if ":" in tag:  # a module:attr reference (runner.spec.imports)
                text = f"{tag!r} is a Python import reference; importing code from a spec needs `runner run --allow-imports`"
            type_path = (*path, "type") if (*path, "type") in source.values else path
            problems.append(Problem(source.locate(type_path), dotted(type_path), text))
        elif error["type"] == "union_tag_not_found":
            problems.append(Problem(source.locate(path), dotted(path), "needs a `type` naming the component"))
        else:
            messages = list(dict.fromkeys(_message(e) for e in group))
            value = error.get("input")
            shown = "" if isinstance(value, (dict, list)) else f" (got {shorten(repr(value))})"
            problems.append(Problem(source.locate(path), dotted(path), " or ".join(messages) + shown))
    return problems


def _kind_at(path: Path) -> str:
    """What a component at ``path`` is: ``optimizer`` for ``optimizer``, ``metric`` for ``metrics[1]``."""
    if path and isinstance(path[-1], str):
        return path[-1]
    if len(path) >= 2 and isinstance(path[-2], str):
        return path[-2].removesuffix("s")
    return "component"


def _message(error: Mapping[str, Any]) -> str:
    text = str(error["msg"])
    return text.removeprefix("Value error, ")


def suggested_types(errors: Sequence[Mapping[str, Any]], source: Source) -> dict[Path, str]:
    """For each unknown component name with a close match, the path of its block and the match."""
    fixes = {}
    for error in errors:
        if error["type"] != "union_tag_invalid":
            continue
        hint = closest(error["ctx"]["tag"], _quoted(error["ctx"]["expected_tags"]))
        if hint:
            fixes[data_path(source.data, tuple(error["loc"]))] = hint
    return fixes
