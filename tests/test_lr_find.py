"""``runner lr-find``: the range test grows the rate geometrically from 1e-6, stops at the
divergence, suggests a tenth of it, plots the curve and logs it to MLflow."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.cli import main
from runner.spec import load_spec
from runner.training.lr_find import range_test

SPEC = """\
name: lrf
seed: 0
data: {dataset: iris, transforms: [standardize], split: {test: 0.2}}
model: {type: mlp, hidden: [16]}
loss: cross_entropy
optimizer: sgd
train: {batch_size: 16}
"""


def test_rates_grow_geometrically_and_the_suggestion_is_a_tenth_of_the_critical_rate(write_spec: Callable[..., Path]) -> None:
    result = range_test(load_spec(write_spec(SPEC)), start=1e-6, end=1e3, steps=120)
    assert result.rates[0] == 1e-6
    ratios = {round(b / a, 9) for a, b in zip(result.rates, result.rates[1:])}
    assert ratios == {round((1e3 / 1e-6) ** (1 / 119), 9)}
    assert result.critical is not None and result.critical == result.rates[-1] and len(result.rates) < 120
    assert result.suggested == pytest.approx(result.critical / 10)
    assert result.losses[-1] > 4 * min(result.losses[:-1])  # it stopped because the loss blew up


def test_cli_plots_and_logs_the_curve(
    write_spec: Callable[..., Path], workdir: Path, migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    spec = write_spec(SPEC)
    assert main(["lr-find", str(spec), "--end", "100", "--out", "plots/lr.png", "--tracking-uri", migrated_tracking_uri]) == 0
    assert (workdir / "plots" / "lr.png").read_bytes()[:4] == b"\x89PNG"
    assert "suggested learning rate" in capsys.readouterr().out
    client = MlflowClient(tracking_uri=migrated_tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("lrf").experiment_id])
    assert run.data.tags["specrun.lr_find"] == "true"
    assert run.data.metrics["lr_find/suggested_lr"] == pytest.approx(run.data.metrics["lr_find/critical_lr"] / 10)
    history = client.get_metric_history(run.info.run_id, "lr_find/lr")
    assert history[0].value == pytest.approx(1e-6) and len(history) > 10
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["lr.png"]
    assert main(["lr-find", str(spec), "--start", "1", "--end", "0.1", "--no-track"]) == 2


def test_a_cross_validated_spec_is_tested_on_its_first_folds_training_rows(write_spec: Callable[..., Path]) -> None:
    # (It was refused: such a spec has no single training part.)
    folds = load_spec(write_spec(SPEC.replace("split: {test: 0.2}", "split: {folds: 5}"), name="folds.yaml"))
    result = range_test(folds, steps=20)
    assert len(result.rates) == 20 and all(math.isfinite(loss) for loss in result.losses)
