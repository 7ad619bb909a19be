"""Fixed basis expansions phi(x) in front of a linear head (Nalisnick, Deep Learning notes; Lal, Notes on ML and Neural Networks; Liquet et al., sec. 3.4).

Imported only when a model is built. An expansion computes in its input's dtype, so the
closed-form least-squares model can run it in float64 (degree-300 monomials overflow float32).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn


class FixedBasis(nn.Module):
    """A basis expansion: ``out_features`` columns phi_j(x) from the inputs."""

    out_features: int


class Polynomial(FixedBasis):
    """All monomials of total degree 1..K (with cross terms unless ``interactions`` is off)."""

    def __init__(self, in_features: int, degree: int, interactions: bool) -> None:
        super().__init__()
        if interactions:
            terms = [c for k in range(1, degree + 1) for c in itertools.combinations_with_replacement(range(in_features), k)]
            powers = torch.zeros(len(terms), in_features)
            for row, combo in enumerate(terms):
                for feature in combo:
                    powers[row, feature] += 1
        else:  # x_j^k for each feature separately
            powers = torch.cat([k * torch.eye(in_features) for k in range(1, degree + 1)])
        self.powers: torch.Tensor
        self.register_buffer("powers", powers)
        self.out_features = len(powers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (n, 1, d) ** (terms, d) -> (n, terms, d), multiplied over d
        return (x.unsqueeze(1) ** self.powers.to(x.dtype)).prod(-1)


class RBF(FixedBasis):
    """Gaussian bumps exp(-||x - c||^2 / (2 width^2)) around fixed centres.

    One input: centres evenly spaced on [low, high]; more: drawn uniformly in the box (seeded).
    """

    def __init__(self, in_features: int, centers: int, low: float, high: float, width: float, seed: int) -> None:
        super().__init__()
        if in_features == 1:
            grid = torch.linspace(low, high, centers).unsqueeze(1)
        else:
            generator = torch.Generator().manual_seed(seed)
            grid = low + (high - low) * torch.rand(centers, in_features, generator=generator)
        self.centers: torch.Tensor
        self.register_buffer("centers", grid)
        self.width = width
        self.out_features = centers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distance = torch.cdist(x, self.centers.to(x.dtype)).square()
        return torch.exp(-distance / (2 * self.width**2))


class Fourier(FixedBasis):
    """sin(2 pi k x_j / P) and cos(2 pi k x_j / P), k = 1..K, for each input feature."""

    def __init__(self, in_features: int, terms: int, period: float) -> None:
        super().__init__()
        self.frequencies: torch.Tensor
        self.register_buffer("frequencies", 2 * math.pi * torch.arange(1, terms + 1) / period)
        self.out_features = 2 * terms * in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = (x.unsqueeze(-1) * self.frequencies.to(x.dtype)).flatten(1)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
