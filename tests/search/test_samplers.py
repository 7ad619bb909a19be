"""Every sampler and pruner the spec offers runs a short study through `runner search`."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from runner.cli import main
from tests.search.conftest import search_spec

GRID_SPACE = """\
  space:
    optimizer.lr: {type: float, low: 0.01, high: 0.02, step: 0.01}
    model.hidden: {type: categorical, choices: [[4], [8]]}
"""


def _study(workdir: Path) -> optuna.Study:
    backend = optuna.storages.journal.JournalFileBackend(str(workdir / "studies" / "spec.journal"))
    return optuna.load_study(study_name="tinysearch", storage=optuna.storages.JournalStorage(backend))


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes", "qmc", "nsga2"])
def test_sampler_runs(sampler: str, workdir: Path, write_spec, migrated_tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(search_spec(epochs=1, sampler=sampler))
    assert main(["search", str(spec), "--n-trials", "2", "--tracking-uri", migrated_tracking_uri]) == 0
    assert [t.state for t in _study(workdir).trials] == [optuna.trial.TrialState.COMPLETE] * 2


def test_grid_runs_each_point_once_and_stops(workdir: Path, write_spec, migrated_tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    text = search_spec(epochs=1, sampler="grid")
    text = text[: text.index("  space:")] + GRID_SPACE
    spec = write_spec(text)
    assert main(["search", str(spec), "--n-trials", "10", "--tracking-uri", migrated_tracking_uri]) == 0
    points = {(round(t.params["optimizer.lr"], 6), t.params["model.hidden"]) for t in _study(workdir).trials}
    assert len(_study(workdir).trials) == 4 and len(points) == 4


@pytest.mark.parametrize("pruner", ["median", "percentile", "hyperband", "successive_halving"])
def test_pruner_builds_and_runs(pruner: str, workdir: Path, write_spec, migrated_tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(search_spec(epochs=2, pruner=f"{{type: {pruner}, startup_trials: 1}}"))
    assert main(["search", str(spec), "--n-trials", "2", "--tracking-uri", migrated_tracking_uri]) == 0
    states = {t.state for t in _study(workdir).trials}
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
