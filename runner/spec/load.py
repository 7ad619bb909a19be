"""From spec files to a validated :class:`Spec`, or one :class:`SpecError` listing every problem.

Pass 1 is pydantic's structural validation (types, ranges, component names and parameters);
pass 2 runs the cross-field checks and tries every search-space path. Nothing here imports
torch or mlflow.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path as FilePath
from typing import Any

from pydantic import ValidationError

from runner.spec.checks import run_checks
from runner.spec.errors import Location, Path, Problem, SpecError, dotted
from runner.spec.overrides import apply_sets, get_path, merge, parse_path, set_path
from runner.spec.pydantic_errors import data_path, problems_from, suggested_types
from runner.spec.schema import Spec
from runner.spec.yaml_source import Source, read, shorten

_MAX_EXTENDS_DEPTH = 10


def load_source(file: FilePath, sets: Iterable[str] = (), _chain: tuple[FilePath, ...] = ()) -> Source:
    """Read ``file``, resolve its ``extends:`` chain (paths relative to the file), apply ``--set``."""
    source = read(file)
    data = source.data if isinstance(source.data, dict) else None
    if data is not None and "extends" in data:
        parent = data.pop("extends")
        where = source.values.get(("extends",), Location(str(file)))
        # A chain that cannot be followed leaves nothing to validate (data None): the keys the
        # base would give would only be reported missing.
        base_file, unusable = _base_file(file, parent)
        if unusable is not None:
            source.problems.append(Problem(where, "extends", unusable))
            source.data = None
        elif base_file in _chain or len(_chain) >= _MAX_EXTENDS_DEPTH:
            source.problems.append(Problem(where, "extends", f"circular or too deep: {shorten(str(parent))}"))
            source.data = None
        else:
            base = load_source(base_file, (), (*_chain, file.resolve()))
            source = (
                merge(base, source)
                if base.data is not None
                else Source(None, problems=[*base.problems, *source.problems], name=source.name)
            )
    elif source.data is not None and not isinstance(source.data, dict):
        source.problems.append(Problem(source.locate(()), "", "a spec must be a mapping of keys to values"))
        source.data = {}
    if source.data is not None:
        apply_sets(source, list(sets))
    return source


def _base_file(file: FilePath, parent: Any) -> tuple[FilePath, str | None]:
    """The spec ``extends: parent`` names, relative to ``file``; or why it cannot be read."""
    if not isinstance(parent, str) or not parent:
        return file, "must be a path to another spec"
    try:
        base_file = (file.parent / parent).resolve()
        if not base_file.is_file():
            return base_file, f"cannot read {shorten(parent)}: no such file ({shorten(str(base_file))})"
    except (OSError, ValueError) as error:  # a name too long for the file system, a NUL byte
        reason = getattr(error, "strerror", None) or str(error)
        return file, f"cannot read {shorten(parent)}: {reason}"
    return base_file, None


def validate_data(source: Source) -> Spec:
    """Validate located data; raise :class:`SpecError` with every problem found."""
    problems = list(source.problems)
    if source.data is None:  # unparseable YAML: nothing further to check
        raise SpecError(problems)
    spec = None
    try:
        spec = Spec.model_validate(source.data)
    except ValidationError as error:
        errors = error.errors(include_url=False)
        said = {dotted(path) for path in source.unreadable}  # unreadable values: reported already
        problems += [p for p in problems_from(errors, source, Spec) if p.path not in said]
        problems += _problems_behind_misspelt_types(errors, source)
    if spec is not None:
        problems += [Problem(source.locate(path), dotted(path), text) for path, text in run_checks(spec)]
        problems += _search_space_problems(spec, source)
    if problems:
        raise SpecError(problems)
    assert spec is not None
    return spec


def load_spec(file: str | FilePath, sets: Iterable[str] = (), allow_imports: bool = False) -> Spec:
    """Load, merge, override and validate one spec file; with ``allow_imports``, components
    named ``module:attr`` are imported and registered first (see :mod:`runner.spec.imports`)."""
    source = load_source(FilePath(file), sets)
    if allow_imports:
        from runner.spec.imports import register_references

        register_references(source)
    return validate_data(source)


def with_overrides(spec: Spec, values: dict[str, Any], written: dict[str, Any] | None = None) -> Spec:
    """A new spec with dotted-path values replaced, validated again (used by search trials).

    ``written`` is the spec as written (``load_source(...).data``): overriding a component's
    ``type`` there gives the new type its own defaults, not the old type's resolved ones."""
    data = copy.deepcopy(written) if written is not None else spec.to_data()
    for path_text, value in values.items():
        set_path(data, parse_path(path_text), value)
    return validate_data(Source(data=data))


def _problems_behind_misspelt_types(errors: Sequence[Mapping[str, Any]], source: Source) -> list[Problem]:
    """Also check a block whose ``type`` is misspelt against the likely intended component."""
    fixes = suggested_types(errors, source)
    if not fixes:
        return []
    data = copy.deepcopy(source.data)
    for path, name in fixes.items():
        block = get_path(data, path) if path else data
        if isinstance(block, dict):
            block["type"] = name
        else:
            set_path(data, path, name)
    try:
        Spec.model_validate(data)
    except ValidationError as error:
        inner = [
            e
            for e in error.errors(include_url=False)
            if any(data_path(data, tuple(e["loc"]))[: len(p)] == p for p in fixes) and e["type"] != "union_tag_invalid"
        ]
        return problems_from(inner, Source(data, source.values, source.keys), Spec)
    return []


def _search_space_problems(spec: Spec, source: Source) -> list[Problem]:
    """Each search path must name a field that accepts the values the space can sample."""
    if spec.search is None:
        return []
    problems = []
    # As a trial does: values go into the spec as written, so that a searched `type` takes
    # its own defaults rather than the parameters of the type it replaces.
    base = copy.deepcopy(source.data)
    base.pop("search", None)
    for path_text, param in spec.search.space.items():
        where = source.locate(("search", "space", path_text), key=True)
        try:
            path = parse_path(path_text)
        except ValueError as error:
            problems.append(Problem(where, f"search.space.{path_text}", str(error)))
            continue
        if path[0] in {"search", "expect", "tracking", "name"}:
            problems.append(Problem(where, f"search.space.{path_text}", "this part of a spec cannot be searched"))
            continue
        for condition, wanted in param.when.items():
            reason = _condition_rejected(base, condition, wanted)
            if reason:
                at = source.locate(("search", "space", path_text, "when", condition), key=True)
                problems.append(Problem(at, f"search.space.{path_text}.when.{condition}", reason))
        for value in _samples(param):
            reason = _why_rejected(base, path, value, param.when)
            if reason:
                problems.append(Problem(where, f"search.space.{path_text}", reason))
                break
    return problems


def _samples(param: Any) -> list[Any]:
    """Values that stand for what the space can sample: every choice; a range's ends and, for
    floats, a value between that is no whole number (an int field must reject it)."""
    if param.type == "categorical":
        return list(param.choices)
    if param.type == "float" and param.high > param.low:
        inner = param.low + (param.high - param.low) * 0.3183
        if param.step is not None:
            inner = param.low + param.step * max(1, round((inner - param.low) / param.step))
        return [param.low, param.high, min(inner, param.high)]
    return [param.low, param.high]


def _condition_rejected(base: dict[str, Any], condition: str, wanted: Any) -> str | None:
    try:
        path = parse_path(condition)
    except ValueError as error:
        return str(error)
    reason = _why_rejected(base, path, wanted, {})
    return reason and f"the condition {reason.replace('the field rejects the sampled value', 'cannot hold')}"


def _why_rejected(base: dict[str, Any], path: Path, value: Any, when: dict[str, Any]) -> str | None:
    data = copy.deepcopy(base)
    try:
        for condition_path, condition_value in when.items():
            set_path(data, parse_path(condition_path), condition_value)
        set_path(data, path, value)
    except (ValueError, KeyError, IndexError, TypeError) as error:
        return f"names no field of the spec ({error})"
    try:
        Spec.model_validate(data)
    except ValidationError as error:
        for e in error.errors(include_url=False):
            where = data_path(data, tuple(e["loc"]))
            if e["type"] == "extra_forbidden":
                where = (*where, e["loc"][-1])
            if where[: len(path)] == path or path[: len(where)] == where:
                if e["type"] == "extra_forbidden":
                    return "names no field of the spec"
                return f"the field rejects the sampled value {value!r}: {e['msg'].removeprefix('Value error, ')}"
    return None
