"""The MLflow tracker writes in batches: held metrics go with the params, the next due
flush, or the end of the run, and nothing is lost on the way; the same in this process
and through the tracking process that ``runner run`` starts."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from runner.tracking import tracker as tracking
from runner.tracking.process import TrackingProcess
from runner.tracking.tracker import MlflowTracker


@pytest.fixture(params=["in-process", "tracking-process"], autouse=True)
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test once with MLflow in the test's process and once through a tracking process."""
    process = None
    if request.param == "tracking-process":
        process = TrackingProcess()
        request.addfinalizer(process.close)
    monkeypatch.setattr(tracking, "_process", process)


def test_metrics_are_held_then_written_with_the_params_and_at_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracking, "EARLY_FLUSH_SECONDS", 3600.0)  # no batch due during the test
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(uri, "batches")
    client = MlflowClient(uri)
    assert tracker.run_id is not None
    tracker.log_metrics({"model/params": 42.0}, step=0)
    tracker.wait()
    assert client.get_run(tracker.run_id).data.metrics == {}  # held, not yet written
    tracker.log_params({f"p{i}": str(i) for i in range(250)})  # three chunks of MLflow's 100
    tracker.wait()
    run = client.get_run(tracker.run_id)
    assert run.data.metrics == {"model/params": 42.0} and len(run.data.params) == 250
    for epoch in range(1, 4):
        tracker.epoch_end(epoch, {"train/loss": 1.0 / epoch})
    tracker.log_metrics({"test/loss": 0.5}, step=3)
    tracker.end("FINISHED")
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["test/loss"] == 0.5
    assert [m.step for m in client.get_metric_history(tracker.run_id, "train/loss")] == [1, 2, 3]


def test_held_metrics_are_written_once_flush_seconds_pass(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(tracking, "FLUSH_SECONDS", 0.0)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(uri, "batches")
    assert tracker.run_id is not None
    tracker.epoch_end(1, {"train/loss": 2.0})
    tracker.wait()
    assert MlflowClient(uri).get_run(tracker.run_id).data.metrics == {"train/loss": 2.0}
    tracker.end("FINISHED")


def test_with_the_tracking_process_a_runs_first_epochs_are_written_sooner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The end of a short run then waits for a write of its last epochs, not of all of them.
    monkeypatch.setattr(tracking, "EARLY_FLUSH_SECONDS", 0.2)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(uri, "batches")
    client = MlflowClient(uri)
    time.sleep(0.25)  # past EARLY_FLUSH_SECONDS: the time itself is what is tested
    tracker.epoch_end(1, {"train/loss": 2.0})  # due with the tracking process
    tracker.epoch_end(2, {"train/loss": 1.0})  # the next batch is due 0.3 s after that one
    tracker.wait()
    written = [m.step for m in client.get_metric_history(tracker.run_id, "train/loss")]
    assert written == ([1] if tracking.store().writes_in_background else [])
    tracker.end("FINISHED")
    assert len(client.get_metric_history(tracker.run_id, "train/loss")) == 2


def test_a_run_lands_in_its_experiment_also_after_that_was_deleted_and_made_anew(tmp_path: Path) -> None:
    # The store remembers experiment ids by name; one deleted since is looked up again.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    first = MlflowTracker(uri, "exp")
    first.end("FINISHED")
    old = client.get_experiment_by_name("exp")
    client.rename_experiment(old.experiment_id, "exp-old")
    client.delete_experiment(old.experiment_id)
    second = MlflowTracker(uri, "exp")
    second.end("FINISHED")
    new = client.get_experiment_by_name("exp")
    assert new.experiment_id != old.experiment_id and new.lifecycle_stage == "active"
    assert client.get_run(second.run_id).info.experiment_id == new.experiment_id  # type: ignore[arg-type]


def test_a_run_for_an_experiment_in_the_trash_says_how_to_get_it_back(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowTracker(uri, "trashed").end("FINISHED")
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("trashed").experiment_id
    client.delete_experiment(experiment_id)
    with pytest.raises(Exception, match=rf"experiment 'trashed' \(id {experiment_id}\) is deleted: restore it"):
        _ = MlflowTracker(uri, "trashed").run_id


def test_an_unreachable_tracking_server_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for proxy in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert tracking.unreachable_server(f"http://127.0.0.1:{port}") is None
    problem = tracking.unreachable_server(f"http://127.0.0.1:{port}")  # closed now
    assert problem is not None and "cannot be reached" in problem and "Connection refused" in problem
    assert tracking.unreachable_server("sqlite:///mlflow.db") is None and tracking.unreachable_server("databricks") is None
    # Through a proxy the server is the proxy's business: not checked.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")
    assert tracking.unreachable_server(f"http://127.0.0.1:{port}") is None


def test_runs_on_the_same_data_log_their_dataset_at_once(migrated_tracking_uri: str) -> None:
    """MLflow looks a dataset (name, digest) up, then inserts it: eight runs doing so at the
    same moment raced into a unique constraint (a search's workers, runs started together)."""
    import threading

    from runner.tracking.store import MlflowStore

    row = {
        "name": "d",
        "digest": "0" * 16,
        "source_type": "code",
        "source": '{"tags": {}}',
        "profile": '{"num_rows": 1}',
        "features": {"dtype": "float32", "shape": [-1, 2]},
        "targets": {"dtype": "int64", "shape": [-1]},
        "tags": {},
    }
    runs: list[str] = []
    for experiment in ("a", "b", "c"):
        stores = [MlflowStore() for _ in range(8)]
        ids = [store.create_run(migrated_tracking_uri, experiment, None, {}) for store in stores]
        barrier = threading.Barrier(len(stores))

        def log(store: MlflowStore, run_id: str, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            store.log_dataset(run_id, row)  # one that gives up only warns: the inputs below tell

        threads = [threading.Thread(target=log, args=pair) for pair in zip(stores, ids)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        runs += ids
    client = MlflowClient(migrated_tracking_uri)
    assert all(client.get_run(run_id).inputs.dataset_inputs[0].dataset.digest == "0" * 16 for run_id in runs)
