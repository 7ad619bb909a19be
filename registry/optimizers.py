"""Optimizers a spec can name under ``optimizer:``. Defaults are PyTorch's, stated explicitly."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from registry._registry import Params, Registry

if TYPE_CHECKING:
    import torch

OPTIMIZERS: Registry = Registry("optimizer")


def _fused_if_possible(
    optimizer: type, parameters: Iterable[Any], devices: tuple[str, ...] = ("cpu", "cuda"), **options: Any
) -> torch.optim.Optimizer:
    """``optimizer`` with PyTorch's fused kernel when it has one for these parameters (floating
    point, on one of ``devices``), else its default implementation. Fused, a step is one kernel
    per tensor instead of a dozen elementwise ops (Adam on a small MLP on CPU: 38 us a step
    instead of 132); the update is the same arithmetic, up to rounding. PyTorch checks the
    devices only at the first step, so they are checked here."""
    import torch

    parameters = list(parameters)
    fused = all(isinstance(p, torch.Tensor) and p.device.type in devices and torch.is_floating_point(p) for p in parameters)
    return optimizer(parameters, **options, fused=True) if fused else optimizer(parameters, **options)


class SGDParams(Params):
    lr: float = Field(0.01, gt=0, description="Step size alpha (Nalisnick, Deep Learning notes).")
    momentum: float = Field(0.0, ge=0, lt=1, description="Momentum beta; 0 is plain SGD.")
    nesterov: bool = Field(False, description="Nesterov's look-ahead momentum (needs momentum > 0).")
    dampening: float = Field(0.0, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0, description="Coupled decay; prefer an explicit regularizer.")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGDParams:
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("`nesterov: true` needs `momentum > 0` and `dampening: 0`")
        return self


@OPTIMIZERS.register("sgd", params=SGDParams)
def sgd(params: SGDParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """Mini-batch stochastic gradient descent, with optional (Nesterov) momentum (Lal, Notes on ML and Neural Networks)."""
    import torch

    return _fused_if_possible(torch.optim.SGD, parameters, **params.model_dump(exclude={"type"}))


class AdamParams(Params):
    lr: float = Field(1e-3, gt=0, description="Step size.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Decay rates of the moment estimates.")
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    amsgrad: bool = False

    @model_validator(mode="after")
    def _betas_in_unit_interval(self) -> AdamParams:
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"each of `betas` must lie in [0, 1), got {list(self.betas)}")
        return self


class AdamWParams(AdamParams):
    weight_decay: float = Field(0.01, ge=0, description="Decoupled weight decay (Loshchilov & Hutter).")


@OPTIMIZERS.register("adam", params=AdamParams)
def adam(params: AdamParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba 2015), PyTorch defaults lr=1e-3, betas=(0.9, 0.999), eps=1e-8."""
    import torch

    return _fused_if_possible(torch.optim.Adam, parameters, **params.model_dump(exclude={"type"}))


@OPTIMIZERS.register("adamw", params=AdamWParams)
def adamw(params: AdamWParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """Adam with decoupled weight decay (Liquet et al., ch. 4)."""
    import torch

    return _fused_if_possible(torch.optim.AdamW, parameters, **params.model_dump(exclude={"type"}))


class RMSpropParams(Params):
    lr: float = Field(1e-2, gt=0)
    alpha: float = Field(0.99, gt=0, lt=1, description="Decay of the squared-gradient average (gamma).")
    eps: float = Field(1e-8, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)


@OPTIMIZERS.register("rmsprop", params=RMSpropParams)
def rmsprop(params: RMSpropParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """RMSprop (Hinton's lecture 6e; Liquet et al., ch. 4)."""
    import torch

    return torch.optim.RMSprop(parameters, **params.model_dump(exclude={"type"}))


class AdagradParams(Params):
    lr: float = Field(1e-2, gt=0)
    eps: float = Field(1e-10, gt=0)
    weight_decay: float = Field(0.0, ge=0)


@OPTIMIZERS.register("adagrad", params=AdagradParams)
def adagrad(params: AdagradParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """Adagrad (Duchi et al. 2011; Liquet et al., ch. 4)."""
    import torch

    # PyTorch's fused Adagrad runs on CPU only.
    return _fused_if_possible(torch.optim.Adagrad, parameters, ("cpu",), **params.model_dump(exclude={"type"}))


class GDParams(Params):
    lr: float = Field(0.01, gt=0, description="Step size alpha (Nalisnick, Deep Learning notes; Lal, Notes on ML and Neural Networks).")


@OPTIMIZERS.register("gd", params=GDParams, full_batch=True)
def gd(params: GDParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """Full-batch gradient descent z <- z - alpha grad (Nalisnick, Deep Learning notes); needs ``batch_size: full``."""
    import torch

    return _fused_if_possible(torch.optim.SGD, parameters, lr=params.lr)


class MomentumParams(Params):
    lr: float = Field(0.01, gt=0, description="Step size.")
    momentum: float = Field(0.9, gt=0, lt=1, description="beta, the decay of the velocity (Liquet et al., ch. 4).")
    weight_decay: float = Field(0.0, ge=0, description="Coupled decay; prefer an explicit regularizer.")


@OPTIMIZERS.register("momentum", params=MomentumParams)
def momentum(params: MomentumParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """Heavy-ball momentum v <- beta v + g, w <- w - alpha v (Polyak 1964; Liquet et al., ch. 4)."""
    import torch

    return _fused_if_possible(torch.optim.SGD, parameters, lr=params.lr, momentum=params.momentum, weight_decay=params.weight_decay)


@OPTIMIZERS.register("nesterov", params=MomentumParams)
def nesterov(params: MomentumParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """Nesterov's accelerated gradient: momentum with a look-ahead gradient (Liquet et al., ch. 4)."""
    import torch

    return _fused_if_possible(
        torch.optim.SGD, parameters, lr=params.lr, momentum=params.momentum, nesterov=True, weight_decay=params.weight_decay
    )


class NAdamParams(AdamParams):
    lr: float = Field(2e-3, gt=0, description="Step size (PyTorch's default).")
    momentum_decay: float = Field(4e-3, gt=0, description="psi of Dozat's momentum schedule.")
    amsgrad: Literal[False] = Field(False, description="NAdam has no AMSGrad variant.")


@OPTIMIZERS.register("nadam", params=NAdamParams)
def nadam(params: NAdamParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """Adam with Nesterov momentum (Dozat 2016; Liquet et al., ch. 4)."""
    import torch

    return torch.optim.NAdam(
        parameters,
        lr=params.lr,
        betas=params.betas,
        eps=params.eps,
        weight_decay=params.weight_decay,
        momentum_decay=params.momentum_decay,
    )


class LBFGSParams(Params):
    lr: float = Field(1.0, gt=0, description="Step length multiplier (1 with a line search).")
    max_iter: int = Field(20, ge=1, description="Iterations per optimizer step (per batch).")
    history_size: int = Field(10, ge=1, description="Memory m: curvature pairs kept (Liquet et al., ch. 4).")
    line_search: Literal["strong_wolfe", "none"] = Field("strong_wolfe", description="Line search, or a fixed step.")
    tolerance_grad: float = Field(1e-7, gt=0)
    tolerance_change: float = Field(1e-9, gt=0)


@OPTIMIZERS.register("lbfgs", params=LBFGSParams, closure=True)
def lbfgs(params: LBFGSParams, parameters: Iterable[Any]) -> torch.optim.Optimizer:
    """Limited-memory BFGS with a strong-Wolfe line search (Nocedal 1980; Liquet et al., ch. 4); the loop passes the closure."""
    import torch

    return torch.optim.LBFGS(
        parameters,
        lr=params.lr,
        max_iter=params.max_iter,
        history_size=params.history_size,
        line_search_fn=None if params.line_search == "none" else "strong_wolfe",
        tolerance_grad=params.tolerance_grad,
        tolerance_change=params.tolerance_change,
    )
