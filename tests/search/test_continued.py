"""A study run again: it draws new values, keeps (or, in a new tracking store, replaces)
its parent run, and a search in which no trial completes says so on the parent run."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from runner.cli import main
from tests.search.conftest import popen_runner, search_spec

#: Every trial's loss overflows in its first step.
DIVERGING = """\
name: diverging
seed: 0
data: {dataset: diabetes, transforms: [standardize], split: {test: 0.2, val: 0.2}}
model: linear
loss: mse
optimizer: {type: sgd, lr: 1.0}
train: {epochs: 2, batch_size: full, checkpoint_every: 0}
search:
  metric: val/loss
  direction: minimize
  n_trials: 2
  sampler: random
  space:
    optimizer.lr: {type: float, low: 1.0e+30, high: 1.0e+31, log: true}
"""


def _trials(workdir: Path, spec: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    backend = optuna.storages.journal.JournalFileBackend(str(workdir / "studies" / f"{spec.stem}.journal"))
    return optuna.load_study(study_name=study, storage=optuna.storages.JournalStorage(backend)).trials


def _parents(uri: str, experiment: str) -> list:  # type: ignore[type-arg]
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def test_a_continued_study_draws_new_values_under_the_same_parent(workdir: Path, write_spec, migrated_tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(search_spec(epochs=1, sampler="random"))
    for total in ("2", "4"):
        assert main(["search", str(spec), "--tracking-uri", migrated_tracking_uri, "--n-trials", total]) == 0
    rates = [t.params["optimizer.lr"] for t in _trials(workdir, spec, "tinysearch")]
    assert len(rates) == 4 and len(set(rates)) == 4, rates  # the second search did not replay the first's draws
    (parent,) = _parents(migrated_tracking_uri, "tinysearch")
    assert parent.info.status == "FINISHED"


@pytest.mark.slow
def test_two_searches_of_one_study_at_once_draw_different_values(workdir: Path, write_spec, migrated_tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    # The same command in two terminals: both seeded by the spec alone drew the same values.
    spec = write_spec(search_spec(epochs=1, sampler="random").replace("n_trials: 4", "n_trials: 6"))
    searches = [popen_runner("search", str(spec), "--tracking-uri", migrated_tracking_uri, cwd=workdir) for _ in range(2)]
    for search in searches:
        search.communicate(timeout=300)
    assert [s.returncode for s in searches] == [0, 0]
    rates = [t.params["optimizer.lr"] for t in _trials(workdir, spec, "tinysearch")]
    assert len(rates) >= 6 and len(set(rates)) == len(rates), rates


def test_a_study_outliving_its_tracking_store_gets_a_new_parent_run(
    workdir: Path, write_spec, migrated_tracking_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(search_spec(epochs=1, sampler="random"))
    assert main(["search", str(spec), "--tracking-uri", migrated_tracking_uri, "--n-trials", "1"]) == 0
    (old,) = _parents(migrated_tracking_uri, "tinysearch")
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    capsys.readouterr()
    assert main(["search", str(spec), "--tracking-uri", elsewhere, "--n-trials", "2"]) == 0
    assert f"parent run {old.info.run_id} is not in {elsewhere}" in capsys.readouterr().err
    (new,) = _parents(elsewhere, "tinysearch")
    # The best trial may be the first, whose run is in the old store: the new parent still records it.
    assert new.info.status == "FINISHED" and "best/value" in new.data.metrics
    assert new.info.run_id != old.info.run_id


def test_a_search_without_a_complete_trial_fails_its_parent_run(workdir: Path, write_spec, migrated_tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(DIVERGING)
    assert main(["search", str(spec), "--tracking-uri", migrated_tracking_uri]) == 1
    assert {t.state for t in _trials(workdir, spec, "diverging")} == {optuna.trial.TrialState.FAIL}
    (parent,) = _parents(migrated_tracking_uri, "diverging")
    assert parent.info.status == "FAILED"
    assert parent.data.tags["specrun.error"] == "no trial completed (0 complete, 0 pruned, 2 fail)"
    # Run again, the study's parent is RUNNING while it runs, its former error gone.
    assert main(["search", str(spec), "--tracking-uri", migrated_tracking_uri, "--n-trials", "3"]) == 1
    (again,) = _parents(migrated_tracking_uri, "diverging")
    assert again.info.run_id == parent.info.run_id and again.data.tags["specrun.error"].endswith("3 fail)")
