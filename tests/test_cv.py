"""Cross-validation and multi-seed runs: parent/child MLflow runs, summaries, no leakage,
and fold-parallel training that matches sequential training."""

from __future__ import annotations

import csv
import json
import math
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from scipy import stats

from runner.cli import main
from runner.data.prepare import folds_of, load, prepare_rows
from runner.runs.cv import run_cv, summarize
from runner.runs.experiment import RunOptions
from runner.spec import load_spec
from tests.conftest import subprocess_env, wait_until

CV_SPEC = """\
name: cv-tiny
seed: 2
data:
  dataset: wine
  transforms: [standardize]
  split: {{folds: {folds}, val: 0.15, stratify: true}}
model: {{type: mlp, hidden: [6]{model}}}
loss: cross_entropy
regularizer: {{l2: 1.0e-4}}
optimizer: {{type: adam, lr: 0.02}}
scheduler: {{type: onecycle, max_lr: 0.03}}
train: {{epochs: 4, batch_size: 32, grad_clip: {{norm: 1.0}}, early_stopping: {{monitor: val/loss, patience: 2}}}}
metrics: [accuracy]
"""


def cv_spec(write_spec: Callable[..., Path], folds: str = "{type: stratified_kfold, k: 3}", model: str = "") -> Path:
    return write_spec(CV_SPEC.format(folds=folds, model=model))


def runs_of(uri: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def test_summary_is_mean_std_and_student_t_interval() -> None:
    values = [0.91, 0.94, 0.89, 0.95, 0.93]
    s = summarize(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert s.mean == pytest.approx(np.mean(values)) and s.std == pytest.approx(np.std(values, ddof=1))
    assert (s.low, s.high) == (pytest.approx(low), pytest.approx(high)) and s.n == 5
    assert math.isnan(summarize([0.5]).std)


def test_preprocessing_is_fitted_inside_each_fold(write_spec: Callable[..., Path]) -> None:
    spec = load_spec(cv_spec(write_spec))
    loaded = load(spec)
    x = loaded.table.x.astype(np.float64)
    for fold in folds_of(spec, loaded):
        data = prepare_rows(spec, loaded, fold.train, fold.val, fold.test)
        mean, std = x[fold.train].mean(0), x[fold.train].std(0)
        # Statistics come from the fold's training rows only: held-out rows do not move them.
        np.testing.assert_allclose(data.test.x, (x[fold.test] - mean) / std, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(data.train.x.mean(0), 0, atol=1e-5)
        assert not np.allclose(data.test.x.mean(0), 0, atol=1e-3)
        assert not set(fold.test) & set(fold.train) and not set(fold.test) & set(fold.val)


@pytest.mark.slow
def test_kfold_run_is_a_parent_with_one_child_per_fold(
    workdir: Path, write_spec: Callable[..., Path], migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = workdir / "cv.json"
    code = main(["run", str(cv_spec(write_spec)), "--tracking-uri", migrated_tracking_uri, "--metrics-out", str(out)])
    assert code == 0
    # The batch shows its progress: each epoch's means over the folds still training.
    assert "[cv-tiny (3 at once)] epoch 1/4  train/loss " in capsys.readouterr().err
    runs = runs_of(migrated_tracking_uri)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and len(runs) == 4
    parent = parents[0]
    children = sorted((r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id), key=lambda r: r.info.run_name)
    assert [c.info.run_name for c in children] == ["fold-0", "fold-1", "fold-2"]
    assert all(c.info.status == "FINISHED" for c in runs)
    accuracies = [c.data.metrics["test/accuracy"] for c in children]
    s = summarize(accuracies)
    metrics = parent.data.metrics
    assert metrics["test/accuracy_mean"] == pytest.approx(s.mean)
    assert metrics["test/accuracy_std"] == pytest.approx(s.std)
    assert (metrics["test/accuracy_ci95_low"], metrics["test/accuracy_ci95_high"]) == (pytest.approx(s.low), pytest.approx(s.high))
    assert parent.data.tags["specrun.cv.scheme"] == "stratified_kfold" and parent.data.tags["specrun.cv.mode"] == "batched"
    # The parent and each fold name the same data; the parent's input counts the folds, a fold's its rows.
    digests = {r.inputs.dataset_inputs[0].dataset.digest for r in runs}
    assert digests == {parent.data.tags["specrun.data_sha256"][:16]}
    assert {t.key: t.value for t in parent.inputs.dataset_inputs[0].tags} == {"specrun.folds": "3"}
    assert "specrun.train_rows" in {t.key for t in children[0].inputs.dataset_inputs[0].tags}
    assert "batched layers" in parent.data.tags["specrun.cv.mode_reason"]
    assert json.loads(out.read_text())["test/accuracy_mean"] == pytest.approx(s.mean)

    client = MlflowClient(tracking_uri=migrated_tracking_uri)
    table = Path(client.download_artifacts(parent.info.run_id, "folds.csv", str(workdir)))
    rows = list(csv.DictReader(table.open()))
    assert [float(r["test/accuracy"]) for r in rows] == pytest.approx(accuracies)
    assert {r["run_id"] for r in rows} == {c.info.run_id for c in children}
    # Each child is a full run: per-epoch history and its weights (not a model for use: a
    # fold is an estimate, and an MLflow model would cost each one seconds).
    assert len(client.get_metric_history(children[0].info.run_id, "val/loss")) >= 2
    assert [a.path for a in client.list_artifacts(children[0].info.run_id, "model")] == ["model/weights.pt"]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for the test, and the count it had afterwards: results on CPU depend
    on the thread count, and later tests compare in-process runs with child processes'."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("model", "how"), [("", "batched layers"), (", activation: prelu", "torch.func.vmap")])
@pytest.mark.usefixtures("one_thread")
def test_fold_parallel_matches_sequential(write_spec: Callable[..., Path], model: str, how: str) -> None:
    spec = load_spec(cv_spec(write_spec, folds="{type: kfold, k: 4}", model=model))
    batched = run_cv(spec, RunOptions(track=False, quiet=True))
    assert how in batched.mode_reason
    again = run_cv(spec, RunOptions(track=False, quiet=True))
    sequential = run_cv(spec, RunOptions(track=False, quiet=True), parallel=False)
    assert (batched.mode, sequential.mode) == ("batched", "sequential")
    for b, a, s in zip(batched.members, again.members, sequential.members):
        assert b.metrics == a.metrics  # batched training is itself bit-reproducible on CPU
        assert b.metrics.keys() == s.metrics.keys()
        for key in s.metrics:
            assert b.metrics[key] == pytest.approx(s.metrics[key], rel=1e-4, abs=1e-5), key


def test_unbatchable_model_falls_back_to_sequential_and_says_why(
    workdir: Path, write_spec: Callable[..., Path], migrated_tracking_uri: str
) -> None:
    spec = load_spec(cv_spec(write_spec, folds="2", model=", dropout: 0.2"))
    outcome = run_cv(spec, RunOptions(tracking_uri=migrated_tracking_uri, quiet=True))
    assert outcome.mode == "sequential" and "dropout" in outcome.mode_reason
    parent = MlflowClient(tracking_uri=migrated_tracking_uri).get_run(outcome.run_id)
    assert parent.data.tags["specrun.cv.mode"] == "sequential" and "dropout" in parent.data.tags["specrun.cv.mode_reason"]


def test_on_fold_end_can_stop_the_run(write_spec: Callable[..., Path], migrated_tracking_uri: str) -> None:
    seen = []

    def prune(index: int, metrics: dict[str, float]) -> None:
        seen.append((index, metrics["test/accuracy"]))
        raise RuntimeError("pruned")

    spec = load_spec(cv_spec(write_spec))
    with pytest.raises(RuntimeError, match="pruned"):
        run_cv(spec, RunOptions(tracking_uri=migrated_tracking_uri, quiet=True), on_fold_end=prune, parallel=False)
    runs = runs_of(migrated_tracking_uri)
    assert len(seen) == 1 and len(runs) == 2
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FAILED" and "pruned" in parent.data.tags["specrun.error"]


def test_a_stopped_run_is_killed_not_failed(write_spec: Callable[..., Path], migrated_tracking_uri: str) -> None:
    from runner.runs.experiment import RunStopped

    def prune(index: int, metrics: dict[str, float]) -> None:
        raise RunStopped(f"pruned after fold {index}")

    with pytest.raises(RunStopped):
        run_cv(load_spec(cv_spec(write_spec)), RunOptions(tracking_uri=migrated_tracking_uri, quiet=True), on_fold_end=prune)
    parent = next(r for r in runs_of(migrated_tracking_uri) if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "KILLED" and parent.data.tags["specrun.stopped"] == "pruned after fold 0"


def test_a_diverging_batch_names_the_fold_and_fails_the_parent(write_spec: Callable[..., Path], migrated_tracking_uri: str) -> None:
    from runner.training.loop import NonFiniteLoss

    text = (
        "name: diverging\nseed: 0\ndata: {dataset: diabetes, transforms: [standardize], split: {folds: 3}}\n"
        "model: {type: mlp, hidden: [4]}\nloss: mse\noptimizer: {type: sgd, lr: 1.0e+30}\ntrain: {epochs: 3, batch_size: full}\n"
    )
    with pytest.raises(NonFiniteLoss, match=r"the training loss of fold-0 became NaN or infinite at epoch 2, step 1"):
        run_cv(load_spec(write_spec(text)), RunOptions(tracking_uri=migrated_tracking_uri, quiet=True))
    (parent,) = runs_of(migrated_tracking_uri)
    assert parent.info.status == "FAILED" and "fold-0" in parent.data.tags["specrun.error"]


@pytest.mark.slow
def test_sigterm_during_batched_training_ends_the_parent_killed(
    workdir: Path, write_spec: Callable[..., Path], migrated_tracking_uri: str
) -> None:
    # SIGTERM's default would end the process and leave the parent to the tracking process,
    # which marks it as a runner that died (SIGKILL?); the runner must end it itself.
    spec = cv_spec(write_spec).read_text().replace("epochs: 4", "epochs: 100000").replace("patience: 2", "patience: 100000")
    child = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", str(write_spec(spec)), "--tracking-uri", migrated_tracking_uri],
        cwd=workdir,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The folds are training, all at once, once the batch has written its first checkpoint.
        wait_until(lambda: runs_of(migrated_tracking_uri) or child.poll() is not None, "the parent run")
        wait_until(
            lambda: any((workdir / ".specrun" / "checkpoints").glob("*/last.pt")) or child.poll() is not None,
            "the batch's first checkpoint",
        )
        assert child.poll() is None, child.communicate()
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    (parent,) = runs_of(migrated_tracking_uri)
    assert parent.info.status == "KILLED" and "specrun.error" not in parent.data.tags
    assert f"parent run {parent.info.run_id} is marked KILLED" in err and f"--resume {parent.info.run_id}`" in err
    assert parent.data.tags.get("specrun.cv.mode") is None  # still in the batch: no mode, no child runs yet


@pytest.mark.slow
def test_seeds_give_a_parent_with_mean_and_spread(workdir: Path, write_spec: Callable[..., Path], migrated_tracking_uri: str) -> None:
    spec = write_spec(CV_SPEC.format(folds="2", model="").replace("folds: 2, ", "test: 0.3, "))
    out = workdir / "seeds.json"
    assert main(["run", str(spec), "--seeds", "3", "--tracking-uri", migrated_tracking_uri, "--metrics-out", str(out)]) == 0
    runs = runs_of(migrated_tracking_uri)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(c.data.params["seed"] for c in children) == ["2", "3", "4"]
    assert parent.data.tags["specrun.seeds"] == "3" and parent.data.tags["specrun.cv.mode"] == "batched"
    assert {t.key: t.value for t in parent.inputs.dataset_inputs[0].tags} == {"specrun.seeds": "3"}
    accuracies = [c.data.metrics["test/accuracy"] for c in children]
    assert json.loads(out.read_text())["test/accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))


@pytest.mark.slow
def test_leave_one_out_and_group_kfold_from_a_file(workdir: Path, write_spec: Callable[..., Path]) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 2))
    lines = ["a,b,patient,label"] + [f"{a:.4f},{b:.4f},p{i // 3},{int(a + b > 0)}" for i, (a, b) in enumerate(x)]
    (workdir / "t.csv").write_text("\n".join(lines) + "\n")
    base = """\
        name: files
        data:
          dataset: {path: t.csv, target: label, groups: patient}
          split: {folds: FOLDS}
        model: {type: mlp, hidden: [3]}
        loss: cross_entropy
        optimizer: {type: sgd, lr: 0.1}
        train: {epochs: 2, batch_size: 4}
        metrics: [accuracy]
        """
    loo = run_cv(load_spec(write_spec(base.replace("FOLDS", "leave_one_out"))), RunOptions(track=False, quiet=True))
    assert len(loo.members) == 12 and loo.summary["test/accuracy"].n == 12
    assert all(m.metrics["test/accuracy"] in (0.0, 1.0) for m in loo.members)
    spec = load_spec(write_spec(base.replace("FOLDS", "{type: group_kfold, k: 4}")))
    assert spec.data.dataset.groups == "patient"
    loaded = load(spec)
    assert loaded.table.x.shape == (12, 2)  # the group column is not a feature
    groups = loaded.table.groups
    for fold in folds_of(spec, loaded):
        assert len(set(groups[fold.test])) == 1 and not set(groups[fold.test]) & set(groups[fold.train])
    assert len(run_cv(spec, RunOptions(track=False, quiet=True)).members) == 4


@pytest.mark.slow
def test_nested_cv_picks_epochs_on_inner_folds(workdir: Path, write_spec: Callable[..., Path]) -> None:
    text = CV_SPEC.format(folds="{type: stratified_kfold, k: 2}", model="").replace("val: 0.15, ", "inner: {type: kfold, k: 2}, ")
    outcome = run_cv(load_spec(write_spec(text)), RunOptions(track=False, quiet=True))
    assert outcome.mode == "sequential" and len(outcome.members) == 2
    for member in outcome.members:
        assert 1 <= member.metrics["epochs"] <= 4 and "best_epoch" not in member.metrics


def test_impossible_folds_are_rejected_before_anything_is_logged(
    workdir: Path, write_spec: Callable[..., Path], migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(CV_SPEC.format(folds="{type: kfold, k: 500}", model=""))
    assert main(["run", str(spec), "--tracking-uri", migrated_tracking_uri]) == 2
    assert "cannot split 178 rows" in capsys.readouterr().err
    assert runs_of(migrated_tracking_uri) == []


def test_a_cv_spec_is_not_a_holdout_run_and_usage_errors(
    workdir: Path, write_spec: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.data.prepare import DataError, prepare

    path = cv_spec(write_spec)
    with pytest.raises(DataError, match="cross-validates"):
        prepare(load_spec(path))
    assert main(["run", str(path), "--no-track", "--history-out", "h.csv"]) == 2
    assert main(["run", str(path), "--no-track", "--seeds", "2"]) == 2
    err = capsys.readouterr().err
    assert "--history-out" in err and "repeated_kfold" in err


@pytest.mark.usefixtures("one_thread")
def test_fold_parallel_members_that_stop_early_keep_their_own_weights(write_spec: Callable[..., Path]) -> None:
    # Members stop at different epochs while the others train on: each one's test metrics
    # come from its weights of the epoch it stopped (restore_best off) or its best epoch.
    for restore in ("false", "true"):
        text = (
            CV_SPEC.format(folds="{type: kfold, k: 4}", model="")
            .replace("epochs: 4", "epochs: 12")
            .replace("patience: 2}", f"patience: 1, min_delta: 0.03, restore_best: {restore}}}")
        )
        spec = load_spec(write_spec(text))
        batched = run_cv(spec, RunOptions(track=False, quiet=True))
        sequential = run_cv(spec, RunOptions(track=False, quiet=True), parallel=False)
        assert batched.mode == "batched"
        stopped = [m.metrics["epochs"] for m in sequential.members]
        assert min(stopped) < max(stopped), "the members should stop at different epochs"
        for b, s in zip(batched.members, sequential.members):
            for key in s.metrics:
                assert b.metrics[key] == pytest.approx(s.metrics[key], rel=1e-4, abs=1e-5), (restore, key)
