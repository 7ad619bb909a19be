"""torch modules behind the model builders. Imported only when a model is built."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class MLP(nn.Module):
    """Fully connected layers ``Linear -> [norm] -> activation -> [dropout]`` then a linear head.

    With ``hidden=[]`` this is a linear model. The head is a plain linear layer: the output
    link (sigmoid/softmax) belongs to the loss, which keeps the numerics stable. With
    ``skip`` each hidden layer after the first adds its input, h_l = phi(W h_{l-1}) + h_{l-1}
    (Nalisnick, Deep Learning notes), through a bias-free projection U^T h_{l-1} where the width changes.
    """

    def __init__(
        self,
        in_features: int,
        hidden: list[int],
        out_features: int,
        activations: list[Callable[[], nn.Module]],
        *,
        dropout: float = 0.0,
        norm: str = "none",
        bias: bool = True,
        skip: str = "none",
        groups: int = 1,
        bn_stats: str = "running",
    ) -> None:
        super().__init__()
        blocks: list[list[nn.Module]] = []
        widths = [in_features, *hidden]
        for width, size, make_activation in zip(widths, hidden, activations):
            layers: list[nn.Module] = [nn.Linear(width, size, bias=bias)]
            if norm != "none":
                layers.append(norm_layer(norm, size, 1, groups, bn_stats))
            layers.append(make_activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            blocks.append(layers)
        if skip == "none":
            self.body = nn.Sequential(*[layer for block in blocks for layer in block])
        else:
            # The first layer changes the input's width: it has no skip of its own.
            self.body = nn.Sequential(
                *[
                    nn.Sequential(*block) if i == 0 else Residual(nn.Sequential(*block), _projection(widths[i], widths[i + 1], skip))
                    for i, block in enumerate(blocks)
                ]
            )
        self.head = nn.Linear(widths[-1], out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _projection(width_in: int, width_out: int, skip: str) -> nn.Module:
    if width_in == width_out:
        return nn.Identity()
    if skip == "identity":
        raise ValueError(f"an identity skip needs equal widths, but a layer goes from {width_in} to {width_out}; use skip: projection")
    return nn.Linear(width_in, width_out, bias=False)


class Residual(nn.Module):
    """``body(x) + shortcut(x)``, then an optional activation: a skip connection (Nalisnick, Deep Learning notes; Liquet et al., sec. 6.5)."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None, after: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.after = after if after is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after(self.body(x) + self.shortcut(x))


class GlobalPool(nn.Module):
    """Mean or max of each channel over all positions, (n, C, H, W) -> (n, C).

    A reduction rather than AdaptiveAvgPool2d, whose CUDA backward is nondeterministic
    (it would fail a ``reproducibility: bitwise`` run on a GPU).
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) if self.kind == "mean" else x.amax(dim=(2, 3))


def norm_layer(kind: str, channels: int, spatial_dims: int, groups: int = 1, bn_stats: str = "running") -> nn.Module:
    """Batch, layer or group normalization over ``channels`` features (Liquet et al., sec. 5.6).

    ``bn_stats`` chooses what batch norm uses at test time: ``running`` averages (PyTorch's
    momentum 0.1) or the ``last_batch`` of training alone (momentum 1).
    """
    if kind == "batch":
        momentum = 1.0 if bn_stats == "last_batch" else 0.1
        return (nn.BatchNorm1d if spatial_dims <= 1 else nn.BatchNorm2d)(channels, momentum=momentum)
    if kind == "layer":
        return nn.LayerNorm(channels) if spatial_dims <= 1 else nn.GroupNorm(1, channels)
    if kind == "group":
        if channels % groups:
            raise ValueError(f"group norm needs channels divisible by groups, but {channels} % {groups} != 0")
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"unknown norm {kind!r}")


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
