"""torch modules behind the model builders. Imported only when a model is built."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class MLP(nn.Module):
    """Fully connected layers ``Linear -> [norm] -> activation -> [dropout]`` then a linear head.

    With ``hidden=[]`` this is a linear model. The head is a plain linear layer: the output
    link (sigmoid/softmax) belongs to the loss, which keeps the numerics stable.
    """

    def __init__(
        self,
        in_features: int,
        hidden: list[int],
        out_features: int,
        activations: list[Callable[[], nn.Module]],
        dropout: float = 0.0,
        norm: str = "none",
        bias: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for size, make_activation in zip(hidden, activations):
            layers.append(nn.Linear(width, size, bias=bias))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(size))
            elif norm == "layer":
                layers.append(nn.LayerNorm(size))
            layers.append(make_activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def flat_size(shape: tuple[int, ...]) -> int:
    """Features of one example once flattened: (1, 28, 28) -> 784."""
    size = 1
    for dim in shape:
        size *= dim
    return size


def initialize(
    model: nn.Module,
    weight_init: Callable[[torch.Tensor], object] | None,
    bias: str | float,
) -> None:
    """Apply a weight scheme and a bias rule to every linear and conv layer of ``model``."""
    for module in model.modules():
        if not isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            continue
        if weight_init is not None:
            weight_init(module.weight)
        if module.bias is None or bias == "default":
            continue
        with torch.no_grad():
            module.bias.fill_(0.0 if bias == "zeros" else float(bias))
