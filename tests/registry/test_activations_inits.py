"""The catalog's activations and initializations are all registered and match torch."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

import registry
from tests.registry.test_components import build

Z = torch.linspace(-3, 3, 13)


@pytest.mark.parametrize(
    "value,reference",
    [
        ("sigmoid", torch.sigmoid),
        ("tanh", torch.tanh),
        ("relu", F.relu),
        ("gelu", F.gelu),
        ("silu", F.silu),
        ("swish", F.silu),
        ("softplus", F.softplus),
        ("selu", F.selu),
        ("identity", lambda z: z),
        ({"type": "leaky_relu", "slope": 0.3}, lambda z: F.leaky_relu(z, 0.3)),
        ({"type": "elu", "alpha": 0.5}, lambda z: F.elu(z, 0.5)),
        ({"type": "prelu", "init": 0.1}, lambda z: torch.where(z > 0, z, 0.1 * z)),
        ("softmax", lambda z: torch.softmax(z, -1)),
        ("step", lambda z: (z > 0).float()),
    ],
)
def test_activation_matches_its_definition(value: object, reference: object) -> None:
    assert torch.allclose(build(registry.ACTIVATIONS, value)(Z), reference(Z), atol=1e-6)  # type: ignore[operator]


def test_rrelu_is_random_in_training_and_the_mean_slope_at_test() -> None:
    act = build(registry.ACTIVATIONS, {"type": "rrelu", "lower": 0.1, "upper": 0.3})
    act.eval()
    assert torch.allclose(act(Z), torch.where(Z > 0, Z, 0.2 * Z))
    act.train()
    slopes = act(-torch.ones(1000)) * -1
    assert 0.1 <= slopes.min() and slopes.max() <= 0.3 and slopes.std() > 0


def test_catalog_names_are_all_registered() -> None:
    catalog_activations = {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu", "swish", "softplus", "prelu", "rrelu", "softmax"}
    assert catalog_activations <= set(registry.ACTIVATIONS.names())
    assert {"xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "normal", "orthogonal"} <= set(registry.INITS.names())


@pytest.mark.parametrize("mode,fan", [("fan_in", 400), ("fan_out", 100)])
def test_kaiming_modes_use_their_fan(mode: str, fan: int) -> None:
    torch.manual_seed(0)
    w = torch.empty(100, 400)
    build(registry.INITS, {"type": "kaiming_normal", "mode": mode})(w)
    assert w.var().item() == pytest.approx(2 / fan, rel=0.05)
    build(registry.INITS, {"type": "kaiming_uniform", "mode": mode})(w)
    assert w.abs().max().item() <= (6 / fan) ** 0.5


def test_orthogonal_normal_and_bias_constant() -> None:
    torch.manual_seed(0)
    w = torch.empty(20, 20)
    build(registry.INITS, "orthogonal")(w)
    assert torch.allclose(w @ w.T, torch.eye(20), atol=1e-5)
    build(registry.INITS, {"type": "normal", "std": 0.5})(w)
    assert w.std().item() == pytest.approx(0.5, rel=0.1)
    model = build(registry.MODELS, {"type": "linear", "init": {"weights": "xavier_normal", "bias": 0.25}}, (3,), 2)
    assert torch.all(model.bias == 0.25)
