"""Checkpoints in a run's life: a NaN keeps the last good one; SIGKILL + ``--resume`` finishes
bit-identically to a run that was never interrupted."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow.tracking import MlflowClient

from runner.cli import main
from runner.tracking.process import ABANDONED
from runner.training import checkpoint
from tests.conftest import TINY_SPEC, subprocess_env

DIVERGING = """\
name: diverging
seed: 0
data: {dataset: diabetes, transforms: [standardize], split: {test: 0.2}}
model: linear
loss: mse
optimizer: {type: sgd, lr: 3.0}
train: {epochs: 40, batch_size: full}
"""

# Dropout (torch RNG), shuffling (the order generator), Adam's moments, a per-step one-cycle
# schedule and early-stopping state: everything a resumed run must restore exactly.
RESUMABLE = """\
name: resumable
seed: 5
data:
  dataset: digits
  transforms: [standardize]
  split: {test: 0.2, val: 0.2, stratify: true}
model: {type: mlp, hidden: [64], dropout: 0.2, init: {weights: kaiming_normal, bias: zeros}}
loss: cross_entropy
optimizer: {type: adam, lr: 0.003}
scheduler: {type: onecycle, max_lr: 0.01}
train: {epochs: 60, batch_size: 32, early_stopping: {monitor: val/accuracy, patience: 100}}
metrics: [accuracy, {type: f1, average: macro}]
"""


def _runs(uri: str) -> list:
    client = MlflowClient(uri)
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def test_nan_fails_the_run_and_keeps_the_last_good_checkpoint(workdir: Path, write_spec: Callable[..., Path], tracking_uri: str) -> None:
    spec = write_spec(DIVERGING)
    with pytest.raises(Exception, match="NaN or infinite at epoch 13, step 1"):
        main(["--debug", "run", str(spec), "--tracking-uri", tracking_uri])  # --debug: the exception itself
    (run,) = _runs(tracking_uri)
    assert run.info.status == "FAILED" and "epoch 13" in run.data.tags["specrun.error"]
    client = MlflowClient(tracking_uri)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert steps == list(range(1, 13))
    # The bad epoch was never checkpointed: both copies hold epoch 12, with finite weights.
    local = checkpoint.load(checkpoint.LOCAL_DIR / run.info.run_id / checkpoint.FILE)
    logged = checkpoint.load(Path(client.download_artifacts(run.info.run_id, "checkpoints/last.pt", str(workdir))))
    for state in (local, logged):
        assert state["epoch"] == 12 and len(state["history"]) == 12
        assert all(torch.isfinite(w).all() for w in state["model"].values())


def test_resume_refuses_a_finished_run_and_bad_usage(
    workdir: Path, write_spec: Callable[..., Path], tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec()
    assert main(["run", str(spec), "--tracking-uri", tracking_uri, "--set", "train.epochs=1"]) == 0
    (run,) = _runs(tracking_uri)
    assert not (checkpoint.LOCAL_DIR / run.info.run_id).exists()  # a finished run's local copy is gone
    capsys.readouterr()
    assert main(["run", "--resume", run.info.run_id, "--tracking-uri", tracking_uri]) == 2
    assert "is FINISHED already" in capsys.readouterr().err
    assert main(["run", "--resume", "0" * 32, "--tracking-uri", tracking_uri]) == 2
    assert "no run" in capsys.readouterr().err
    assert main(["run", str(spec), "--resume", run.info.run_id]) == 2
    assert main(["run", "--resume", run.info.run_id, "--set", "seed=1"]) == 2
    assert "--set" in capsys.readouterr().err
    assert main(["run"]) == 2


def _start(workdir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "run", *args],
        cwd=workdir,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_after_checkpoint(child: subprocess.Popen[str], pattern: str, at_least: int) -> tuple[str, int]:
    """SIGKILL ``child`` as soon as a checkpoint of epoch >= ``at_least`` is on disk."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        for path in checkpoint.LOCAL_DIR.glob(pattern):
            try:
                epoch = checkpoint.load(path)["epoch"]
            except (OSError, RuntimeError):
                continue
            if epoch >= at_least:
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
                return path.parent.name, epoch
        time.sleep(0.02)
    child.kill()
    raise AssertionError("no checkpoint appeared in time")


def _wait_until_ended(uri: str, run_id: str) -> Any:
    """The run, once it is no longer RUNNING (its killed runner's tracking process ends it)."""
    client = MlflowClient(uri)
    deadline = time.monotonic() + 60
    while (run := client.get_run(run_id)).info.status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)
    return run


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical_to_an_uninterrupted_run(
    workdir: Path, write_spec: Callable[..., Path], tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(RESUMABLE)
    # 1) The reference: the same spec, never interrupted (tracked elsewhere).
    reference = workdir / "reference.json"
    assert main(["run", str(spec), "--tracking-uri", f"sqlite:///{workdir / 'reference.db'}", "--metrics-out", str(reference)]) == 0

    # 2) Kill it with SIGKILL after epoch 3's checkpoint: nothing runs in the runner on
    #    SIGKILL; its tracking process sees it gone and marks the run KILLED.
    out = workdir / "resumed.json"
    run_id, epoch = _kill_after_checkpoint(_start(workdir, str(spec), "--tracking-uri", tracking_uri), "*/last.pt", 3)
    run = _wait_until_ended(tracking_uri, run_id)
    assert (
        run.info.status == "KILLED" and run.data.tags["specrun.error"] == ABANDONED.format(run_id=run_id) and epoch < 60
    )  # the real id, to resume with

    # 3) Resume from the local checkpoint, and kill the resumed process again, later on.
    resumed = _start(workdir, "--resume", run_id, "--tracking-uri", tracking_uri, "--metrics-out", str(out))
    _, second = _kill_after_checkpoint(resumed, f"{run_id}/last.pt", epoch + 3)
    assert second < 60 and not out.exists()
    assert _wait_until_ended(tracking_uri, run_id).info.status == "KILLED"

    # 4) Resume once more on a machine without the local copy: from the MLflow artifact.
    shutil.rmtree(checkpoint.LOCAL_DIR / run_id)
    assert main(["run", "--resume", run_id, "--tracking-uri", tracking_uri, "--metrics-out", str(out)]) == 0

    assert json.loads(out.read_text()) == json.loads(reference.read_text())
    (run,) = _runs(tracking_uri)
    assert run.info.status == "FINISHED" and run.info.run_id == run_id
    client = MlflowClient(tracking_uri)
    history = client.get_metric_history(run_id, "train/loss")
    assert [m.step for m in history] == list(range(1, 61))  # every epoch exactly once
    (ref_run,) = _runs(f"sqlite:///{workdir / 'reference.db'}")
    ref_history = MlflowClient(f"sqlite:///{workdir / 'reference.db'}").get_metric_history(ref_run.info.run_id, "train/loss")
    assert [m.value for m in history] == [m.value for m in ref_history]
    assert "specrun.error" not in run.data.tags and int(run.data.tags["specrun.resumed_from_epoch"]) >= 1
    resumed_from = int(run.data.tags["specrun.resumed_from_epoch"])
    assert f"runner: continuing run {run_id} from epoch {resumed_from + 1}" in capsys.readouterr().err


def test_resume_warns_when_the_run_started_with_another_thread_count(
    workdir: Path, write_spec: Callable[..., Path], tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec()
    assert main(["run", str(spec), "--tracking-uri", tracking_uri, "--set", "train.epochs=2"]) == 0
    (run,) = _runs(tracking_uri)
    assert run.data.tags["specrun.torch_threads"] == str(torch.get_num_threads())
    # As if it had been interrupted on a machine with another core count.
    client = MlflowClient(tracking_uri)
    client.set_tag(run.info.run_id, "specrun.torch_threads", "999")
    client.set_terminated(run.info.run_id, "KILLED")
    capsys.readouterr()
    assert main(["run", "--resume", run.info.run_id, "--tracking-uri", tracking_uri]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"torch's CPU thread count differs: the run used 999, this environment has {torch.get_num_threads()}" in err
    assert "may differ from an uninterrupted one" in err


FOLDS = """\
name: folds
seed: 2
data:
  dataset: digits
  transforms: [standardize]
  split: {folds: 3, val: 0.15}
model: {type: mlp, hidden: [32]}
loss: cross_entropy
optimizer: {type: adam, lr: 0.01}
train: {epochs: 200, batch_size: 64}
metrics: [accuracy]
"""


@pytest.mark.slow
def test_a_cross_validation_killed_in_its_second_fold_resumes_bit_identically(
    workdir: Path, write_spec: Callable[..., Path], migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A migrated store: this test reads the store while the child opens it, and two processes
    # creating one new store's tables at once would collide ("table ... already exists").
    tracking_uri = migrated_tracking_uri
    spec = write_spec(FOLDS)
    reference = workdir / "reference.json"
    assert (
        main(["run", str(spec), "--sequential", "--tracking-uri", f"sqlite:///{workdir / 'reference.db'}", "--metrics-out", str(reference)])
        == 0
    )

    child = _start(workdir, str(spec), "--sequential", "--tracking-uri", tracking_uri)
    client = MlflowClient(tracking_uri)
    deadline = time.monotonic() + 120
    while not (second := [r for r in _runs(tracking_uri) if r.info.run_name == "fold-1"]) and time.monotonic() < deadline:
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        time.sleep(0.05)
    _kill_after_checkpoint(child, f"{second[0].info.run_id}/last.pt", 3)
    (parent,) = [r for r in _runs(tracking_uri) if "mlflow.parentRunId" not in r.data.tags]
    assert _wait_until_ended(tracking_uri, parent.info.run_id).info.status == "KILLED"
    first = next(r for r in _runs(tracking_uri) if r.info.run_name == "fold-0")
    assert first.info.status == "FINISHED"
    # Both runs left open name the run to resume: the parent's id, not a placeholder.
    killed = _wait_until_ended(tracking_uri, second[0].info.run_id)
    assert killed.data.tags["specrun.error"] == ABANDONED.format(run_id=parent.info.run_id)
    assert _wait_until_ended(tracking_uri, parent.info.run_id).data.tags["specrun.error"] == ABANDONED.format(run_id=parent.info.run_id)

    # A member resumes with its parent, not alone (the parent would stay KILLED).
    assert main(["run", "--resume", second[0].info.run_id, "--tracking-uri", tracking_uri]) == 2
    assert f"resume that: runner run --resume {parent.info.run_id}" in capsys.readouterr().err

    # The parent resumes as a whole: fold-0 kept, fold-1 from its checkpoint, fold-2 trained.
    out = workdir / "resumed.json"
    assert main(["run", "--resume", parent.info.run_id, "--tracking-uri", tracking_uri, "--metrics-out", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(reference.read_text())
    runs = {r.info.run_name: r for r in _runs(tracking_uri)}
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs.values())
    assert runs["fold-0"].info.run_id == first.info.run_id and "specrun.resumed_from_epoch" not in runs["fold-0"].data.tags
    assert int(runs["fold-1"].data.tags["specrun.resumed_from_epoch"]) >= 3
    assert client.get_run(parent.info.run_id).data.metrics["test/accuracy_mean"] == json.loads(reference.read_text())["test/accuracy_mean"]


def test_a_seeds_parent_resumes_its_unfinished_and_missing_members(
    workdir: Path, write_spec: Callable[..., Path], tracking_uri: str
) -> None:
    spec = write_spec(FOLDS.replace("split: {folds: 3, val: 0.15}", "split: {test: 0.2, val: 0.15}").replace("epochs: 200", "epochs: 4"))
    first = workdir / "first.json"
    assert main(["run", str(spec), "--seeds", "3", "--sequential", "--tracking-uri", tracking_uri, "--metrics-out", str(first)]) == 0
    client = MlflowClient(tracking_uri)
    runs = {r.info.run_name: r for r in _runs(tracking_uri)}
    parent = next(r for r in runs.values() if "mlflow.parentRunId" not in r.data.tags)
    # As if killed while seed-3 trained: seed-4 never started, seed-3 unfinished, the parent KILLED.
    client.delete_run(runs["seed-4"].info.run_id)
    client.set_terminated(runs["seed-3"].info.run_id, "KILLED")
    client.set_terminated(parent.info.run_id, "KILLED")

    out = workdir / "resumed.json"
    assert main(["run", "--resume", parent.info.run_id, "--tracking-uri", tracking_uri, "--metrics-out", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(first.read_text())
    after = {r.info.run_name: r for r in _runs(tracking_uri)}
    assert after["seed-2"].info.run_id == runs["seed-2"].info.run_id
    assert after["seed-3"].info.run_id == runs["seed-3"].info.run_id and after["seed-3"].data.tags["specrun.resumed_from_epoch"] == "4"
    assert after["seed-4"].info.run_id != runs["seed-4"].info.run_id  # trained again, as a new child run
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_a_batch_of_folds_killed_mid_training_resumes_from_its_checkpoint_bit_identically(
    workdir: Path, write_spec: Callable[..., Path], tracking_uri: str
) -> None:
    spec = write_spec(FOLDS.replace("epochs: 200", "epochs: 150"))
    reference = workdir / "reference.json"
    assert main(["run", str(spec), "--tracking-uri", f"sqlite:///{workdir / 'reference.db'}", "--metrics-out", str(reference)]) == 0

    # Killed while the three folds train as one batch: no child run exists yet, only the
    # parent's checkpoint of the batch.
    parent_id, epoch = _kill_after_checkpoint(_start(workdir, str(spec), "--tracking-uri", tracking_uri), "*/last.pt", 3)
    assert epoch < 150 and checkpoint.load(checkpoint.LOCAL_DIR / parent_id / checkpoint.FILE)["members"] == ["fold-0", "fold-1", "fold-2"]
    assert _wait_until_ended(tracking_uri, parent_id).info.status == "KILLED"
    assert [r.info.run_id for r in _runs(tracking_uri)] == [parent_id]

    # From the MLflow copy (this machine's is gone): the batch goes on from its epoch.
    shutil.rmtree(checkpoint.LOCAL_DIR / parent_id)
    out = workdir / "resumed.json"
    assert main(["run", "--resume", parent_id, "--tracking-uri", tracking_uri, "--metrics-out", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(reference.read_text())
    runs = _runs(tracking_uri)
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    tags = MlflowClient(tracking_uri).get_run(parent_id).data.tags
    assert tags["specrun.cv.mode"] == "batched" and 1 <= int(tags["specrun.resumed_from_epoch"]) <= epoch


def test_a_checkpoint_fetched_from_mlflow_is_fetched_once(
    workdir: Path, migrated_tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.runs import resume
    from runner.tracking import past_runs

    client = MlflowClient(migrated_tracking_uri)
    run_id = client.create_run(client.create_experiment("fetched")).info.run_id
    (workdir / "last.pt").write_bytes(b"a checkpoint")
    client.log_artifact(run_id, str(workdir / "last.pt"), "checkpoints")
    first = resume._find_checkpoint(migrated_tracking_uri, run_id)
    assert first is not None and first.read_bytes() == b"a checkpoint"

    def refetch(*args: Any) -> None:
        raise AssertionError("fetched again")

    monkeypatch.setattr(past_runs, "download_artifact", refetch)
    again = resume._find_checkpoint(migrated_tracking_uri, run_id)
    assert again is not None and again.resolve() == first.resolve()


def test_a_run_without_a_checkpoint_is_not_restarted_unless_asked(
    workdir: Path, write_spec: Callable[..., Path], migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A run that logged epochs but kept no checkpoint (checkpoint_every: 0) and was killed.
    spec = write_spec(TINY_SPEC.replace("train: {epochs: 3, batch_size: 64}", "train: {epochs: 3, batch_size: 64, checkpoint_every: 0}"))
    assert main(["run", str(spec), "--tracking-uri", migrated_tracking_uri]) == 0
    (run,) = _runs(migrated_tracking_uri)
    client = MlflowClient(migrated_tracking_uri)
    client.set_terminated(run.info.run_id, "KILLED")
    capsys.readouterr()
    assert main(["run", "--resume", run.info.run_id, "--tracking-uri", migrated_tracking_uri]) == 2
    err = capsys.readouterr().err
    assert f"run {run.info.run_id} logged 3 epochs but left no checkpoint to continue from" in err and "--restart" in err
    assert main(["run", "--resume", run.info.run_id, "--tracking-uri", migrated_tracking_uri, "--restart"]) == 0
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
