"""Explicit penalties added to the loss: l~ = l + lambda R(w) (Nalisnick, Deep Learning notes; Lal, Notes on ML and Neural Networks).

Written out rather than left to an optimizer's ``weight_decay`` because that also decays
biases and equals a lambda = wd/2 L2 penalty; both sources exclude the intercept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import Field

from registry._registry import Params, Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

Penalty = Callable[["nn.Module"], "torch.Tensor"]
REGULARIZERS: Registry = Registry("regularizer")


class _Bias(Params):
    exclude_bias: bool = Field(True, description="Leave biases (and norm parameters) unpenalized, as both sources do.")


class StrengthParams(_Bias):
    strength: float = Field(
        ..., ge=0, description="lambda, the penalty's weight; O(1e-4) is typical (Lal, Notes on ML and Neural Networks)."
    )


class ElasticNetParams(_Bias):
    l1: float = Field(0.0, ge=0, description="lambda_1, weight of sum |w|.")
    l2: float = Field(0.0, ge=0, description="lambda_2, weight of sum w^2.")


def _penalized(model: nn.Module, exclude_bias: bool) -> list[torch.Tensor]:
    # Biases and normalization scales are 1-d; weights of linear and conv layers are not.
    return [p for p in model.parameters() if p.requires_grad and (p.ndim > 1 or not exclude_bias)]


def _penalty(l1: float, l2: float, exclude_bias: bool) -> Penalty:
    def penalty(model: nn.Module) -> torch.Tensor:
        params = _penalized(model, exclude_bias)
        total = params[0].new_zeros(())
        for p in params:
            if l1:
                total = total + l1 * p.abs().sum()
            if l2:
                total = total + l2 * p.square().sum()
        return total

    return penalty


@REGULARIZERS.register("l1", params=StrengthParams)
def l1(params: StrengthParams) -> Penalty:
    """Lasso: lambda sum |w| (Lal, Notes on ML and Neural Networks)."""
    return _penalty(params.strength, 0.0, params.exclude_bias)


@REGULARIZERS.register("l2", params=StrengthParams)
def l2(params: StrengthParams) -> Penalty:
    """Ridge: lambda sum w^2 (Nalisnick, Deep Learning notes; Lal, Notes on ML and Neural Networks)."""
    return _penalty(0.0, params.strength, params.exclude_bias)


@REGULARIZERS.register("elastic_net", params=ElasticNetParams)
def elastic_net(params: ElasticNetParams) -> Penalty:
    """Elastic net: lambda_1 sum |w| + lambda_2 sum w^2 (Lal, Notes on ML and Neural Networks). ``{l1:, l2:}`` without a type means this."""
    return _penalty(params.l1, params.l2, params.exclude_bias)


class Constraint:
    """A regularizer that acts on the weights around each optimizer step instead of adding
    to the loss: ``before_step`` (decoupled decay) and ``after_step`` (max-norm) are called
    by the training loop with the step's learning rate; as a penalty it adds nothing."""

    def __init__(self, value: float, exclude_bias: bool) -> None:
        self.value, self.exclude_bias = value, exclude_bias

    def __call__(self, model: nn.Module) -> torch.Tensor:
        return next(model.parameters()).new_zeros(())

    def before_step(self, model: nn.Module, lr: float) -> None:
        """Called after backward, before ``optimizer.step()``."""

    def after_step(self, model: nn.Module, lr: float) -> None:
        """Called right after ``optimizer.step()``."""


class _DecoupledDecay(Constraint):
    """``value``: the decay rate lambda."""

    def before_step(self, model: nn.Module, lr: float) -> None:
        import torch

        with torch.no_grad():
            for p in _penalized(model, self.exclude_bias):
                p.mul_(1 - lr * self.value)


@REGULARIZERS.register("decoupled_weight_decay", params=StrengthParams, constraint=True)
def decoupled_weight_decay(params: StrengthParams) -> Penalty:
    """w <- w - lr lambda w before each step, apart from the gradient (Loshchilov & Hutter 2019; Liquet et al., ch. 4).

    With Adam and ``exclude_bias: false`` this is exactly AdamW's decay; unlike an L2 penalty it
    is not rescaled by adaptive optimizers.
    """
    return _DecoupledDecay(params.strength, params.exclude_bias)


class MaxNormParams(_Bias):
    max_norm: float = Field(..., gt=0, description="c: each unit's incoming weight vector is kept at ||w|| <= c.")


class _MaxNorm(Constraint):
    """``value``: the largest norm c of a unit's incoming weights."""

    def after_step(self, model: nn.Module, lr: float) -> None:
        import torch

        with torch.no_grad():
            for p in _penalized(model, self.exclude_bias):
                if p.ndim > 1:  # one row per output unit (linear) or filter (conv)
                    p.copy_(torch.renorm(p, 2, 0, self.value))


@REGULARIZERS.register("max_norm", params=MaxNormParams, constraint=True)
def max_norm(params: MaxNormParams) -> Penalty:
    """Max-norm constraint: after each step, rescale each unit's incoming weights to norm <= c (Srivastava et al. 2014)."""
    return _MaxNorm(params.max_norm, params.exclude_bias)
