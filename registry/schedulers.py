"""Learning-rate schedules a spec can name under ``scheduler:`` (004:945-988; 003 ch. 4).

A builder returns the torch scheduler and whether it steps per batch (``"step"``) or per
epoch (``"epoch"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field

from registry._registry import Params, Registry

if TYPE_CHECKING:
    import torch

Interval = Literal["step", "epoch"]
SCHEDULERS: Registry = Registry("scheduler")


class StepParams(Params):
    step_size: int = Field(..., ge=1, description="Epochs between decays.")
    gamma: float = Field(0.1, gt=0, le=1, description="Factor applied at each decay.")


@SCHEDULERS.register("step", params=StepParams)
def step(params: StepParams, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> tuple[object, Interval]:
    """Multiply the rate by gamma every step_size epochs."""
    import torch

    return torch.optim.lr_scheduler.StepLR(optimizer, params.step_size, params.gamma), "epoch"


class MultiStepParams(Params):
    milestones: list[int] = Field(..., min_length=1, description="Epochs at which the rate drops.")
    gamma: float = Field(0.1, gt=0, le=1)


@SCHEDULERS.register("multistep", params=MultiStepParams)
def multistep(params: MultiStepParams, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> tuple[object, Interval]:
    """Piecewise-constant rate, eta_1 > eta_2 > ... (004:984-988)."""
    import torch

    return torch.optim.lr_scheduler.MultiStepLR(optimizer, params.milestones, params.gamma), "epoch"


class ExponentialParams(Params):
    gamma: float = Field(..., gt=0, le=1, description="Per-epoch factor; 0.1**(1/s) gives eta0 * 0.1**(t/s) (004:978).")


@SCHEDULERS.register("exponential", params=ExponentialParams)
def exponential(params: ExponentialParams, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> tuple[object, Interval]:
    """Exponential decay eta0 * gamma**t per epoch (004:978-982; 003 ch. 4)."""
    import torch

    return torch.optim.lr_scheduler.ExponentialLR(optimizer, params.gamma), "epoch"


class CosineParams(Params):
    t_max: Optional[int] = Field(None, ge=1, description="Epochs of one half-cosine; default: all epochs.")
    eta_min: float = Field(0.0, ge=0)


@SCHEDULERS.register("cosine", params=CosineParams)
def cosine(params: CosineParams, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> tuple[object, Interval]:
    """Cosine annealing from the optimizer's rate to eta_min (Loshchilov & Hutter 2017)."""
    import torch

    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, params.t_max or epochs, params.eta_min), "epoch"


class OneCycleParams(Params):
    max_lr: float = Field(..., gt=0, description="Peak rate eta_max, e.g. a tenth of the LR-range-test's critical rate.")
    pct_start: float = Field(0.3, gt=0, lt=1, description="Share of steps spent warming up.")
    div_factor: float = Field(10.0, gt=1, description="eta_min = max_lr / div_factor (004:966).")
    final_div_factor: float = Field(1e4, gt=1, description="Final rate = eta_min / final_div_factor.")


@SCHEDULERS.register("onecycle", params=OneCycleParams)
def onecycle(params: OneCycleParams, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> tuple[object, Interval]:
    """One-cycle policy eta_min -> eta_max -> eta_min -> ~0, stepped per batch (004:966-968; Smith 2018)."""
    import torch

    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=params.max_lr,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        pct_start=params.pct_start,
        div_factor=params.div_factor,
        final_div_factor=params.final_div_factor,
    )
    return scheduler, "step"
