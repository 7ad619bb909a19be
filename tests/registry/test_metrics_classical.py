"""More metrics against scikit-learn; figure metrics drawn and logged by a real run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

import registry
from registry import Task
from tests.registry.test_components import build

BINARY, MULTI = Task("binary", n_classes=2), Task("multiclass", n_classes=4)


def metric(value: object, task: Task) -> object:
    return build(registry.METRICS, value, task)


def _binary() -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.35 * y + rng.uniform(0, 0.65, 300), 0, 1)
    return torch.tensor(p, dtype=torch.float32), torch.tensor(y), p, y


def _multi() -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 400)
    scores = rng.normal(size=(400, 4)) + np.eye(4)[y]
    probs = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    return torch.tensor(probs, dtype=torch.float32), torch.tensor(y), probs, y


def test_fbeta_binary_and_every_average() -> None:
    tp, ty, p, y = _binary()
    for threshold in (0.5, 0.6):
        got = metric({"type": "fbeta", "beta": 2.0, "threshold": threshold}, BINARY)(tp, ty).item()
        assert got == pytest.approx(skm.fbeta_score(y, (p > threshold).astype(int), beta=2.0), rel=1e-5)
    tp, ty, probs, y = _multi()
    hard = probs.argmax(1)
    for average in ("macro", "micro", "weighted"):
        got = metric({"type": "fbeta", "beta": 0.5, "average": average}, MULTI)(tp, ty).item()
        assert got == pytest.approx(skm.fbeta_score(y, hard, beta=0.5, average=average), rel=1e-5)
    per_class = metric({"type": "fbeta", "beta": 0.5, "average": "none"}, MULTI)(tp, ty)
    assert np.allclose(per_class.numpy(), skm.fbeta_score(y, hard, beta=0.5, average=None), rtol=1e-5)
    recall = metric({"type": "recall", "average": "none"}, MULTI)(tp, ty)
    assert np.allclose(recall.numpy(), skm.recall_score(y, hard, average=None), rtol=1e-5)


def test_specificity_is_the_recall_of_the_negatives() -> None:
    tp, ty, p, y = _binary()
    got = metric("specificity", BINARY)(tp, ty).item()
    assert got == pytest.approx(skm.recall_score(1 - y, (p <= 0.5).astype(int)), rel=1e-6)
    tp, ty, probs, y = _multi()
    cm = skm.confusion_matrix(y, probs.argmax(1))
    tn = cm.sum() - cm.sum(0) - cm.sum(1) + np.diag(cm)
    fp = cm.sum(0) - np.diag(cm)
    assert metric("specificity", MULTI)(tp, ty).item() == pytest.approx(np.mean(tn / (tn + fp)), rel=1e-5)


def test_fraud_example_specificity_is_one() -> None:
    """000:529-535: always "no fraud" at 1 in 1000: every negative is right."""
    y = torch.zeros(10_000, dtype=torch.long)
    y[::1000] = 1
    assert metric("specificity", BINARY)(torch.zeros(10_000), y).item() == 1.0
    assert metric("fbeta", BINARY)(torch.zeros(10_000), y).item() == 0.0


def test_top_k_pr_auc_and_log_loss_match_scikit_learn() -> None:
    tp, ty, probs, y = _multi()
    assert metric({"type": "top_k_accuracy", "k": 2}, MULTI)(tp, ty).item() == pytest.approx(
        skm.top_k_accuracy_score(y, probs, k=2), rel=1e-6
    )
    assert metric("log_loss", MULTI)(tp, ty).item() == pytest.approx(skm.log_loss(y, probs), rel=1e-5)
    expected = np.mean([skm.average_precision_score(y == k, probs[:, k]) for k in range(4)])
    assert metric("pr_auc", MULTI)(tp, ty).item() == pytest.approx(expected, rel=1e-4)
    tp, ty, p, y = _binary()
    assert metric("pr_auc", BINARY)(tp, ty).item() == pytest.approx(skm.average_precision_score(y, p), rel=1e-4)
    assert metric("log_loss", BINARY)(tp, ty).item() == pytest.approx(skm.log_loss(y, p), rel=1e-4)
    with pytest.raises(ValueError, match="k < number of classes"):
        metric({"type": "top_k_accuracy", "k": 4}, MULTI)


def test_figure_metrics_draw_the_matrix_and_the_curve() -> None:
    tp, ty, probs, y = _multi()
    figure = metric("confusion_matrix", MULTI)(tp, ty)
    image = figure.axes[0].images[0].get_array()
    assert np.array_equal(np.asarray(image), skm.confusion_matrix(y, probs.argmax(1)))
    tp, ty, p, y = _binary()
    curve = metric("roc_curve", BINARY)(tp, ty)
    assert f"AUC {skm.roc_auc_score(y, p):.3f}" in curve.axes[0].get_legend().get_texts()[0].get_text()


def test_a_run_logs_figures_and_per_class_metrics(write_spec: Callable[..., Path], workdir: Path, migrated_tracking_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    from runner.cli import main

    path = write_spec("""\
        name: figs
        data: {dataset: iris, split: {test: 0.3, val: 0.2, stratify: true}}
        model: softmax
        loss: cross_entropy
        optimizer: {type: adam, lr: 0.05}
        train: {epochs: 2, batch_size: full}
        metrics: [accuracy, confusion_matrix, roc_curve, {type: precision, average: none, name: precision_per_class}]
        """)
    assert main(["run", str(path), "--tracking-uri", migrated_tracking_uri]) == 0
    client = MlflowClient(tracking_uri=migrated_tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("figs").experiment_id])
    assert {a.path for a in client.list_artifacts(run.info.run_id, "figures")} == {"figures/confusion_matrix.png", "figures/roc_curve.png"}
    assert {"val/precision_per_class/0", "test/precision_per_class/2", "test/accuracy"} <= set(run.data.metrics)
    assert not any("confusion" in name for name in run.data.metrics)
