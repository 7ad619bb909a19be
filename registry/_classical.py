"""torch modules behind the classical models: a basis + linear head, closed-form least squares,
and the one-vs-rest / one-vs-one decompositions. Imported only when a model is built.

A model with a ``fit_closed_form(x, y)`` method is solved once on the training part by the
training loop instead of being stepped by the optimizer (runner/training/loop.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from registry._features import FixedBasis


def signed_targets(y: torch.Tensor, outputs: int) -> torch.Tensor:
    """Least-squares targets: values as they are; classes as +-1 (one column per class for K > 1, Liquet et al., sec. 2.3)."""
    if y.dtype.is_floating_point:
        return y if y.ndim == 2 else y.unsqueeze(1)
    if outputs == 1:
        return (2.0 * y - 1.0).unsqueeze(1)
    return 2.0 * nn.functional.one_hot(y, outputs) - 1.0


class Expanded(nn.Module):
    """``head(basis(flatten(x)))``: a GLM's linear predictor over fixed features."""

    def __init__(self, basis: nn.Module | None, head: nn.Linear) -> None:
        super().__init__()
        self.basis, self.head = basis, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return self.head(x if self.basis is None else self.basis(x))


class LeastSquares(nn.Module):
    """w* = argmin ||Phi w - t||^2 by lstsq or the pseudo-inverse, in float64 (Lal, Notes on ML and Neural Networks; Liquet et al., sec. 2.2).

    Columns are scaled to unit max-abs before solving (equilibration): the solution is the
    same, but a degree-300 monomial basis stays solvable (Lal's notes report 1e12 weights for it).
    """

    def __init__(self, basis: FixedBasis | None, in_features: int, out_features: int, bias: bool, solver: str) -> None:
        super().__init__()
        self.basis, self.bias, self.solver = basis, bias, solver
        width = (in_features if basis is None else basis.out_features) + int(bias)
        self.weight = nn.Parameter(torch.zeros(width, out_features, dtype=torch.float64))

    def design(self, x: torch.Tensor) -> torch.Tensor:
        """Phi: the basis of x in float64, with a leading column of ones for the intercept."""
        x = x.flatten(1).to(torch.float64)
        phi = x if self.basis is None else self.basis(x)
        return torch.cat([torch.ones_like(phi[:, :1]), phi], dim=1) if self.bias else phi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.design(x) @ self.weight).to(x.dtype)

    @torch.no_grad()
    def fit_closed_form(self, x: torch.Tensor, y: torch.Tensor) -> None:
        phi = self.design(x)
        targets = signed_targets(y, self.weight.shape[1]).to(torch.float64)
        # Columns scaled to [-1, 1] for the solver; an all-zero column (a border pixel that is
        # never on) keeps scale 1, so its zero weight is not divided by a denormal into inf.
        largest = phi.abs().amax(0)
        scale = torch.where(largest > 0, largest, torch.ones_like(largest))
        if self.solver == "pinv":
            solution = torch.linalg.pinv(phi / scale) @ targets
        else:  # gelsd: SVD-based, minimum norm when rank-deficient (CPU); gels on CUDA
            driver = "gelsd" if phi.device.type == "cpu" else None
            solution = torch.linalg.lstsq(phi / scale, targets, driver=driver).solution
        self.weight.copy_(solution / scale.unsqueeze(1))


def n_classes_from_pairs(pairs: int) -> int:
    """K from K(K-1)/2."""
    k = 2
    while k * (k - 1) // 2 < pairs:
        k += 1
    if k * (k - 1) // 2 != pairs:
        raise ValueError(f"{pairs} outputs is not K(K-1)/2 for any K")
    return k


def class_pairs(n_classes: int) -> list[tuple[int, int]]:
    """The one-vs-one problems (i, j), i < j, in the order of the outputs."""
    return list(itertools.combinations(range(n_classes), 2))


class Decomposition(nn.Module):
    """K (one-vs-rest) or K(K-1)/2 (one-vs-one) independent binary models, one output each (Liquet et al., sec. 2.3, 3.2)."""

    def __init__(self, kind: str, make_binary: Callable[[], nn.Module], outputs: int) -> None:
        super().__init__()
        self.kind = kind
        self.n_classes = outputs if kind == "ovr" else n_classes_from_pairs(outputs)
        self.members = nn.ModuleList(make_binary() for _ in range(outputs))
        if all(hasattr(m, "fit_closed_form") for m in self.members):
            self.fit_closed_form = self._fit_members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([member(x).reshape(len(x), 1) for member in self.members], dim=1)

    @torch.no_grad()
    def _fit_members(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.kind == "ovr":
            for k, member in enumerate(self.members):
                member.fit_closed_form(x, (y == k).long())  # type: ignore[operator]
            return
        for (i, j), member in zip(class_pairs(self.n_classes), self.members):
            rows = (y == i) | (y == j)
            member.fit_closed_form(x[rows], (y[rows] == i).long())  # type: ignore[operator]
