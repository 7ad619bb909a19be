"""Classical models against closed forms, scikit-learn and the textbook perceptron rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import PolynomialFeatures

import registry
from tests.registry.test_components import build


def model(value: object, in_shape: tuple[int, ...], out: int) -> torch.nn.Module:
    return build(registry.MODELS, value, in_shape, out)  # type: ignore[return-value]


def test_polynomial_basis_matches_scikit_learn() -> None:
    x = torch.randn(7, 3, dtype=torch.float64)
    glm = model({"type": "glm", "family": "normal", "features": {"type": "polynomial", "degree": 3}}, (3,), 1)
    ours = glm.basis(x).numpy()
    theirs = PolynomialFeatures(3, include_bias=False).fit_transform(x.numpy())
    assert ours.shape == theirs.shape == (7, 19)
    assert np.allclose(np.sort(ours, axis=1), np.sort(theirs, axis=1))
    powers_only = model(
        {"type": "glm", "family": "normal", "features": {"type": "polynomial", "degree": 2, "interactions": False}}, (3,), 1
    )
    assert torch.allclose(powers_only.basis(x), torch.cat([x, x**2], dim=1))


def test_rbf_and_fourier_bases_are_their_closed_forms() -> None:
    x = torch.linspace(-1, 1, 5).unsqueeze(1)
    rbf = model({"type": "glm", "family": "normal", "features": {"type": "rbf", "centers": 3, "width": 0.5}}, (1,), 1).basis
    centres = torch.tensor([-1.0, 0.0, 1.0])
    assert torch.allclose(rbf(x), torch.exp(-(x - centres).square() / (2 * 0.25)))
    fourier = model({"type": "glm", "family": "normal", "features": {"type": "fourier", "terms": 2, "period": 2.0}}, (1,), 1).basis
    k = torch.tensor([1.0, 2.0])
    assert torch.allclose(fourier(x), torch.cat([torch.sin(torch.pi * k * x), torch.cos(torch.pi * k * x)], 1), atol=1e-6)


def test_glm_is_a_linear_head_on_the_basis() -> None:
    glm = model({"type": "glm", "family": "poisson", "features": {"type": "polynomial", "degree": 2}}, (2,), 1)
    x = torch.randn(4, 2)
    assert torch.allclose(glm(x), glm.head(glm.basis(x)))


@pytest.mark.parametrize("solver", ["lstsq", "pinv"])
def test_least_squares_equals_scikit_learn_ols(solver: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (60, 1))
    y = 0.5 * x[:, 0] ** 3 - x[:, 0] + rng.normal(size=60)
    ls = model({"type": "least_squares", "features": {"type": "polynomial", "degree": 3}, "solver": solver}, (1,), 1)
    ls.fit_closed_form(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    reference = LinearRegression().fit(PolynomialFeatures(3, include_bias=False).fit_transform(x), y)
    weights = ls.weight[:, 0].detach().numpy()
    assert weights[0] == pytest.approx(reference.intercept_, rel=1e-4)
    assert np.allclose(weights[1:], reference.coef_, rtol=1e-4)
    out = ls(torch.tensor(x, dtype=torch.float32))
    assert out.dtype == torch.float32 and out.shape == (60, 1)


def test_least_squares_classifier_fits_plus_minus_one_targets() -> None:
    """003 2.3: one-vs-rest least squares is K regressions on +-1 labels; argmax decides."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 4))
    y = rng.integers(0, 3, 90)
    ls = model("least_squares", (4,), 3)
    ls.fit_closed_form(torch.tensor(x, dtype=torch.float32), torch.tensor(y))
    design = np.hstack([np.ones((90, 1)), x])
    expected = np.linalg.pinv(design) @ (2 * np.eye(3)[y] - 1)
    assert np.allclose(ls.weight.detach().numpy(), expected, atol=1e-5)


def test_ovo_of_least_squares_fits_each_pair_on_its_rows() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 2)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    ovo = model({"type": "ovo", "base": "least_squares"}, (2,), 3)
    assert len(ovo.members) == 3 and hasattr(ovo, "fit_closed_form")
    ovo.fit_closed_form(torch.tensor(x), torch.tensor(y))
    rows = (y == 0) | (y == 2)  # pair (0, 2) is the second output
    design = np.hstack([np.ones((rows.sum(), 1)), x[rows]])
    expected = np.linalg.pinv(design) @ np.where(y[rows] == 0, 1.0, -1.0)
    assert np.allclose(ovo.members[1].weight[:, 0].detach().numpy(), expected, atol=1e-5)
    assert ovo(torch.tensor(x)).shape == (60, 3)


def test_ovr_members_are_independent_binary_models() -> None:
    torch.manual_seed(0)
    ovr = model({"type": "ovr", "base": {"type": "mlp", "hidden": [3]}}, (4,), 5)
    assert len(ovr.members) == 5 and not hasattr(ovr, "fit_closed_form")
    x = torch.randn(6, 4)
    assert torch.allclose(ovr(x)[:, 2:3], ovr.members[2](x))


def test_ovo_of_logistic_members_trains_like_separate_binary_models() -> None:
    # The affine fast path (one map, a row per member) against K(K-1)/2 separate logistic models.
    from registry._classical import Decomposition

    torch.manual_seed(0)
    fast = model({"type": "ovo", "base": "logistic"}, (4,), 3)
    assert isinstance(fast, torch.nn.Linear) and fast.weight.shape == (3, 4)
    separate = Decomposition("ovo", lambda: torch.nn.Linear(4, 1), 3)
    for k, member in enumerate(separate.members):
        member.weight.data.copy_(fast.weight.data[k : k + 1])
        member.bias.data.copy_(fast.bias.data[k : k + 1])
    head = registry.LOSSES.get("one_vs_one").builder(
        TypeAdapter(registry.LOSSES.field_type()).validate_python({"type": "one_vs_one", "binary": "bce"})
    )
    x, y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    optimizers = [torch.optim.Adam(m.parameters(), lr=0.1) for m in (fast, separate)]
    for _ in range(5):
        for net, opt in zip((fast, separate), optimizers):
            opt.zero_grad()
            head(net(x), y).backward()
            opt.step()
    assert torch.allclose(fast(x), separate(x), atol=1e-6)
    assert torch.equal(head.predict(fast(x)).argmax(1), head.predict(separate(x)).argmax(1))


def test_decomposition_base_must_be_a_model() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="logistc"):
        model({"type": "ovr", "base": "logistc"}, (2,), 3)


def _textbook_perceptron(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: float, order: list[int]) -> tuple[torch.Tensor, float, int]:
    """000:293-297: psi(z) = -1 + 2 I[z > 0]; on a mistake w += y_r x_r, b += y_r."""
    mistakes = 0
    for r in order:
        label = 2 * float(y[r]) - 1
        prediction = 1.0 if float(w @ x[r] + b) > 0 else -1.0
        if prediction != label:
            w, b, mistakes = w + label * x[r], b + label, mistakes + 1
    return w, b, mistakes


def test_perceptron_criterion_with_sgd_lr_1_batch_1_is_the_perceptron_rule() -> None:
    torch.manual_seed(0)
    net = model("perceptron", (2,), 1)
    head = build(registry.LOSSES, "perceptron")
    optimizer = build(registry.OPTIMIZERS, {"type": "sgd", "lr": 1.0}, net.parameters())
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([1, 1, 1, 0])  # NAND
    linear = net[1]
    w, b = linear.weight[0].detach().clone(), float(linear.bias[0].detach())
    order = [int(i) for i in torch.randint(0, 4, (40,))]
    for r in order:
        optimizer.zero_grad()
        head(net(x[r : r + 1]), y[r : r + 1]).backward()
        optimizer.step()
    w, b, _ = _textbook_perceptron(x, y, w, b, order)
    assert torch.allclose(linear.weight[0], w) and float(linear.bias[0].detach()) == pytest.approx(b)


def test_zero_score_is_a_mistake_for_a_positive_label() -> None:
    head = build(registry.LOSSES, "perceptron")
    scores = torch.zeros(2, 1, requires_grad=True)
    head(scores, torch.tensor([1, 0])).backward()
    assert scores.grad.squeeze(1).tolist() == [-0.5, 0.0]  # psi(0) = -1: wrong for y=+1, right for y=-1


def test_perceptron_rule_converges_on_nand_and_never_on_xor() -> None:
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    for labels, separable in (([1, 1, 1, 0], True), ([0, 1, 1, 0], False)):
        y = torch.tensor(labels)
        w, b = torch.zeros(2), 0.0
        mistakes = [0] * 100
        for epoch in range(100):
            w, b, mistakes[epoch] = _textbook_perceptron(x, y, w, b, [0, 1, 2, 3])
        assert (mistakes[-1] == 0) is separable  # XOR: a mistake in every epoch, forever
        correct = ((x @ w + b > 0).long() == y).sum().item()
        assert correct == 4 if separable else correct <= 3
