"""Loss heads of the classical losses (see :mod:`registry._heads` for the contract).

Binary margin losses read the single score s with labels y in {-1, +1} (Nalisnick, Deep Learning notes);
``predict`` gives a probability-like score whose 0.5 threshold is the sign of s, so the
binary metrics (and their ``threshold``) apply unchanged.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from registry._classical import class_pairs, n_classes_from_pairs
from registry._heads import LossHead


def signed(targets: torch.Tensor) -> torch.Tensor:
    """{0, 1} class labels as {-1, +1}."""
    return 2.0 * targets.float() - 1.0


def margin_loss(kind: str, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example loss of scores against +-1 labels, same shape as ``scores``.

    ``perceptron``: -y s on a mistake of psi(s) = -1 + 2 I[s > 0], else 0, so that s = 0 with
    y = +1 is a mistake as in the rule (Nalisnick, Deep Learning notes); its gradient is -y x on mistakes only.
    """
    if kind == "hinge":
        return torch.relu(1.0 - y * scores)
    if kind == "perceptron":
        mistake = (torch.where(scores > 0, 1.0, -1.0) != y).to(scores.dtype)
        return -mistake * y * scores
    if kind == "mse":
        return (scores - y).square()
    return F.binary_cross_entropy_with_logits(scores, (y > 0).to(scores.dtype), reduction="none")


def _probability(kind: str, scores: torch.Tensor) -> torch.Tensor:
    # The perceptron's output is the hard decision itself (a step, not a score).
    if kind == "perceptron":
        return (scores > 0).to(scores.dtype)
    return torch.sigmoid(scores)


class MarginHead(LossHead):
    """Hinge max(0, 1 - y s) or the perceptron criterion on one score (Nalisnick, Deep Learning notes)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return _probability(self.kind, outputs.squeeze(-1))

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return margin_loss(self.kind, outputs.squeeze(-1), signed(targets)).mean()


class DecomposedHead(LossHead):
    """Independent binary problems on the outputs: one per class (ovr) or per pair (ovo).

    The loss is the sum of each problem's mean binary loss, so each output's parameters get
    exactly the gradient they would get trained alone. One-vs-one trains output (i, j) only
    on rows of classes i and j; prediction is a vote with ties broken by summed confidence
    (scikit-learn's rule), then normalized to class scores that sum to one.
    """

    def __init__(self, kind: str, binary: str) -> None:
        super().__init__()
        self.kind, self.binary = kind, binary

    def _problems(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(+-1 labels, row mask), each shaped like ``outputs``."""
        if self.kind == "ovr":
            labels = signed(F.one_hot(targets, outputs.shape[1]))
            return labels, torch.ones_like(labels)
        pairs = torch.tensor(class_pairs(n_classes_from_pairs(outputs.shape[1])), device=outputs.device)
        first, second = targets.unsqueeze(1) == pairs[:, 0], targets.unsqueeze(1) == pairs[:, 1]
        return signed(first), (first | second).to(outputs.dtype)

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        labels, mask = self._problems(outputs, targets)
        losses = margin_loss(self.binary, outputs, labels) * mask
        return (losses.sum(0) / mask.sum(0).clamp_min(1)).sum()

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        if self.kind == "ovr":
            scores = _probability(self.binary, outputs) + 1e-12
            return scores / scores.sum(1, keepdim=True)
        k = n_classes_from_pairs(outputs.shape[1])
        votes = outputs.new_zeros(len(outputs), k)
        confidence = outputs.new_zeros(len(outputs), k)
        for column, (i, j) in enumerate(class_pairs(k)):
            s = outputs[:, column]
            votes[:, i] += (s > 0).to(s.dtype)
            votes[:, j] += (s <= 0).to(s.dtype)
            confidence[:, i] += s
            confidence[:, j] -= s
        decision = votes + confidence / (3 * (confidence.abs() + 1))
        return torch.softmax(decision * 10, dim=1)


class GaussianNLLHead(LossHead):
    """Heteroskedastic Gaussian NLL: outputs (mean, log variance) per target (Nalisnick, Deep Learning notes)."""

    def __init__(self, eps: float, full: bool) -> None:
        super().__init__()
        self.eps, self.full = eps, full

    def _split(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = outputs.chunk(2, dim=-1)
        return mean.squeeze(-1) if mean.shape[-1] == 1 else mean, log_var.squeeze(-1) if log_var.shape[-1] == 1 else log_var

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return self._split(outputs)[0]

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mean, log_var = self._split(outputs)
        return F.gaussian_nll_loss(mean, targets, log_var.exp(), full=self.full, eps=self.eps)


class PoissonNLLHead(LossHead):
    """Poisson NLL with log-rate outputs, lambda = exp(f(x)) (Nalisnick, Deep Learning notes); predicts the rate."""

    def __init__(self, full: bool) -> None:
        super().__init__()
        self.full = full

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        rate = outputs.exp()
        return rate.squeeze(-1) if rate.shape[-1] == 1 else rate

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_rate = outputs.squeeze(-1) if outputs.shape[-1] == 1 else outputs
        return F.poisson_nll_loss(log_rate, targets, log_input=True, full=self.full)


class KLHead(LossHead):
    """KL(target || softmax(outputs)) for target distributions in the rows of y (Nalisnick, Deep Learning notes)."""

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(outputs, dim=-1)

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.kl_div(torch.log_softmax(outputs, dim=-1), targets, reduction="batchmean")


class TripletHead(LossHead):
    """Triplet loss max(0, d(a, p) - d(a, n) + margin) on embeddings (Liquet et al., sec. 6.6), batch-hard mining:
    each anchor with its farthest same-class and nearest other-class example in the batch."""

    def __init__(self, margin: float, p: float) -> None:
        super().__init__()
        self.margin, self.p = margin, p

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        distance = torch.cdist(outputs, outputs, p=self.p)
        same = targets.unsqueeze(0) == targets.unsqueeze(1)
        positive = distance.masked_fill(~same, float("-inf")).amax(1)
        negative = distance.masked_fill(same, float("inf")).amin(1)
        valid = torch.isfinite(negative) & (same.sum(1) > 1)
        loss = torch.relu(positive - negative + self.margin)
        return loss[valid].mean() if bool(valid.any()) else loss.sum() * 0.0
