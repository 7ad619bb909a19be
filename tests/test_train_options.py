"""The loop's options: restore-best, gradient accumulation, the DataLoader path, bf16, compile.

Each compares against the plain path on the same data and seed, so a broken option shows
as a difference, not just as a crash.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from runner.cli import main
from runner.data.prepare import prepare
from runner.runtime import determinism
from runner.spec import load_spec
from runner.spec.schema import Spec
from runner.tracking.tracker import NullTracker
from runner.training import batches, checkpoint
from runner.training.loop import evaluate, train_one
from runner.training.pipeline import Pipeline, build
from tests.conftest import TINY_SPEC

DIGITS = TINY_SPEC.replace("dataset: breast_cancer", "dataset: digits").replace("loss: bce", "loss: cross_entropy")


def _pipeline(spec: Spec) -> Pipeline:
    determinism.set_reproducibility(spec.reproducibility)
    determinism.seed_everything(spec.seed)
    data = prepare(spec)
    determinism.seed_everything(spec.seed)
    return build(spec, data, torch.device("cpu"))


def _train(write_spec: Callable[..., Path], text: str, *sets: str) -> tuple[Pipeline, dict[str, float]]:
    spec = load_spec(write_spec(text), sets)
    pipeline = _pipeline(spec)
    result = train_one(pipeline, spec.train, seed=spec.seed, reporter=NullTracker())
    return pipeline, result.test


def _metrics(workdir: Path, spec: Path, *args: str) -> dict[str, float]:
    out = workdir / f"m{len(list(workdir.glob('m*.json')))}.json"
    assert main(["run", str(spec), "--no-track", "--metrics-out", str(out), *args]) == 0
    return json.loads(out.read_text())


def test_restore_best_tests_the_best_epochs_weights(workdir: Path, write_spec: Callable[..., Path], tracking_uri: str) -> None:
    # A rate high enough that validation loss turns up early, so early stopping fires.
    spec_file = write_spec(TINY_SPEC.replace("lr: 0.01", "lr: 0.05").replace("epochs: 3", "epochs: 40"))
    sets = ["--set", "train.early_stopping={monitor: val/loss, patience: 3}"]
    out = workdir / "metrics.json"
    assert main(["run", str(spec_file), *sets, "--tracking-uri", tracking_uri, "--metrics-out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["epochs"] < 40 and metrics["best_epoch"] == metrics["epochs"] - 3

    client = MlflowClient(tracking_uri)
    run = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])[0]
    state = checkpoint.load(Path(client.download_artifacts(run.info.run_id, "checkpoints/last.pt", str(workdir))))
    tested = torch.load(client.download_artifacts(run.info.run_id, "model/weights.pt", str(workdir)), weights_only=True)
    assert state["epoch"] == metrics["epochs"]
    # The model that was tested is the best epoch's, not the last one's.
    assert all(torch.equal(tested[k], state["best_model"][k]) for k in tested)
    assert not all(torch.equal(tested[k], state["model"][k]) for k in tested)
    # Re-evaluating those weights reproduces the test metrics exactly; the last epoch's do not.
    spec = load_spec(spec_file, [sets[1]])
    pipeline = _pipeline(spec)
    pipeline.model.load_state_dict(state["best_model"])
    again = evaluate(pipeline, pipeline.test, "test")
    assert all(metrics[k] == again[k] for k in again)
    pipeline.model.load_state_dict(state["model"])
    assert evaluate(pipeline, pipeline.test, "test")["test/loss"] != metrics["test/loss"]
    # The reported validation numbers are the best epoch's as well.
    best = int(metrics["best_epoch"])
    assert metrics["val/loss"] == state["history"][best - 1]["val/loss"] == min(h["val/loss"] for h in state["history"])


def test_accumulating_two_batches_of_16_equals_one_batch_of_32(write_spec: Callable[..., Path]) -> None:
    text = DIGITS.replace("dropout: 0.1", "dropout: 0.0")
    halves, halves_test = _train(write_spec, text, "train.batch_size=16", "train.accumulate=2", "scheduler={type: onecycle, max_lr: 0.02}")
    whole, whole_test = _train(write_spec, text, "train.batch_size=32", "scheduler={type: onecycle, max_lr: 0.02}")
    assert halves.steps_per_epoch == whole.steps_per_epoch
    for a, b in zip(halves.model.parameters(), whole.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert halves_test == pytest.approx(whole_test, rel=1e-4, abs=1e-5)
    # A different split of the same rows is a different optimization: the check can fail.
    single, _ = _train(write_spec, text, "train.batch_size=16", "scheduler={type: onecycle, max_lr: 0.02}")
    assert not torch.allclose(next(single.model.parameters()), next(whole.model.parameters()), atol=1e-3)


def test_dataloader_path_with_workers_equals_the_device_path(workdir: Path, write_spec: Callable[..., Path]) -> None:
    spec = write_spec(DIGITS)
    on_device = _metrics(workdir, spec, "--set", "train.loader=device")
    streamed = _metrics(workdir, spec, "--set", "train.loader=dataloader", "--set", "train.workers=2")
    assert streamed == on_device  # same order, same batches: bit-identical on CPU


def test_auto_loader_keeps_data_on_the_device_when_it_fits() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert batches.choose_loader("auto", 10**12, cpu) == "device"  # host memory holds it already
    assert batches.choose_loader("auto", 10**9, cuda, free=8 * 10**9) == "device"
    assert batches.choose_loader("auto", 5 * 10**9, cuda, free=8 * 10**9) == "dataloader"
    assert batches.choose_loader("dataloader", 10, cpu) == "dataloader"
    assert batches.choose_loader("device", 10**12, cuda, free=1) == "device"


def test_bf16_autocast_trains_on_cpu(workdir: Path, write_spec: Callable[..., Path]) -> None:
    spec = write_spec(DIGITS.replace("epochs: 3", "epochs: 6"))
    fp32 = _metrics(workdir, spec)
    bf16 = _metrics(workdir, spec, "--set", "train.precision=bf16")
    assert bf16 != fp32  # bf16 really was used
    assert bf16["test/accuracy"] > 0.85 and abs(bf16["test/accuracy"] - fp32["test/accuracy"]) < 0.05


@pytest.mark.slow
def test_compiled_model_matches_eager(write_spec: Callable[..., Path]) -> None:
    text = DIGITS.replace("dropout: 0.1", "dropout: 0.0").replace("epochs: 3", "epochs: 2")
    eager, eager_test = _train(write_spec, text)
    compiled, compiled_test = _train(write_spec, text, "train.compile=true")
    assert compiled.model._compiled_call_impl is not None  # type: ignore[attr-defined]
    for a, b in zip(compiled.model.parameters(), eager.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert compiled_test == pytest.approx(eager_test, rel=1e-4, abs=1e-4)


def test_early_stopping_watches_one_class_of_a_per_class_metric(
    workdir: Path, write_spec: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text = DIGITS.replace("metrics: [accuracy, roc_auc]", "metrics: [accuracy, {type: recall, average: none}]").replace(
        "epochs: 3", "epochs: 30"
    )
    spec = write_spec(text)
    stopping = "train.early_stopping={monitor: val/recall/3, patience: 2, restore_best: true}"
    history = workdir / "history.csv"
    metrics = _metrics(workdir, spec, "--set", stopping, "--history-out", str(history))
    assert metrics["epochs"] < 30 and "val/recall/9" in metrics
    # Recall is better higher: the chosen epoch has the highest recall of class 3.
    recalls = [float(row["val/recall/3"]) for row in csv.DictReader(history.open())]
    assert metrics["best_epoch"] == metrics["epochs"] - 2 and metrics["val/recall/3"] == max(recalls) > min(recalls)
    # A class the data do not have (digits: 0-9) is refused before anything runs.
    capsys.readouterr()
    assert main(["run", str(spec), "--no-track", "--set", stopping.replace("recall/3", "recall/10")]) == 2
    assert "'val/recall/10' is the value of class 10, but the data have 10 classes (0 to 9)" in capsys.readouterr().err
