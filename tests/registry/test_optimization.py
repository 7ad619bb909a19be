"""Constraints, optimizers and schedules against torch's own implementations and closed forms."""

from __future__ import annotations

import pytest
import torch

import registry
from tests.registry.test_components import build


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))


def _steps(net: torch.nn.Module, optimizer: torch.optim.Optimizer, constraint: object = None, n: int = 5) -> None:
    torch.manual_seed(1)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    for _ in range(n):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        lr = optimizer.param_groups[0]["lr"]
        if constraint is not None:
            constraint.before_step(net, lr)  # type: ignore[attr-defined]
        optimizer.step()
        if constraint is not None:
            constraint.after_step(net, lr)  # type: ignore[attr-defined]


def test_decoupled_weight_decay_with_adam_is_adamw() -> None:
    ours, reference = _net(), _net()
    decay = build(registry.REGULARIZERS, {"type": "decoupled_weight_decay", "strength": 0.1, "exclude_bias": False})
    assert decay(ours).item() == 0.0  # nothing added to the loss
    _steps(ours, torch.optim.Adam(ours.parameters(), lr=0.05), decay)
    _steps(reference, torch.optim.AdamW(reference.parameters(), lr=0.05, weight_decay=0.1))
    for a, b in zip(ours.parameters(), reference.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_decoupled_weight_decay_leaves_biases_alone_by_default() -> None:
    net = _net()
    bias = net[0].bias.detach().clone()
    weight = net[0].weight.detach().clone()
    build(registry.REGULARIZERS, {"type": "decoupled_weight_decay", "strength": 0.5}).before_step(net, 0.1)
    assert torch.equal(net[0].bias, bias) and torch.allclose(net[0].weight, weight * 0.95)


def test_max_norm_caps_each_units_incoming_weights() -> None:
    net = _net()
    with torch.no_grad():
        net[0].weight.mul_(10)
    small = net[2].weight.detach().clone() * 0 + 0.01
    with torch.no_grad():
        net[2].weight.copy_(small)
    build(registry.REGULARIZERS, {"type": "max_norm", "max_norm": 1.0}).after_step(net, 0.1)
    assert torch.allclose(net[0].weight.norm(dim=1), torch.ones(4), atol=1e-6)
    assert torch.equal(net[2].weight, small)  # already inside the ball


@pytest.mark.parametrize(
    "name,reference",
    [
        ({"type": "gd", "lr": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1, fused=True)),
        ({"type": "momentum", "lr": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, fused=True)),
        ({"type": "nesterov", "lr": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, fused=True)),
        ("adam", lambda p: torch.optim.Adam(p, fused=True)),
        ("adamw", lambda p: torch.optim.AdamW(p, fused=True)),
        ("adagrad", lambda p: torch.optim.Adagrad(p, fused=True)),
        ("nadam", lambda p: torch.optim.NAdam(p)),  # no fused kernel
    ],
)
def test_optimizers_are_torchs(name: object, reference: object) -> None:
    ours, theirs = _net(), _net()
    _steps(ours, build(registry.OPTIMIZERS, name, ours.parameters()))
    _steps(theirs, reference(theirs.parameters()))  # type: ignore[operator]
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)


def test_fused_kernels_agree_with_the_default_ones_and_are_skipped_where_missing() -> None:
    ours, theirs = _net(), _net()
    _steps(ours, build(registry.OPTIMIZERS, "adam", ours.parameters()))
    _steps(theirs, torch.optim.Adam(theirs.parameters()))
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b)  # the same update, up to rounding
    on_meta = [torch.nn.Parameter(torch.empty(3, device="meta"))]  # a device without them
    assert not build(registry.OPTIMIZERS, "adam", on_meta).defaults["fused"]


def test_momentum_is_the_heavy_ball_update() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = build(registry.OPTIMIZERS, {"type": "momentum", "lr": 0.1, "momentum": 0.5}, [w])
    velocity, value = 0.0, 1.0
    for _ in range(3):
        opt.zero_grad()
        (w**2).sum().backward()
        opt.step()
        velocity = 0.5 * velocity + 2 * value
        value -= 0.1 * velocity
    assert w.item() == pytest.approx(value)


def test_lbfgs_minimizes_a_quadratic_in_one_step() -> None:
    w = torch.nn.Parameter(torch.tensor([3.0, -2.0]))
    opt = build(registry.OPTIMIZERS, "lbfgs", [w])

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = ((w - torch.tensor([1.0, 2.0])) ** 2 * torch.tensor([1.0, 10.0])).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert torch.allclose(w, torch.tensor([1.0, 2.0]), atol=1e-5)


def _rates(value: object, epochs: int = 8, steps: int = 1) -> list[float]:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=1.0)
    scheduler, _ = build(registry.SCHEDULERS, value, opt, epochs, steps)
    rates = []
    for _ in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return rates


def test_power_schedule_is_eta0_over_one_plus_t_over_s_to_the_c() -> None:
    assert _rates({"type": "power", "s": 2, "c": 2}) == pytest.approx([(1 + t / 2) ** -2 for t in range(8)])


def test_step_and_multistep_are_piecewise_constant() -> None:
    assert _rates({"type": "step", "step_size": 3, "gamma": 0.5}) == pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25])
    assert _rates({"type": "multistep", "milestones": [2, 5]}) == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01])


def test_warmup_ramps_linearly_then_hands_over() -> None:
    rates = _rates({"type": "warmup", "length": 4, "start_factor": 0.2, "then": {"type": "exponential", "gamma": 0.5}})
    assert rates == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 0.5, 0.25, 0.125])
    assert _rates({"type": "warmup", "length": 2, "start_factor": 0.5}) == pytest.approx([0.5, 0.75] + [1.0] * 6)
    cosine = _rates({"type": "warmup", "length": 2, "then": {"type": "cosine", "t_max": 6}})
    assert cosine[2] == pytest.approx(1.0) and cosine[-1] < cosine[3]
