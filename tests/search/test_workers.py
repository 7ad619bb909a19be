"""Parallel workers: four processes on one journal file, and worker processes on many
machines sharing one PostgreSQL study, one of them killed mid-trial."""

from __future__ import annotations

import signal
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from runner.cli import main
from runner.search import TRIAL_ABANDONED
from runner.search.journal import HEARTBEAT_ATTR
from tests.conftest import descendants, wait_gone, wait_until
from tests.search.conftest import popen_runner, runner, search_spec

pytestmark = pytest.mark.slow


#: Trials that train until they are killed, however fast the machine (150 epochs took 1.3 s).
UNTIL_KILLED = search_spec(epochs=100_000)


def _finished_runs(uri: str) -> dict[int, object]:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tinysearch")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return {int(r.data.tags["specrun.trial"]): r for r in runs if "specrun.trial" in r.data.tags and r.info.status == "FINISHED"}


def test_four_workers_share_the_journal_file(workdir: Path, write_spec, migrated_tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(search_spec(epochs=1))
    done = runner("search", str(spec), "--workers", "4", "--n-trials", "6", "--tracking-uri", migrated_tracking_uri, cwd=workdir)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(workdir / "studies" / "spec.journal")))
    study = optuna.load_study(study_name="tinysearch", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6, done.stderr
    runs = _finished_runs(migrated_tracking_uri)
    assert sorted(runs) == list(range(6))
    assert spec.with_name("spec.best.yaml").exists()


def test_sqlite_storage_refuses_parallel_workers(workdir: Path, write_spec, capsys) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(search_spec())
    assert main(["search", str(spec), "--workers", "2", "--storage", "sqlite:///study.db"]) == 2
    assert "SQLite locks up under parallel writers" in capsys.readouterr().err
    assert not (workdir / "study.db").exists()


@pytest.mark.parametrize(
    "database", [pytest.param("postgresql", marks=pytest.mark.postgres), pytest.param("mysql", marks=pytest.mark.mysql)]
)
def test_two_workers_share_one_database_study(workdir: Path, write_spec, database: str, request: pytest.FixtureRequest) -> None:  # type: ignore[no-untyped-def]
    """Two machines, as far as the study can tell: they meet only in the database (MLflow's
    store on PostgreSQL too, new to both; on MySQL, a file of this machine)."""
    if database == "postgresql":
        storage, mlflow_db = request.getfixturevalue("pg_urls")
    else:
        storage, mlflow_db = request.getfixturevalue("mysql_url"), request.getfixturevalue("migrated_tracking_uri")
    spec = write_spec(search_spec(epochs=1))
    args = ["search", str(spec), "--storage", storage, "--study", "shared", "--n-trials", "5", "--tracking-uri", mlflow_db]
    workers = [popen_runner(*args, cwd=workdir) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name="shared", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 5
    assert sorted(_finished_runs(mlflow_db)) == list(range(5))
    ran = [sum(line.startswith("trial ") for line in out.splitlines()) for out in outputs]
    assert all(ran), f"both workers should have run trials: {outputs}"


@pytest.mark.postgres
def test_a_killed_worker_trial_is_failed_and_retried(workdir: Path, write_spec, pg_urls: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(UNTIL_KILLED)
    fast = write_spec(search_spec(epochs=2), name="fast.yaml")
    storage, mlflow_db = pg_urls
    args = ["--storage", storage, "--study", "killed", "--n-trials", "3", "--tracking-uri", mlflow_db]
    victim = popen_runner("search", str(spec), *args, cwd=workdir)
    client = MlflowClient(tracking_uri=mlflow_db)

    def trial_run_training() -> list:  # trial 0's run, once it has logged an epoch
        experiment = client.get_experiment_by_name("tinysearch")
        query = "tags.`specrun.trial` = '0' and attributes.status = 'RUNNING'"
        runs = [] if experiment is None else client.search_runs([experiment.experiment_id], query)
        return [r for r in runs if "train/loss" in r.data.metrics]

    [trial_run] = wait_until(lambda: trial_run_training() or victim.poll() is not None, "trial 0 to train", timeout=180)
    assert victim.poll() is None, "the trial ended before it could be killed"
    helpers = descendants(victim.pid)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    # Its tracking process ends its trial's run, not the study's parent run (the study goes on),
    # and exits: once it is gone, nothing more changes the runs.
    wait_gone(helpers, "the killed worker's tracking process")
    experiment_id = client.get_experiment_by_name("tinysearch").experiment_id
    assert client.get_run(trial_run.info.run_id).info.status == "KILLED"
    [parent] = [r for r in client.search_runs([experiment_id], "tags.`specrun.study` = 'killed'") if "specrun.trial" not in r.data.tags]
    assert parent.info.status == "RUNNING" and "specrun.error" not in parent.data.tags
    # The survivor runs the same study (the fast spec only shortens its own trials).
    done = runner("search", str(fast), *args, cwd=workdir)

    trials = optuna.load_study(study_name="killed", storage=storage).get_trials()
    dead = [t for t in trials if t.state == TrialState.FAIL]
    assert len(dead) == 1, done.stderr
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == dead[0].number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE and retry[0].params == dead[0].params
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    runs = _finished_runs(mlflow_db)
    assert sorted(runs) == sorted(t.number for t in complete)
    for trial in complete:
        assert runs[trial.number].info.run_id == trial.user_attrs["mlflow_run_id"]
    # The dead worker's MLflow run is not left RUNNING: its tracking process ended it.
    experiment = client.get_experiment_by_name("tinysearch")
    [dead_run] = client.search_runs([experiment.experiment_id], f"tags.`specrun.trial` = '{dead[0].number}'")
    assert dead_run.info.status == "KILLED" and dead_run.data.tags["specrun.error"] == TRIAL_ABANDONED


def test_a_killed_worker_trial_on_a_journal_file_is_failed_and_retried(workdir: Path, write_spec, migrated_tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    # Optuna's journal storage has no heartbeats of its own; specrun's beats one.
    spec = write_spec(UNTIL_KILLED)
    fast = write_spec(search_spec(epochs=2), name="fast.yaml")
    journal = workdir / "shared.journal"
    args = ["--storage", f"journal:{journal}", "--study", "killed", "--n-trials", "3", "--tracking-uri", migrated_tracking_uri]
    victim = popen_runner("search", str(spec), *args, cwd=workdir)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))

    def beating() -> bool:  # trial 0 runs and has recorded a heartbeat
        running = [t for t in _trials(storage) if t.state == TrialState.RUNNING] if journal.exists() else []
        return any(HEARTBEAT_ATTR in t.system_attrs for t in running)

    wait_until(lambda: beating() or victim.poll() is not None, "trial 0's first heartbeat", timeout=180)
    assert victim.poll() is None, "the trial ended before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    done = runner("search", str(fast), *args, cwd=workdir)

    trials = _trials(storage)
    dead = [t for t in trials if t.state == TrialState.FAIL]
    assert len(dead) == 1, done.stderr
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == dead[0].number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE and retry[0].params == dead[0].params
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 3


def _trials(storage: optuna.storages.BaseStorage) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="killed", storage=storage).get_trials()
    except KeyError:  # the study is not in the journal yet
        return []
