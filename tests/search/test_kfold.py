"""A k-fold spec's objective: the mean over folds, reported fold by fold (runner.runs.cv)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import optuna
import pytest

from tests.conftest import TINY_SPEC

SEARCH = """\
search:
  metric: test/accuracy
  direction: maximize
  space:
    optimizer.lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
"""


@pytest.mark.slow
def test_kfold_objective_is_the_mean_over_folds(workdir: Path, write_spec, migrated_tracking_uri: str, capsys) -> None:  # type: ignore[no-untyped-def]
    from runner.cli import main

    text = TINY_SPEC.replace("split: {test: 0.2, val: 0.2, stratify: true}", "split: {folds: 3}") + SEARCH
    text = text.replace("epochs: 3", "epochs: 2") + "  n_trials: 3\n  pruner: {type: wilcoxon}\n"
    # `expect:` may check the study's outcome (what --metrics-out writes), e.g. the chosen value.
    text += "expect:\n  source: a test\n  metrics:\n    best/optimizer.lr: {min: 1.0e-3, max: 1.0e-1}\n"
    spec = write_spec(text)
    out = workdir / "results" / "spec.json"
    assert main(["search", str(spec), "--tracking-uri", migrated_tracking_uri, "--metrics-out", str(out)]) == 0
    top = capsys.readouterr().err.split("top ")[1]  # the table counts a trial's folds (not epochs) from 1
    assert "folds" in top and "epochs" not in top and " 3 " in top
    backend = optuna.storages.journal.JournalFileBackend(str(workdir / "studies" / "spec.journal"))
    study = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(backend))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete
    outcome = json.loads(out.read_text())
    assert outcome["best/value"] == study.best_value
    assert outcome["best/optimizer.lr"] == study.best_params["optimizer.lr"]
    assert outcome["trials/complete"] + outcome["trials/pruned"] + outcome["trials/fail"] == 3
    assert main(["check", str(spec), "--results", str(out.parent)]) == 0
    # The best spec retrains one run: the search's `expect:` (its outcome) is not carried over.
    best = spec.with_name("spec.best.yaml")
    assert "expect" not in best.read_text() and main(["validate", str(best)]) == 0
    for trial in complete:
        scores = trial.user_attrs["fold_scores"]
        assert len(scores) == 3 and trial.value == statistics.fmean(scores)
        assert sorted(trial.intermediate_values) == [0, 1, 2]  # one report per fold


@pytest.mark.slow
def test_a_pruner_stops_a_kfold_trial_between_folds(workdir: Path, write_spec, migrated_tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    from runner.cli import main

    # A learning rate of 1e-6 cannot learn in 2 epochs: once a good trial has set the median,
    # such a trial is pruned after its first fold, and the folds after it are never trained.
    space = "    optimizer.lr: {type: categorical, choices: [1.0e-6, 0.05]}\n"
    text = TINY_SPEC.replace("split: {test: 0.2, val: 0.2, stratify: true}", "split: {folds: 3}")
    text = text.replace("epochs: 3", "epochs: 2") + SEARCH.replace(SEARCH.splitlines()[-1] + "\n", space)
    text += "  n_trials: 6\n  sampler: grid\n  pruner: {type: median, startup_trials: 1, warmup_epochs: 0}\n"
    spec = write_spec(text)
    assert main(["search", str(spec), "--tracking-uri", migrated_tracking_uri]) == 0
    backend = optuna.storages.journal.JournalFileBackend(str(workdir / "studies" / "spec.journal"))
    study = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(backend))
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(t.params["optimizer.lr"] == 1.0e-6 for t in pruned)
    client = MlflowClient(migrated_tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    for trial in pruned:
        assert len(trial.intermediate_values) < 3  # stopped before the last fold
        runs = client.search_runs([experiment.experiment_id], f"tags.`specrun.trial` = '{trial.number}'")
        parents = [r for r in runs if "specrun.fold" not in r.data.tags]
        folds = [r for r in runs if "specrun.fold" in r.data.tags]
        assert len(parents) == 1 and parents[0].info.status == "KILLED" and "specrun.stopped" in parents[0].data.tags
        assert len(folds) == len(trial.intermediate_values) < 3  # the pruned folds never ran
        # Pruning between folds needs the folds trained one by one, not all at once up front.
        assert parents[0].data.tags["specrun.cv.mode_reason"] == "fold-parallel training is off"
