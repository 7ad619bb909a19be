"""``module:attr`` component references, allowed only with ``--allow-imports``.

A spec may name a component by import reference, e.g. ``model: {type: "mypkg.nets:tiny_cnn"}``,
instead of a registered name. Importing runs code, so it happens only when the user asks
(``runner run --allow-imports``); otherwise validation reports the reference as an error that
says so. The object is registered under the reference itself, with the builder contract of
entry-point plugins (its ``Params`` attribute, if any, is its parameter model).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Any

import registry
from registry._registry import NoParams
from runner.spec.errors import Path, Problem
from runner.spec.yaml_source import Source

REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
#: Where a spec names components, and which registry each position draws from.
POSITIONS: tuple[tuple[Path, str, bool], ...] = (
    (("model",), "models", False),
    (("loss",), "losses", False),
    (("regularizer",), "regularizers", False),
    (("optimizer",), "optimizers", False),
    (("scheduler",), "schedulers", False),
    (("metrics",), "metrics", True),
    (("data", "dataset"), "datasets", False),
    (("data", "transforms"), "transforms", True),
)


def is_reference(name: object) -> bool:
    """Whether a component ``type`` is a ``module:attr`` import reference."""
    return isinstance(name, str) and bool(REFERENCE.match(name))


def _type_of(value: Any) -> Any:
    return value.get("type") if isinstance(value, dict) else value


def references(data: Any) -> Iterator[tuple[Path, str, str]]:
    """Every (path of the ``type``, registry kind, reference) in a spec's data."""
    if not isinstance(data, dict):
        return
    for path, kind, many in POSITIONS:
        value: Any = data
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        items = list(enumerate(value)) if many and isinstance(value, list) else [(None, value)]
        for index, item in items:
            name = _type_of(item)
            if is_reference(name):
                where = path + ((index,) if index is not None else ())
                yield (where + ("type",) if isinstance(item, dict) else where), kind, name


def resolve(reference: str) -> Any:
    """Import ``module:attr`` (attr may be dotted) and return the object."""
    module_name, _, attribute = reference.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def register_references(source: Source) -> None:
    """Import and register every reference in ``source``; failures become its problems."""
    from runner.spec.schema import refresh_component_fields

    added = False
    for path, kind, reference in references(source.data):
        target = registry.REGISTRIES[kind]
        if reference in target:
            continue
        try:
            builder = resolve(reference)
            target.add(reference, builder, getattr(builder, "Params", NoParams))
            added = True
        except (ImportError, AttributeError, TypeError, ValueError) as error:
            source.problems.append(Problem(source.locate(path), ".".join(map(str, path)), f"cannot import {reference!r}: {error}"))
    if added:
        refresh_component_fields()
