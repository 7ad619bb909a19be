"""The ``search:`` block: an Optuna study over dotted paths into the spec.

Each parameter maps one-to-one onto ``trial.suggest_*``; Optuna's own invariants are
restated here so that a bad space fails at ``runner validate``, not at trial 37.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class _Conditional(_Strict):
    when: dict[str, Any] = Field(
        default_factory=dict,
        description="Sample only when these other paths have these values, e.g. {optimizer.type: sgd}.",
    )


class FloatParam(_Conditional):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _optuna_invariants(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self


class IntParam(_Conditional):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _optuna_invariants(self) -> IntParam:
        _check_range(self.low, self.high, self.log, None if self.step == 1 else self.step)
        return self


class CategoricalParam(_Conditional):
    type: Literal["categorical"]
    choices: list[Any] = Field(..., min_length=1, description="Values to choose from; lists are allowed.")


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(f"`low <= high` must hold, but got (low={low}, high={high})")
    if log and low <= 0:
        raise ValueError(f"`low > 0` must hold for a log scale, but got low={low}")
    if log and step is not None:
        raise ValueError("`step` and `log: true` cannot be used together")


SearchParam = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class PrunerSpec(_Strict):
    """Stops unpromising trials early, fed with the per-epoch (or per-fold) objective."""

    type: Literal["median", "percentile", "hyperband", "successive_halving", "wilcoxon", "none"] = "median"
    warmup_epochs: int = Field(0, ge=0, description="Epochs reported before a trial may be pruned.")
    startup_trials: int = Field(5, ge=0, description="Trials that complete before pruning starts.")
    percentile: float = Field(25.0, gt=0, lt=100, description="For type: percentile.")


class SearchSpec(_Strict):
    """An Optuna study: what to optimize, how to sample, and the space."""

    metric: str | list[str] = Field("val/loss", description="Metric to optimize; a list for multi-objective.")
    direction: Literal["minimize", "maximize"] | list[Literal["minimize", "maximize"]] = "minimize"
    n_trials: int = Field(20, ge=1)
    timeout: float | None = Field(None, gt=0, description="Seconds after which no new trial starts.")
    sampler: Literal["tpe", "random", "grid", "cmaes", "qmc", "nsga2"] = "tpe"
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    space: dict[str, SearchParam] = Field(..., min_length=1, description="Dotted spec path -> distribution.")

    @model_validator(mode="after")
    def _objectives_match_directions(self) -> SearchSpec:
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        directions = self.direction if isinstance(self.direction, list) else [self.direction]
        if len(metrics) != len(directions):
            raise ValueError(f"{len(metrics)} metric(s) but {len(directions)} direction(s)")
        if len(metrics) > 1 and self.sampler not in {"nsga2", "random", "tpe", "qmc", "grid"}:
            raise ValueError(f"sampler {self.sampler!r} cannot optimize several objectives; use nsga2")
        if len(metrics) > 1 and "pruner" in self.model_fields_set and self.pruner.type != "none":
            raise ValueError("Optuna prunes single-objective studies only; use `pruner: {type: none}` with several metrics")
        return self

    @model_validator(mode="after")
    def _grid_is_finite(self) -> SearchSpec:
        if self.sampler == "grid":
            unstepped = [path for path, p in self.space.items() if isinstance(p, FloatParam) and p.step is None]
            if unstepped:
                raise ValueError(f"the grid sampler needs a `step` for every float parameter, but {', '.join(unstepped)} has none")
        return self

    @model_validator(mode="after")
    def _conditions_come_after_their_parameters(self) -> SearchSpec:
        order = list(self.space)
        for i, (path, param) in enumerate(self.space.items()):
            later = [c for c in param.when if c in order[i:]]
            if later:
                raise ValueError(f"{path} is sampled when {later[0]} has a value, so {later[0]} must come before it in `space`")
        return self
