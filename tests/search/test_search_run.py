"""End to end on one machine: a study with a pruner, its MLflow runs, and best.yaml re-run."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from runner.cli import main
from tests.search.conftest import popen_runner, search_spec

pytestmark = pytest.mark.slow


def _runs(uri: str, experiment: str) -> list:  # type: ignore[type-arg]
    client = MlflowClient(tracking_uri=uri)
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)


def test_pruned_study_tracked_and_best_yaml_reproduces(workdir: Path, write_spec, migrated_tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(search_spec(epochs=4, pruner="{type: median, startup_trials: 1}").replace("n_trials: 4", "n_trials: 7"))
    uri = migrated_tracking_uri
    assert main(["search", str(spec), "--tracking-uri", uri]) == 0

    study = optuna.load_study(
        study_name="tinysearch",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(workdir / "studies" / "spec.journal"))),
    )
    states = [t.state for t in study.trials]
    assert len(states) == 7 and set(states) <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert optuna.trial.TrialState.PRUNED in states, "the median pruner pruned no trial"

    # MLflow: one parent (the study), one child per trial with its sampled params and final state.
    runs = _runs(uri, "tinysearch")
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = {int(r.data.tags["specrun.trial"]): r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert parent.info.status == "FINISHED" and len(children) == 7
    for trial in study.trials:
        run = children[trial.number]
        assert run.data.params["optimizer.lr"] == str(trial.params["optimizer.lr"])
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert run.info.status == "KILLED" and run.data.tags["specrun.stopped"].startswith("pruned")
        else:
            assert run.info.status == "FINISHED" and run.data.metrics["val/loss"] == trial.value

    # The best trial is tagged, the parent points at it, and best.yaml is beside the spec.
    best = study.best_trial
    best_run = children[best.number]
    assert best_run.data.tags["specrun.best_trial"] == "true"
    assert parent.data.tags["specrun.best_run_id"] == best_run.info.run_id
    assert parent.data.metrics["best/value"] == best.value
    best_file = spec.with_name("spec.best.yaml")
    written = yaml.safe_load(best_file.read_text())
    assert "search" not in written and written["optimizer"]["lr"] == best.params["optimizer.lr"]

    # `runner run best.yaml` reproduces the best trial's metrics, bit for bit.
    out = workdir / "best.json"
    assert main(["run", str(best_file), "--tracking-uri", uri, "--metrics-out", str(out)]) == 0
    rerun = json.loads(out.read_text())
    assert rerun["val/loss"] == best.value
    for name, value in best.user_attrs["metrics"].items():
        if name != "model/params":
            assert rerun[name] == value, name


def test_multi_objective_nsga2_minimizes_parameters(workdir: Path, write_spec, migrated_tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    text = search_spec(epochs=2, sampler="nsga2").replace("  pruner: {type: none}\n", "")
    text = text.replace("metric: val/loss", "metric: [val/accuracy, model/params]").replace(
        "direction: minimize", "direction: [maximize, minimize]"
    )
    spec = write_spec(text)
    assert main(["search", str(spec), "--tracking-uri", migrated_tracking_uri, "--n-trials", "3"]) == 0
    study = optuna.load_study(
        study_name="tinysearch",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(workdir / "studies" / "spec.journal"))),
    )
    assert len(study.trials) == 3 and all(len(t.values) == 2 for t in study.trials)
    # model/params is the parameter count of the sampled model: [4] has 30*4+4+4+1 weights.
    sizes = {str(t.params["model.hidden"]): t.values[1] for t in study.trials}
    assert sizes.get("[4]", 129.0) == 129.0
    assert spec.with_name("spec.best.yaml").exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_the_study_with_every_run_ended(workdir: Path, write_spec, migrated_tracking_uri: str, workers: str) -> None:  # type: ignore[no-untyped-def]
    # SIGTERM (a scheduler's stop, `kill`) reaches the command alone, between trials or in one:
    # the parent and the trial runs end KILLED and --workers' processes stop too.
    spec = write_spec(search_spec(epochs=2).replace("n_trials: 4", "n_trials: 10000"))
    child = popen_runner("search", str(spec), "--workers", workers, "--tracking-uri", migrated_tracking_uri, cwd=workdir)
    try:
        deadline = time.monotonic() + 120
        while len(_runs_or_none(migrated_tracking_uri)) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130
    runs = _runs(migrated_tracking_uri, "tinysearch")
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "KILLED"


def _runs_or_none(uri: str) -> list:  # type: ignore[type-arg]
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tinysearch")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])
