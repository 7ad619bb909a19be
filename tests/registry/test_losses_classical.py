"""The classical losses against torch's own modules, scikit-learn and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import hinge_loss

import registry
from tests.registry.test_components import build


def head(value: object) -> torch.nn.Module:
    return build(registry.LOSSES, value)  # type: ignore[return-value]


def test_gaussian_nll_with_learned_variance_matches_torch() -> None:
    out, y = torch.tensor([[0.5, -1.0], [2.0, 0.3]]), torch.tensor([1.0, 1.5])
    expected = torch.nn.GaussianNLLLoss()(out[:, 0], y, out[:, 1].exp())
    assert head("gaussian_nll")(out, y).item() == pytest.approx(expected.item())
    by_hand = (0.5 * (out[:, 1] + (y - out[:, 0]) ** 2 / out[:, 1].exp())).mean()
    assert head("gaussian_nll")(out, y).item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert torch.equal(head("gaussian_nll").predict(out), out[:, 0])


def test_poisson_nll_matches_torch_and_predicts_the_rate() -> None:
    out, y = torch.tensor([[0.2], [1.0], [-0.5]]), torch.tensor([1.0, 3.0, 0.0])
    expected = torch.nn.PoissonNLLLoss(log_input=True)(out.squeeze(1), y)
    assert head("poisson_nll")(out, y).item() == pytest.approx(expected.item())
    assert torch.allclose(head("poisson_nll").predict(out), out.squeeze(1).exp())


def test_hinge_matches_scikit_learn() -> None:
    scores, y = np.array([0.3, -2.0, 1.5, -0.2]), np.array([1, 0, 0, 1])
    ours = head("hinge")(torch.tensor(scores).unsqueeze(1), torch.tensor(y)).item()
    assert ours == pytest.approx(hinge_loss(2 * y - 1, scores))


def test_perceptron_criterion_is_minus_y_s_on_mistakes() -> None:
    scores, y = torch.tensor([[0.3], [-2.0], [1.5], [-0.2]]), torch.tensor([1, 0, 0, 1])
    assert head("perceptron")(scores, y).item() == pytest.approx((1.5 + 0.2) / 4)
    assert head("perceptron").predict(scores).tolist() == [1.0, 0.0, 1.0, 0.0]


def test_one_vs_rest_is_the_sum_of_independent_binary_losses() -> None:
    out, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    expected = sum(torch.nn.functional.binary_cross_entropy_with_logits(out[:, k], (y == k).float()) for k in range(3))
    ovr = head("one_vs_rest")
    assert ovr(out, y).item() == pytest.approx(float(expected), rel=1e-6)
    assert torch.equal(ovr.predict(out).argmax(1), out.argmax(1))


def test_one_vs_one_trains_each_pair_on_its_rows_and_votes() -> None:
    out, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    expected = 0.0
    for column, (i, j) in enumerate([(0, 1), (0, 2), (1, 2)]):
        rows = (y == i) | (y == j)
        expected += torch.nn.functional.binary_cross_entropy_with_logits(out[rows, column], (y[rows] == i).float())
    ovo = head("one_vs_one")
    assert ovo(out, y).item() == pytest.approx(float(expected), rel=1e-6)
    # Pair scores: 0 beats 1, 2 beats 0, 1 beats 2 -> a tie broken by summed confidence.
    votes = torch.tensor([[5.0, 5.0, 5.0], [2.0, 2.0, -3.0], [-1.0, 1.0, 0.1]])
    # row 0: 0>1, 0>2, 1>2 -> class 0; row 1: 0>1, 0>2, 2>1 -> class 0; row 2: 1>0, 0>2, 1>2 -> 1
    assert ovo.predict(votes).argmax(1).tolist() == [0, 0, 1]
    cycle = torch.tensor([[1.0, -3.0, 1.0]])  # 0>1, 2>0, 1>2: one vote each; confidence favours 2
    assert ovo.predict(cycle).argmax(1).tolist() == [2]


def test_kl_matches_torch_and_the_closed_form() -> None:
    out = torch.randn(4, 3)
    q = torch.softmax(torch.randn(4, 3), 1)
    p = torch.softmax(out, 1)
    expected = (q * (q / p).log()).sum(1).mean()
    assert head("kl")(out, q).item() == pytest.approx(expected.item(), rel=1e-5)


def test_triplet_is_torchs_triplet_margin_loss_on_batch_hard_triplets() -> None:
    torch.manual_seed(0)
    emb, y = torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    distance = torch.cdist(emb, emb)
    positives, negatives = [], []
    for a in range(8):
        same = [i for i in range(8) if y[i] == y[a]]
        other = [i for i in range(8) if y[i] != y[a]]
        positives.append(max(same, key=lambda i: distance[a, i]))
        negatives.append(min(other, key=lambda i: distance[a, i]))
    expected = torch.nn.TripletMarginLoss(margin=0.5, eps=0)(emb, emb[positives], emb[negatives])
    ours = head({"type": "triplet", "margin": 0.5})(emb, y)
    assert ours.item() == pytest.approx(expected.item(), rel=1e-4)
