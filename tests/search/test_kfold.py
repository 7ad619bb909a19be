"""A k-fold spec's objective: the mean over folds, reported fold by fold (runner.cv)."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import optuna
import pytest

from runner.experiment import RunOptions
from runner.search.objective import Context, SearchError, _kfold_objective
from runner.spec import load_spec
from tests.conftest import TINY_SPEC

SEARCH = """\
search:
  metric: test/accuracy
  direction: maximize
  space:
    optimizer.lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
"""


def test_without_runner_cv_a_kfold_search_says_what_is_missing(write_spec, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "runner.cv", None)  # as if the module were not installed
    spec = load_spec(write_spec(TINY_SPEC + SEARCH))
    trial = optuna.create_study().ask()
    with pytest.raises(SearchError, match="k-fold search needs runner.cv"):
        _kfold_objective(trial, Context(spec, "s", RunOptions()), spec, "test/accuracy", prune=True)


@pytest.mark.slow
def test_kfold_objective_is_the_mean_over_folds(workdir: Path, write_spec, migrated_tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("runner.cv", reason="k-fold runs come with runner.cv")
    from runner.cli import main

    text = TINY_SPEC.replace("split: {test: 0.2, val: 0.2, stratify: true}", "split: {folds: 3}") + SEARCH
    text = text.replace("epochs: 3", "epochs: 2") + "  n_trials: 3\n  pruner: {type: wilcoxon}\n"
    spec = write_spec(text)
    assert main(["search", str(spec), "--tracking-uri", migrated_tracking_uri]) == 0
    backend = optuna.storages.journal.JournalFileBackend(str(workdir / "studies" / "spec.journal"))
    study = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(backend))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete
    for trial in complete:
        scores = trial.user_attrs["fold_scores"]
        assert len(scores) == 3 and trial.value == statistics.fmean(scores)
        assert sorted(trial.intermediate_values) == [0, 1, 2]  # one report per fold
