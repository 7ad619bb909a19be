"""The training loop's hooks for classical components: closed-form fits, L-BFGS closures,
constraints applied around each step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from runner.data.prepare import prepare
from runner.spec import load_spec
from runner.training.loop import train_one
from runner.training.pipeline import build


class _Quiet:
    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        pass


SPEC = """\
name: t
seed: 0
data: {dataset: {type: noisy_cubic, n_samples: 120}, split: {test: 0.25}}
model: MODEL
loss: mse
optimizer: OPTIMIZER
train: {epochs: EPOCHS, batch_size: BATCH}
"""


def trained(write_spec: Callable[..., Path], extra: str = "", **parts: str) -> tuple[object, object]:
    text = SPEC
    for key, value in parts.items():
        text = text.replace(key.upper(), value)
    spec = load_spec(write_spec(text + extra))
    data = prepare(spec)
    pipeline = build(spec, data, torch.device("cpu"))
    return pipeline, train_one(pipeline, spec.train, seed=spec.seed, reporter=_Quiet())


def test_closed_form_model_is_fitted_once_without_gradient_steps(write_spec: Callable[..., Path]) -> None:
    pipeline, result = trained(
        write_spec,
        model="{type: least_squares, features: {type: polynomial, degree: 3}}",
        optimizer="sgd",
        epochs="50",
        batch="8",
    )
    assert result.epochs_run == 1 and len(result.history) == 1  # type: ignore[attr-defined]
    x, y = pipeline.train.x.double().numpy()[:, 0], pipeline.train.y.double().numpy()  # type: ignore[attr-defined]
    expected = np.polynomial.polynomial.polyfit(x, y, 3)
    assert np.allclose(pipeline.model.weight[:, 0].detach().numpy(), expected, rtol=1e-6)  # type: ignore[attr-defined]
    residual = np.polynomial.polynomial.polyval(x, expected) - y
    assert abs(result.history[0]["train/loss"] - np.mean(residual**2)) < 1e-4  # type: ignore[attr-defined]


def test_lbfgs_gets_its_closure_and_fits_a_linear_model(write_spec: Callable[..., Path]) -> None:
    pipeline, result = trained(write_spec, model="linear", optimizer="{type: lbfgs, max_iter: 50}", epochs="2", batch="full")
    x, y = pipeline.train.x.double().numpy()[:, 0], pipeline.train.y.double().numpy()  # type: ignore[attr-defined]
    slope, intercept = np.polynomial.polynomial.polyfit(x, y, 1)[::-1]
    assert abs(pipeline.model.weight.item() - slope) < 1e-3 and abs(pipeline.model.bias.item() - intercept) < 1e-3  # type: ignore[attr-defined]


def test_max_norm_holds_after_training(write_spec: Callable[..., Path]) -> None:
    pipeline, _ = trained(
        write_spec,
        "regularizer: {type: max_norm, max_norm: 0.5}\n",
        model="{type: mlp, hidden: [8]}",
        optimizer="{type: sgd, lr: 0.5}",
        epochs="3",
        batch="16",
    )
    norms = [p.norm(dim=1).max().item() for p in pipeline.model.parameters() if p.ndim > 1]  # type: ignore[attr-defined]
    assert max(norms) <= 0.5 + 1e-6
