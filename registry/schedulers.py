"""Learning-rate schedules a spec can name under ``scheduler:`` (Lal, Notes on ML and Neural Networks; Liquet et al., ch. 4).

A builder returns the torch scheduler and whether it steps per batch (``"step"``) or per
epoch (``"epoch"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from registry._registry import Params, Registry

if TYPE_CHECKING:
    import torch
    from torch.optim.lr_scheduler import LRScheduler

Interval = Literal["step", "epoch"]
SCHEDULERS: Registry = Registry("scheduler")


class StepParams(Params):
    step_size: int = Field(..., ge=1, description="Epochs between decays.")
    gamma: float = Field(0.1, gt=0, le=1, description="Factor applied at each decay.")


@SCHEDULERS.register("step", params=StepParams)
def step(params: StepParams, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> tuple[LRScheduler, Interval]:
    """Multiply the rate by gamma every step_size epochs."""
    import torch

    return torch.optim.lr_scheduler.StepLR(optimizer, params.step_size, params.gamma), "epoch"


class MultiStepParams(Params):
    milestones: list[int] = Field(..., min_length=1, description="Epochs at which the rate drops.")
    gamma: float = Field(0.1, gt=0, le=1)


@SCHEDULERS.register("multistep", params=MultiStepParams)
def multistep(params: MultiStepParams, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> tuple[LRScheduler, Interval]:
    """Piecewise-constant rate, eta_1 > eta_2 > ... (Lal, Notes on ML and Neural Networks)."""
    import torch

    return torch.optim.lr_scheduler.MultiStepLR(optimizer, params.milestones, params.gamma), "epoch"


class ExponentialParams(Params):
    gamma: float = Field(
        ..., gt=0, le=1, description="Per-epoch factor; 0.1**(1/s) gives eta0 * 0.1**(t/s) (Lal, Notes on ML and Neural Networks)."
    )


@SCHEDULERS.register("exponential", params=ExponentialParams)
def exponential(
    params: ExponentialParams, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
) -> tuple[LRScheduler, Interval]:
    """Exponential decay eta0 * gamma**t per epoch (Lal, Notes on ML and Neural Networks; Liquet et al., ch. 4)."""
    import torch

    return torch.optim.lr_scheduler.ExponentialLR(optimizer, params.gamma), "epoch"


class CosineParams(Params):
    t_max: int | None = Field(None, ge=1, description="Epochs of one half-cosine; default: all epochs.")
    eta_min: float = Field(0.0, ge=0)


@SCHEDULERS.register("cosine", params=CosineParams)
def cosine(params: CosineParams, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> tuple[LRScheduler, Interval]:
    """Cosine annealing from the optimizer's rate to eta_min (Loshchilov & Hutter 2017)."""
    import torch

    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, params.t_max or epochs, params.eta_min), "epoch"


class OneCycleParams(Params):
    max_lr: float = Field(..., gt=0, description="Peak rate eta_max, e.g. a tenth of the LR-range-test's critical rate.")
    pct_start: float = Field(0.3, gt=0, lt=1, description="Share of steps spent warming up.")
    div_factor: float = Field(10.0, gt=1, description="eta_min = max_lr / div_factor (Lal, Notes on ML and Neural Networks).")
    final_div_factor: float = Field(1e4, gt=1, description="Final rate = eta_min / final_div_factor.")


@SCHEDULERS.register("onecycle", params=OneCycleParams)
def onecycle(params: OneCycleParams, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> tuple[LRScheduler, Interval]:
    """One-cycle policy eta_min -> eta_max -> eta_min -> ~0, stepped per batch (Lal, Notes on ML and Neural Networks; Smith 2018)."""
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


class PowerParams(Params):
    s: float = Field(..., gt=0, description="Steps (or epochs) until the rate has fallen by 2^c.")
    c: float = Field(1.0, gt=0, description="Power c of eta0 / (1 + t/s)^c.")
    interval: Interval = Field("epoch", description="What t counts: epochs or optimizer steps.")


@SCHEDULERS.register("power", params=PowerParams)
def power(params: PowerParams, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> tuple[LRScheduler, Interval]:
    """Power scheduling eta(t) = eta0 / (1 + t/s)^c (Lal, Notes on ML and Neural Networks)."""
    import torch

    s, c = params.s, params.c
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: (1 + t / s) ** -c), params.interval


class WarmupParams(Params):
    length: int = Field(..., ge=1, description="Warm-up length, in the following schedule's interval (epochs by default).")
    start_factor: float = Field(0.01, gt=0, le=1, description="The rate starts at start_factor x the optimizer's rate.")
    then: Any = Field(None, description="The schedule after the warm-up, e.g. {type: cosine}; none: constant.")

    @field_validator("then")
    @classmethod
    def _a_registered_schedule(cls, value: Any) -> Any:
        from pydantic import TypeAdapter, ValidationError

        if value is None:
            return None
        try:  # resolved when validated, so every registered schedule may follow
            return TypeAdapter(SCHEDULERS.field_type()).validate_python(value)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'then'}: {e['msg']}" for e in error.errors(include_url=False))
            raise ValueError(problems) from None


@SCHEDULERS.register("warmup", params=WarmupParams)
def warmup(params: WarmupParams, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> tuple[LRScheduler, Interval]:
    """Linear warm-up from start_factor x eta to eta over ``length`` steps, then ``then`` (Goyal et al. 2017)."""
    import torch

    interval: Interval = "epoch"
    follow = None
    if params.then is not None:
        follow, interval = SCHEDULERS.get(params.then.type).builder(params.then, optimizer, epochs, steps_per_epoch)
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, params.start_factor, 1.0, total_iters=params.length)
    if follow is None:
        return ramp, interval
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, follow], milestones=[params.length]), interval
