"""Each component against an independent reference: torch, scikit-learn or a closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter, ValidationError
from sklearn import metrics as skm

import registry
from registry import Task


def component(reg: registry.Registry, value: object) -> object:
    """Validate a spec value the way the spec does, e.g. ``{"type": "mse", "scale": 0.5}``."""
    return TypeAdapter(reg.field_type()).validate_python(value)


def build(reg: registry.Registry, value: object, *args: object) -> object:
    params = component(reg, value)
    return reg.get(params.type).builder(params, *args)  # type: ignore[attr-defined]


# -- losses ---------------------------------------------------------------------------------


def test_mse_reduction_and_scale_match_closed_form() -> None:
    out, y = torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0])
    assert build(registry.LOSSES, "mse")(out, y).item() == pytest.approx((1 + 4) / 2)
    half_sum = build(registry.LOSSES, {"type": "mse", "reduction": "sum", "scale": 0.5})
    assert half_sum(out, y).item() == pytest.approx(0.5 * 5)


def test_mae_and_huber_match_torch() -> None:
    out, y = torch.tensor([[1.0], [-3.0]]), torch.tensor([0.5, 1.0])
    assert build(registry.LOSSES, "mae")(out, y).item() == pytest.approx((0.5 + 4) / 2)
    huber = build(registry.LOSSES, {"type": "huber", "delta": 1.0})
    assert huber(out, y).item() == pytest.approx(torch.nn.HuberLoss()(out.squeeze(-1), y).item())


def test_bce_is_the_bernoulli_negative_log_likelihood() -> None:
    logits, y = torch.tensor([[0.3], [-1.2], [2.0]]), torch.tensor([1, 0, 0])
    p = torch.sigmoid(logits.squeeze(-1))
    expected = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    head = build(registry.LOSSES, "bce")
    assert head(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.allclose(head.predict(logits), p)


def test_cross_entropy_is_the_categorical_negative_log_likelihood() -> None:
    logits, y = torch.tensor([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]]), torch.tensor([1, 2])
    expected = -torch.log_softmax(logits, -1)[torch.arange(2), y].mean()
    head = build(registry.LOSSES, "cross_entropy")
    assert head(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)
    smoothed = build(registry.LOSSES, {"type": "cross_entropy", "label_smoothing": 0.1})
    assert smoothed(logits, y).item() == pytest.approx(torch.nn.CrossEntropyLoss(label_smoothing=0.1)(logits, y).item())


# -- regularizers ---------------------------------------------------------------------------


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def test_l2_excludes_biases_by_default() -> None:
    net = _net()
    weights = [net[0].weight, net[2].weight]
    expected = 0.1 * sum(w.square().sum() for w in weights)
    assert build(registry.REGULARIZERS, {"type": "l2", "strength": 0.1})(net).item() == pytest.approx(expected.item())
    with_bias = 0.1 * sum(p.square().sum() for p in net.parameters())
    got = build(registry.REGULARIZERS, {"type": "l2", "strength": 0.1, "exclude_bias": False})(net)
    assert got.item() == pytest.approx(with_bias.item())


def test_l1_and_elastic_net() -> None:
    net = _net()
    weights = [net[0].weight, net[2].weight]
    l1 = sum(w.abs().sum() for w in weights)
    l2 = sum(w.square().sum() for w in weights)
    assert build(registry.REGULARIZERS, {"type": "l1", "strength": 0.5})(net).item() == pytest.approx(0.5 * l1.item())
    net_value = build(registry.REGULARIZERS, {"type": "elastic_net", "l1": 0.5, "l2": 0.25})(net)
    assert net_value.item() == pytest.approx((0.5 * l1 + 0.25 * l2).item())


# -- metrics --------------------------------------------------------------------------------


def metric(value: object, task: Task) -> object:
    return build(registry.METRICS, value, task)


def test_binary_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(y * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    task = Task("binary", n_classes=2)
    tp, ty = torch.tensor(p, dtype=torch.float32), torch.tensor(y)
    hard = (p >= 0.5).astype(int)
    assert metric("accuracy", task)(tp, ty).item() == pytest.approx(skm.accuracy_score(y, hard))
    assert metric("precision", task)(tp, ty).item() == pytest.approx(skm.precision_score(y, hard))
    assert metric("recall", task)(tp, ty).item() == pytest.approx(skm.recall_score(y, hard))
    assert metric("f1", task)(tp, ty).item() == pytest.approx(skm.f1_score(y, hard), rel=1e-5)
    assert metric("roc_auc", task)(tp, ty).item() == pytest.approx(skm.roc_auc_score(y, p), rel=1e-5)
    high = (p >= 0.7).astype(int)
    assert metric({"type": "recall", "threshold": 0.7}, task)(tp, ty).item() == pytest.approx(skm.recall_score(y, high))


def test_multiclass_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    scores = rng.normal(size=(300, 3)) + np.eye(3)[y] * 1.5
    probs = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    task = Task("multiclass", n_classes=3)
    tp, ty = torch.tensor(probs, dtype=torch.float32), torch.tensor(y)
    hard = probs.argmax(1)
    assert metric("accuracy", task)(tp, ty).item() == pytest.approx(skm.accuracy_score(y, hard))
    for average in ("macro", "micro", "weighted"):
        f1 = metric({"type": "f1", "average": average}, task)(tp, ty).item()
        assert f1 == pytest.approx(skm.f1_score(y, hard, average=average), rel=1e-5)
    auc = metric("roc_auc", task)(tp, ty).item()
    assert auc == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr", average="macro"), rel=1e-4)


def test_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=100).astype(np.float32)
    pred = (y + rng.normal(scale=0.3, size=100)).astype(np.float32)
    task = Task("regression")
    tp, ty = torch.tensor(pred), torch.tensor(y)
    assert metric("rmse", task)(tp, ty).item() == pytest.approx(math.sqrt(skm.mean_squared_error(y, pred)), rel=1e-5)
    assert metric("mae", task)(tp, ty).item() == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-5)
    assert metric("r2", task)(tp, ty).item() == pytest.approx(skm.r2_score(y, pred), rel=1e-4)


def test_fraud_example_always_no_fraud() -> None:
    """000:529-535: predicting "no fraud" at 1 in 1000 gives accuracy 0.999, precision and recall 0."""
    y = torch.zeros(10_000, dtype=torch.long)
    y[::1000] = 1
    never = torch.zeros(10_000)
    task = Task("binary", n_classes=2)
    assert metric("accuracy", task)(never, y).item() == pytest.approx(0.999)
    assert metric("precision", task)(never, y).item() == 0.0
    assert metric("recall", task)(never, y).item() == 0.0


# -- initializations and activations --------------------------------------------------------


def test_kaiming_normal_has_variance_two_over_fan_in() -> None:
    torch.manual_seed(0)
    model = build(registry.MODELS, {"type": "mlp", "hidden": [512], "init": {"weights": "kaiming_normal", "bias": "zeros"}}, (1000,), 1)
    weight = model.body[0].weight
    assert weight.var().item() == pytest.approx(2 / 1000, rel=0.05)
    assert torch.count_nonzero(model.body[0].bias) == 0


def test_xavier_uniform_bound() -> None:
    torch.manual_seed(0)
    model = build(registry.MODELS, {"type": "linear", "init": {"weights": "xavier_uniform", "bias": 0.5}}, (300,), 100)
    bound = math.sqrt(6 / (300 + 100))
    assert model.weight.abs().max().item() <= bound
    assert model.weight.abs().max().item() > 0.95 * bound
    assert torch.all(model.bias == 0.5)


def test_leaky_relu_slope_is_explicit() -> None:
    act = build(registry.ACTIVATIONS, {"type": "leaky_relu", "slope": 0.3})
    assert act(torch.tensor([-1.0])).item() == pytest.approx(-0.3)


# -- models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", registry.MODELS.names())
def test_every_model_builds_with_defaults_and_backpropagates(name: str) -> None:
    # Image models (meta inputs="images") need room for their default convs and pools.
    images_only = registry.MODELS.get(name).meta.get("inputs") == "images"
    table, image = ((1, 8, 8), (3, 8, 8)) if images_only else ((5,), (1, 2, 3))
    model = build(registry.MODELS, name, table, 3)
    x = torch.randn(4, *table)
    out = model(x)
    if name == "vae":  # the VAE packs reconstruction, mu and log-variance (registry._vae.VAEOutput)
        out = out[:, :3]
    assert out.shape == (4, 3)
    images = build(registry.MODELS, name, image, 3)
    assert images(torch.randn(4, *image)).shape[0] == 4
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_mlp_per_layer_activations_and_norms() -> None:
    model = build(
        registry.MODELS, {"type": "mlp", "hidden": [6, 4], "activation": ["tanh", "relu"], "norm": "batch", "dropout": 0.2}, (5,), 2
    )
    kinds = [type(m).__name__ for m in model.body]
    assert kinds == ["Linear", "BatchNorm1d", "Tanh", "Dropout", "Linear", "BatchNorm1d", "ReLU", "Dropout"]
    with pytest.raises(ValidationError, match="activation"):
        component(registry.MODELS, {"type": "mlp", "hidden": [6, 4], "activation": ["tanh"]})


# -- optimizers and schedulers --------------------------------------------------------------


@pytest.mark.parametrize("name", registry.OPTIMIZERS.names())
def test_every_optimizer_takes_a_step(name: str) -> None:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = build(registry.OPTIMIZERS, name, [w])

    def closure() -> torch.Tensor:  # every torch optimizer takes one; L-BFGS needs it
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert w.item() < 1.0


def test_sgd_maps_to_torch_and_checks_nesterov() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = build(registry.OPTIMIZERS, {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True}, [w])
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
    with pytest.raises(ValidationError, match="nesterov"):
        component(registry.OPTIMIZERS, {"type": "sgd", "nesterov": True})


def test_schedulers_follow_their_closed_forms() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=1.0)
    scheduler, interval = build(registry.SCHEDULERS, {"type": "exponential", "gamma": 0.5}, opt, 10, 1)
    for _ in range(2):
        opt.step()
        scheduler.step()
    assert interval == "epoch" and opt.param_groups[0]["lr"] == pytest.approx(0.25)
    opt = torch.optim.SGD([w], lr=1.0)
    scheduler, interval = build(registry.SCHEDULERS, {"type": "onecycle", "max_lr": 1.0}, opt, 10, 5)
    assert interval == "step" and opt.param_groups[0]["lr"] == pytest.approx(0.1)  # eta_max / div_factor


# -- datasets and transforms ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name,kind,shape",
    [
        ("breast_cancer", "binary", (569, 30)),
        ("digits", "multiclass", (1797, 64)),
        ("iris", "multiclass", (150, 4)),
        ("wine", "multiclass", (178, 13)),
        ("diabetes", "regression", (442, 10)),
    ],
)
def test_sklearn_datasets(name: str, kind: str, shape: tuple[int, int]) -> None:
    table = build(registry.DATASETS, name)
    assert table.x.shape == shape and table.x.dtype == np.float32 and table.task.kind == kind


def test_transforms_are_fitted_then_applied() -> None:
    x = np.array([[0.0], [2.0], [4.0]], dtype=np.float32)
    standardize = build(registry.TRANSFORMS, "standardize").fit(x)
    assert standardize.transform(np.array([[2.0]]))[0, 0] == pytest.approx(0.0)
    minmax = build(registry.TRANSFORMS, {"type": "minmax", "low": -1, "high": 1}).fit(x)
    assert minmax.transform(np.array([[4.0]]))[0, 0] == pytest.approx(1.0)
    assert build(registry.TRANSFORMS, {"type": "scale", "factor": 0.5}).fit_transform(x)[2, 0] == 2.0
    assert build(registry.TRANSFORMS, {"type": "polynomial", "degree": 3}).fit_transform(np.array([[2.0]])).tolist() == [[2.0, 4.0, 8.0]]
