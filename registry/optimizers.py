"""Optimizers a spec can name under ``optimizer:``. Defaults are PyTorch's, stated explicitly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from pydantic import Field, model_validator

from registry._registry import Params, Registry

if TYPE_CHECKING:
    import torch

OPTIMIZERS: Registry = Registry("optimizer")


class SGDParams(Params):
    lr: float = Field(0.01, gt=0, description="Step size alpha (000:251).")
    momentum: float = Field(0.0, ge=0, lt=1, description="Momentum beta; 0 is plain SGD.")
    nesterov: bool = Field(False, description="Nesterov's look-ahead momentum (needs momentum > 0).")
    dampening: float = Field(0.0, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0, description="Coupled decay; prefer an explicit regularizer.")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> "SGDParams":
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("`nesterov: true` needs `momentum > 0` and `dampening: 0`")
        return self


@OPTIMIZERS.register("sgd", params=SGDParams)
def sgd(params: SGDParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """Mini-batch stochastic gradient descent, with optional (Nesterov) momentum (004:322-336)."""
    import torch

    return torch.optim.SGD(parameters, **params.model_dump(exclude={"type"}))


class AdamParams(Params):
    lr: float = Field(1e-3, gt=0, description="Step size.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Decay rates of the moment estimates.")
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    amsgrad: bool = False

    @model_validator(mode="after")
    def _betas_in_unit_interval(self) -> "AdamParams":
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"each of `betas` must lie in [0, 1), got {list(self.betas)}")
        return self


class AdamWParams(AdamParams):
    weight_decay: float = Field(0.01, ge=0, description="Decoupled weight decay (Loshchilov & Hutter).")


@OPTIMIZERS.register("adam", params=AdamParams)
def adam(params: AdamParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba 2015), PyTorch defaults lr=1e-3, betas=(0.9, 0.999), eps=1e-8."""
    import torch

    return torch.optim.Adam(parameters, **params.model_dump(exclude={"type"}))


@OPTIMIZERS.register("adamw", params=AdamWParams)
def adamw(params: AdamWParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """Adam with decoupled weight decay (003 ch. 4)."""
    import torch

    return torch.optim.AdamW(parameters, **params.model_dump(exclude={"type"}))


class RMSpropParams(Params):
    lr: float = Field(1e-2, gt=0)
    alpha: float = Field(0.99, gt=0, lt=1, description="Decay of the squared-gradient average (gamma).")
    eps: float = Field(1e-8, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)


@OPTIMIZERS.register("rmsprop", params=RMSpropParams)
def rmsprop(params: RMSpropParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """RMSprop (Hinton's lecture 6e; 003 ch. 4)."""
    import torch

    return torch.optim.RMSprop(parameters, **params.model_dump(exclude={"type"}))


class AdagradParams(Params):
    lr: float = Field(1e-2, gt=0)
    eps: float = Field(1e-10, gt=0)
    weight_decay: float = Field(0.0, ge=0)


@OPTIMIZERS.register("adagrad", params=AdagradParams)
def adagrad(params: AdagradParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """Adagrad (Duchi et al. 2011; 003 ch. 4)."""
    import torch

    return torch.optim.Adagrad(parameters, **params.model_dump(exclude={"type"}))
