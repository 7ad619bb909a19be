"""A trial's sampled values: ``{dotted path: value}``, the overrides a trial applies to the spec.

Each parameter maps one-to-one onto ``trial.suggest_*``. Optuna's categorical choices must
be scalars, so a parameter whose choices include lists or mappings (``model.hidden``) is
suggested as the JSON text of each choice and decoded back. A conditional parameter is
sampled only when every ``when`` path has its value: a path sampled earlier in this trial,
else the base spec's value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runner.spec.overrides import get_path, parse_path
from runner.spec.search_space import CategoricalParam, FloatParam, IntParam, SearchSpec

if TYPE_CHECKING:
    import optuna

_SCALARS = (type(None), bool, int, float, str)


def encoded_choices(param: CategoricalParam) -> list[Any]:
    """The choices as Optuna stores them: as given when all are scalars, else JSON text."""
    if all(isinstance(c, _SCALARS) for c in param.choices):
        return list(param.choices)
    return [json.dumps(c) for c in param.choices]


def decode(param: CategoricalParam, value: Any) -> Any:
    """The spec value behind an encoded categorical choice."""
    return param.choices[encoded_choices(param).index(value)]


def condition_met(when: dict[str, Any], sampled: dict[str, Any], base: dict[str, Any]) -> bool:
    """True when every ``when`` path has its value (sampled in this trial, else in the spec)."""
    for path, wanted in when.items():
        if path in sampled:
            current = sampled[path]
        else:
            try:
                current = get_path(base, parse_path(path))
            except (KeyError, IndexError, TypeError):
                return False
        if current != wanted:
            return False
    return True


def sample(trial: optuna.trial.BaseTrial, search: SearchSpec, base: dict[str, Any]) -> dict[str, Any]:
    """Suggest every active parameter of the space, in the order written; ``base`` is the
    spec's data (for conditions on values that are not searched)."""
    sampled: dict[str, Any] = {}
    for path, param in search.space.items():
        if not condition_met(param.when, sampled, base):
            continue
        if isinstance(param, FloatParam):
            sampled[path] = trial.suggest_float(path, param.low, param.high, log=param.log, step=param.step)
        elif isinstance(param, IntParam):
            sampled[path] = trial.suggest_int(path, param.low, param.high, log=param.log, step=param.step)
        else:
            sampled[path] = decode(param, trial.suggest_categorical(path, encoded_choices(param)))
    return sampled


def grid(search: SearchSpec) -> dict[str, Sequence[Any]]:
    """The grid sampler's search space: every choice, or every step of a stepped range."""
    points: dict[str, Sequence[Any]] = {}
    for path, param in search.space.items():
        if isinstance(param, CategoricalParam):
            points[path] = encoded_choices(param)
        elif isinstance(param, IntParam):
            points[path] = list(range(param.low, param.high + 1, param.step))
        else:
            assert param.step is not None  # the spec's check: a grid needs stepped floats
            count = int(round((param.high - param.low) / param.step))
            points[path] = [param.low + i * param.step for i in range(count + 1)]
    return points


def as_sets(values: dict[str, Any]) -> list[str]:
    """The same overrides as ``--set`` arguments (``optimizer.lr=0.01``), for logs and users."""
    return [f"{path}={json.dumps(value)}" for path, value in values.items()]
