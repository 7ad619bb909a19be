"""Every registered loss, regularizer, scheduler and metric passes one contract: it builds from
minimal parameters, and gives a finite scalar (or a figure) on a tiny batch."""

from __future__ import annotations

import math

import pytest
import torch

import registry
from registry import Task
from tests.registry.test_components import build

REQUIRED = {  # the fewest parameters each entry needs
    "l1": {"strength": 0.1},
    "l2": {"strength": 0.1},
    "decoupled_weight_decay": {"strength": 0.1},
    "max_norm": {"max_norm": 1.0},
    "step": {"step_size": 2},
    "multistep": {"milestones": [2]},
    "exponential": {"gamma": 0.9},
    "onecycle": {"max_lr": 0.1},
    "power": {"s": 2},
    "warmup": {"length": 2},
}


def _targets(task: str, n: int = 8) -> tuple[int, torch.Tensor, Task]:
    torch.manual_seed(0)
    if task == "regression":
        return 1, torch.rand(n) * 3, Task("regression")
    if task == "binary":
        return 1, torch.tensor([0, 1] * (n // 2)), Task("binary", n_classes=2)
    return 3, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]), Task("multiclass", n_classes=3)


#: Heads that read a particular model's outputs are tested with that model (elbo: a VAE's).
MODEL_SPECIFIC_LOSSES = {"elbo"}


@pytest.mark.parametrize("name", [n for n in registry.LOSSES.names() if n not in MODEL_SPECIFIC_LOSSES])
def test_every_loss_gives_a_finite_scalar_with_a_gradient(name: str) -> None:
    entry = registry.LOSSES.get(name)
    width, y, _ = _targets(entry.meta["task"])
    head = build(registry.LOSSES, name)
    width = {"pairs": 3, "mean_and_log_variance": 2, "dim": 16}.get(entry.meta.get("outputs"), width)
    if name == "kl":
        width, y = 3, torch.softmax(torch.randn(8, 3), 1)
    outputs = torch.randn(8, width, requires_grad=True)
    loss = head(outputs, y)
    loss.backward()
    assert loss.ndim == 0 and math.isfinite(loss.item()) and torch.isfinite(outputs.grad).all()
    assert head.predict(outputs.detach()).shape[0] == 8


@pytest.mark.parametrize("name", registry.REGULARIZERS.names())
def test_every_regularizer_builds_and_gives_a_scalar(name: str) -> None:
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    value = build(registry.REGULARIZERS, {"type": name, **REQUIRED.get(name, {})})(net)
    assert value.ndim == 0 and value.item() >= 0


@pytest.mark.parametrize("name", registry.SCHEDULERS.names())
def test_every_scheduler_steps(name: str) -> None:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=0.1)
    scheduler, interval = build(registry.SCHEDULERS, {"type": name, **REQUIRED.get(name, {})}, opt, 5, 2)
    for _ in range(4):
        opt.step()
        scheduler.step()
    assert interval in ("epoch", "step") and opt.param_groups[0]["lr"] > 0


@pytest.mark.parametrize("name", registry.METRICS.names())
def test_every_metric_returns_a_number_or_a_figure(name: str) -> None:
    entry = registry.METRICS.get(name)
    kind = "regression" if entry.meta["task"] == "regression" else "multiclass"
    _, y, task = _targets(kind)
    preds = torch.rand(8) * 3 if kind == "regression" else torch.softmax(torch.randn(8, 3), 1)
    params = {"type": name, "k": 2} if name == "top_k_accuracy" else name
    value = build(registry.METRICS, params, task)(preds, y)
    if entry.meta.get("figure"):
        assert value.axes  # a matplotlib figure
    else:
        assert value.ndim == 0 and math.isfinite(value.item())
