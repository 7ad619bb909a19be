"""Loss heads: the loss of raw model outputs against targets, and the predictions metrics read.

A head owns the output link (sigmoid, softmax, identity), so models emit raw scores and the
loss uses the numerically stable fused forms (``*_with_logits``, ``cross_entropy``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class LossHead(nn.Module):
    """Base: ``forward(outputs, targets) -> scalar``, ``predict(outputs) -> metric input``."""

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class RegressionHead(LossHead):
    """Identity link; ``reduction``/``scale`` cover the 1/N, 1/2N and sum forms of Lal, Notes on ML and Neural Networks."""

    def __init__(self, kind: str, reduction: str, scale: float, delta: float = 1.0) -> None:
        super().__init__()
        self.kind, self.reduction, self.scale, self.delta = kind, reduction, scale, delta

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.squeeze(-1) if outputs.shape[-1] == 1 else outputs

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        prediction = self.predict(outputs)
        if self.kind == "mse":
            loss = F.mse_loss(prediction, targets, reduction=self.reduction)
        elif self.kind == "mae":
            loss = F.l1_loss(prediction, targets, reduction=self.reduction)
        else:
            loss = F.huber_loss(prediction, targets, reduction=self.reduction, delta=self.delta)
        return self.scale * loss


class BinaryHead(LossHead):
    """Sigmoid link and binary cross-entropy on the single logit (Nalisnick, Deep Learning notes)."""

    def __init__(self, pos_weight: float | None) -> None:
        super().__init__()
        self.pos_weight: torch.Tensor | None
        self.register_buffer("pos_weight", None if pos_weight is None else torch.tensor(pos_weight))

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(outputs.squeeze(-1))

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(outputs.squeeze(-1), targets.to(outputs.dtype), pos_weight=self.pos_weight)


class CategoricalHead(LossHead):
    """Softmax link and categorical cross-entropy (Nalisnick, Deep Learning notes), optional smoothing/weights."""

    def __init__(self, label_smoothing: float, class_weights: list[float] | None) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing
        weights = None if class_weights is None else torch.tensor(class_weights)
        self.class_weights: torch.Tensor | None
        self.register_buffer("class_weights", weights)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(outputs, dim=-1)

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets, weight=self.class_weights, label_smoothing=self.label_smoothing)
