"""Sampling a search block into spec overrides: kinds, list choices, conditions, grids."""

from __future__ import annotations

import optuna
import pytest

from runner.search.space import as_sets, grid, sample
from runner.spec.load import load_source, with_overrides
from runner.spec.search_space import SearchSpec

SPACE = {
    "optimizer.type": {"type": "categorical", "choices": ["adam", "sgd"]},
    "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "optimizer.momentum": {"type": "float", "low": 0.0, "high": 0.9, "when": {"optimizer.type": "sgd"}},
    "model.hidden": {"type": "categorical", "choices": [[4], [16, 8]]},
    "train.epochs": {"type": "int", "low": 2, "high": 6, "step": 2},
}


def test_conditional_parameter_is_sampled_only_when_its_condition_holds() -> None:
    search = SearchSpec.model_validate({"space": SPACE})
    base = {"optimizer": {"type": "adam"}}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {"adam": 0, "sgd": 0}
    for _ in range(20):
        trial = study.ask()
        values = sample(trial, search, base)
        seen[values["optimizer.type"]] += 1
        assert ("optimizer.momentum" in values) == (values["optimizer.type"] == "sgd")
        assert values["model.hidden"] in ([4], [16, 8])  # lists come back as lists
        assert values["train.epochs"] in (2, 4, 6)
        study.tell(trial, 0.0)
    assert seen["adam"] and seen["sgd"]


def test_a_sampled_trial_is_a_valid_spec(write_spec) -> None:  # type: ignore[no-untyped-def]
    from runner.spec import load_spec

    spec = load_spec(write_spec())
    search = SearchSpec.model_validate({"space": SPACE})
    fixed = {"optimizer.type": "sgd", "optimizer.lr": 0.01, "optimizer.momentum": 0.5, "model.hidden": "[16, 8]", "train.epochs": 4}
    trial = optuna.trial.FixedTrial(fixed)
    values = sample(trial, search, spec.to_data())
    trial_spec = with_overrides(spec, values, load_source(write_spec()).data)
    assert trial_spec.optimizer.type == "sgd" and trial_spec.optimizer.momentum == 0.5
    assert list(trial_spec.model.hidden) == [16, 8] and trial_spec.train.epochs == 4
    assert "model.hidden=[16, 8]" in as_sets(values)


def test_grid_covers_choices_and_steps() -> None:
    search = SearchSpec.model_validate(
        {
            "sampler": "grid",
            "space": {
                "optimizer.lr": {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1},
                "model.hidden": {"type": "categorical", "choices": [[4], [8]]},
            },
        }
    )
    points = grid(search)
    assert points["optimizer.lr"] == pytest.approx([0.1, 0.2, 0.3])
    assert points["model.hidden"] == ["[4]", "[8]"]
