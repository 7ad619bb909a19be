"""The spec language as pydantic models: one frozen, fully typed value per spec.

Closed sets (split kinds, directions) are ``Literal``; open sets (models, losses, ...) are
the registries' discriminated unions, so a component's parameters are validated by the
model that sits beside its builder. ``runner schema`` prints this model's JSON Schema.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

import registry
from runner.spec.search_space import SearchSpec
from runner.tracking.record import RESERVED_TAG_PREFIXES

registry.load_plugins()


class Strict(BaseModel):
    """Unknown keys are errors; a validated spec is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _dataset_shorthand(value: Any) -> Any:
    # `dataset: {path: x.csv, target: y}` needs no `type: file`.
    if isinstance(value, dict) and "type" not in value and "path" in value:
        return {"type": "file", **value}
    return value


def _regularizer_shorthand(value: Any) -> Any:
    # `regularizer: {l2: 1.0e-4}` is an elastic net with only the terms given.
    if isinstance(value, dict) and "type" not in value:
        return {"type": "elastic_net", **value}
    return value


Fraction = Annotated[float, Field(gt=0, lt=1)]
Count = Annotated[int, Field(ge=1)]


class _KFold(Strict):
    k: int = Field(5, ge=2, description="Number of folds.")
    shuffle: bool = Field(True, description="Shuffle rows (seeded by the spec's seed) before cutting folds.")


class KFoldSpec(_KFold):
    """scikit-learn ``KFold``: k contiguous folds of the (shuffled) rows."""

    type: Literal["kfold"]


class StratifiedKFoldSpec(_KFold):
    """scikit-learn ``StratifiedKFold``: every fold keeps the class proportions."""

    type: Literal["stratified_kfold"]


class _Repeated(Strict):
    k: int = Field(5, ge=2, description="Number of folds per repeat.")
    repeats: int = Field(2, ge=1, description="How many times the folds are cut again from a new shuffle.")


class RepeatedKFoldSpec(_Repeated):
    """scikit-learn ``RepeatedKFold``: k-fold ``repeats`` times, reshuffled each time."""

    type: Literal["repeated_kfold"]


class RepeatedStratifiedKFoldSpec(_Repeated):
    """scikit-learn ``RepeatedStratifiedKFold``."""

    type: Literal["repeated_stratified_kfold"]


class LeaveOneOutSpec(Strict):
    """scikit-learn ``LeaveOneOut``: one fold per row (small data only)."""

    type: Literal["leave_one_out"]


class GroupKFoldSpec(_KFold):
    """scikit-learn ``GroupKFold``: no group is split across folds; the dataset names the group column."""

    type: Literal["group_kfold"]


class TimeSeriesSpec(Strict):
    """scikit-learn ``TimeSeriesSplit``: each fold trains on the past and tests on what follows (no shuffling)."""

    type: Literal["time_series"]
    k: int = Field(5, ge=2, description="Number of splits.")
    gap: int = Field(0, ge=0, description="Rows left out between the end of training and the test rows.")
    max_train_size: Count | None = Field(None, description="Cap the training window to the most recent rows.")
    test_size: Count | None = Field(None, description="Rows per test window; default n // (k + 1).")


def _folds_shorthand(value: Any) -> Any:
    # `folds: 5` is a 5-fold split; `folds: leave_one_out` names a scheme with its defaults.
    if isinstance(value, int) and not isinstance(value, bool):
        return {"type": "kfold", "k": value}
    if isinstance(value, str):
        return {"type": value}
    return value


FoldsSpec = Annotated[
    KFoldSpec | StratifiedKFoldSpec | RepeatedKFoldSpec | RepeatedStratifiedKFoldSpec | LeaveOneOutSpec | GroupKFoldSpec | TimeSeriesSpec,
    Field(discriminator="type"),
    BeforeValidator(_folds_shorthand),
]


class SplitSpec(Strict):
    """How the data is divided. Fractions are of the whole data (of the official training
    part when ``test: official``); integers are example counts (Liquet et al.: "113 of 569").

    With ``folds`` the data are cross-validated: each held-out fold is that fold's test part,
    ``val`` (or ``inner`` folds, for nested CV) is carved from the fold's training rows."""

    test: Literal["official", "folds"] | Count | Fraction = Field(
        0.2, description="Test part: a fraction, a count, 'official', or 'folds' (the held-out fold; the default with `folds`)."
    )
    val: Literal[0] | Count | Fraction = Field(0, description="Validation part for early stopping and selection; 0 for none.")
    stratify: bool = Field(False, description="Keep class proportions in every holdout part (classification only).")
    folds: FoldsSpec | None = Field(
        None,
        description="Cross-validation: one run per fold, each testing on its held-out fold (k-fold, stratified, repeated, leave-one-out, group, time series).",
    )
    inner: FoldsSpec | None = Field(
        None, description="Nested CV: folds of each outer fold's training rows that select the epoch count by early stopping."
    )

    @model_validator(mode="before")
    @classmethod
    def _folds_test_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("folds") is not None and "test" not in data:
            return {**data, "test": "folds"}
        return data

    @model_validator(mode="after")
    def _parts_leave_training_data(self) -> SplitSpec:
        fractions = [p for p in (self.test, self.val) if isinstance(p, float)]
        if sum(fractions) >= 1:
            raise ValueError(f"`test + val` must leave training data, but got test={self.test}, val={self.val}")
        return self

    @property
    def is_cv(self) -> bool:
        """One run per fold (cross-validation) rather than one holdout run."""
        return self.folds is not None


class DataSpec(Strict):
    """Where the examples come from, how they are transformed and split."""

    dataset: Annotated[registry.DATASETS.field_type(), BeforeValidator(_dataset_shorthand)] = Field(  # type: ignore[valid-type]
        ..., description="A registered dataset name, or {path: FILE, target: COLUMN}."
    )
    transforms: list[registry.TRANSFORMS.field_type()] = Field(  # type: ignore[valid-type]
        default_factory=list, description="Applied in order, each fitted on the training part only."
    )
    split: SplitSpec = Field(default_factory=SplitSpec)
    augment: list[registry.AUGMENTATIONS.field_type()] = Field(  # type: ignore[valid-type]
        default_factory=list, description="Train-only image augmentations, applied to each training batch in order."
    )
    target: Literal["labels", "input"] = Field(
        "labels", description="input: each example's target is its own transformed input (autoencoders, VAEs)."
    )


class EarlyStopping(Strict):
    """Stop when a monitored metric has not improved for ``patience`` epochs."""

    monitor: str = Field("val/loss", description="A logged per-epoch metric, e.g. val/loss or val/accuracy.")
    patience: int = Field(5, ge=1, description="Epochs without improvement before stopping.")
    mode: Literal["auto", "min", "max"] = Field("auto", description="auto: max for scores, min for losses and errors.")
    min_delta: float = Field(0.0, ge=0, description="Smallest change that counts as an improvement.")
    restore_best: bool = Field(True, description="End with the best epoch's weights.")


class GradClip(Strict):
    """Gradient clipping by global norm or per coordinate (Liquet et al., ch. 7)."""

    norm: float | None = Field(None, gt=0, description="Clip the global gradient norm to this.")
    value: float | None = Field(None, gt=0, description="Clip each gradient coordinate to [-value, value].")

    @model_validator(mode="after")
    def _exactly_one(self) -> GradClip:
        if (self.norm is None) == (self.value is None):
            raise ValueError("give exactly one of `norm` or `value`")
        return self


class TrainSpec(Strict):
    """The training loop's settings."""

    epochs: int = Field(10, ge=1, description="Passes over the training data.")
    batch_size: Literal["full"] | Count = Field(64, description="Examples per step; 'full' for full-batch GD.")
    shuffle: bool = Field(True, description="Reshuffle the training order every epoch (Lal, Notes on ML and Neural Networks).")
    early_stopping: EarlyStopping | None = None
    grad_clip: GradClip | None = None
    accumulate: int = Field(1, ge=1, description="Micro-batches of batch_size summed into one optimizer step (gradient accumulation).")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: bfloat16 autocast for training steps (CUDA; allowed on CPU); evaluation stays fp32."
    )
    compile: bool = Field(False, description="torch.compile the model (opt-in: the first steps pay the compile time).")
    loader: Literal["auto", "device", "dataloader"] = Field(
        "auto",
        description="device: data moved to the device once; dataloader: batches streamed from host memory; auto: device when it fits.",
    )
    workers: int = Field(0, ge=0, description="DataLoader worker processes (with the dataloader path).")
    checkpoint_every: int = Field(1, ge=0, description="Epochs between checkpoints (local file and MLflow artifact); 0 turns them off.")


class TrackingSpec(Strict):
    """Where MLflow records the run."""

    @field_validator("tags")
    @classmethod
    def _own_tags_only(cls, tags: dict[str, str]) -> dict[str, str]:
        taken = sorted(key for key in tags if key.startswith(RESERVED_TAG_PREFIXES))
        if taken:
            raise ValueError(f"{', '.join(taken)}: specrun.* and mlflow.* tags are specrun's and MLflow's own record of the run")
        return tags

    experiment: str | None = Field(None, description="MLflow experiment; default: the spec's name.")
    uri: str | None = Field(None, description="Tracking URI; default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db.")
    run_name: str | None = None
    tags: dict[str, str] = Field(
        default_factory=dict, description="Extra tags for the run (not specrun.* or mlflow.*: those are specrun's and MLflow's)."
    )
    log_model: bool = Field(
        True,
        description="Log the trained model for use, as an MLflow model under 'model' (transforms, network, "
        "output link); a run of `runner run` only: folds, seeds and search trials log their weights.",
    )


def _comparison_shorthand(value: Any) -> Any:
    return {"spec": value} if isinstance(value, str) else value


class Comparison(Strict):
    """Another published spec's result to compare with: ``factor`` times its ``metric``."""

    spec: str = Field(
        ..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", description="Stem of a spec whose results are in the same results directory."
    )
    metric: str | None = Field(None, description="Its metric; default: the same metric.")
    factor: float = Field(1.0, gt=0, description="Compare with factor x that value, e.g. 100 for 'orders of magnitude'.")


Comparisons = list[Annotated[Comparison, BeforeValidator(_comparison_shorthand)]]


class ExpectedValue(Strict):
    """A published number: ``value`` with a ``tolerance``, or bounds ``min``/``max``, or a
    pattern across specs: ``below``/``above`` other specs' results (a bare name: same metric)."""

    value: float | None = None
    tolerance: float | None = Field(None, ge=0)
    min: float | None = None
    max: float | None = None
    below: Comparisons = Field(default_factory=list, description="Must be less than each of these results.")
    above: Comparisons = Field(default_factory=list, description="Must be greater than each of these results.")

    @model_validator(mode="after")
    def _value_or_bounds(self) -> ExpectedValue:
        if self.value is None and self.min is None and self.max is None and not (self.below or self.above):
            raise ValueError("give `value` (with `tolerance`), at least one of `min`/`max`, or `below`/`above`")
        if self.value is not None and self.tolerance is None:
            raise ValueError("`value` needs a `tolerance`")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"`min <= max` must hold, but got min={self.min}, max={self.max}")
        return self


class ExpectSpec(Strict):
    """The published results this spec reproduces, with their source."""

    source: str = Field(..., min_length=1, description="Book, section, table or page the numbers come from.")
    metrics: dict[str, ExpectedValue] = Field(..., min_length=1, description="Logged metric name -> expectation.")


def refresh_component_fields() -> None:
    """Re-read the registries into the component fields after components were added at run
    time (``module:attr`` references under ``--allow-imports``): pydantic fixes a field's
    union of component types when the class is made, so the fields are retyped and rebuilt."""
    data_fields = DataSpec.__pydantic_fields__
    data_fields["dataset"].annotation = Annotated[registry.DATASETS.field_type(), BeforeValidator(_dataset_shorthand)]  # type: ignore[assignment]
    data_fields["transforms"].annotation = list[registry.TRANSFORMS.field_type()]  # type: ignore[misc, assignment]
    DataSpec.model_rebuild(force=True)
    fields = Spec.__pydantic_fields__
    fields["data"].annotation = DataSpec
    fields["model"].annotation = registry.MODELS.field_type()
    fields["loss"].annotation = registry.LOSSES.field_type()
    fields["regularizer"].annotation = Annotated[registry.REGULARIZERS.field_type(), BeforeValidator(_regularizer_shorthand)] | None  # type: ignore[assignment]
    fields["optimizer"].annotation = registry.OPTIMIZERS.field_type()
    fields["scheduler"].annotation = registry.SCHEDULERS.field_type() | None
    fields["metrics"].annotation = list[registry.METRICS.field_type()]  # type: ignore[misc, assignment]
    Spec.model_rebuild(force=True)


def _off_as_written(value: Any) -> Any:
    """YAML 1.1 (PyYAML's) reads a bare ``off`` (or ``no``) as false: ``reproducibility: off``
    means "off"."""
    return "off" if value is False else value


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class Spec(Strict):
    """One experiment: data, model, objective, optimization, evaluation and tracking."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", description="Identifies the experiment.")
    description: str = ""
    seed: int = Field(0, ge=0, description="Seeds the split, initialization, shuffling and dropout.")
    device: str = Field("auto", description="auto (cuda when present), cpu, cuda, cuda:N or mps.")
    reproducibility: Annotated[Literal["bitwise", "tolerant", "off"], BeforeValidator(_off_as_written)] = Field(
        "bitwise", description="bitwise: deterministic algorithms only; tolerant: warn on nondeterministic ones."
    )
    data: DataSpec
    model: registry.MODELS.field_type()  # type: ignore[valid-type]
    loss: registry.LOSSES.field_type()  # type: ignore[valid-type]
    regularizer: Annotated[registry.REGULARIZERS.field_type(), BeforeValidator(_regularizer_shorthand)] | None = None  # type: ignore[valid-type]
    optimizer: registry.OPTIMIZERS.field_type()  # type: ignore[valid-type]
    scheduler: registry.SCHEDULERS.field_type() | None = None  # type: ignore[valid-type]
    train: TrainSpec = Field(default_factory=TrainSpec)
    metrics: list[registry.METRICS.field_type()] = Field(default_factory=list)  # type: ignore[valid-type]
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    search: SearchSpec | None = None
    expect: ExpectSpec | None = None

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError(f"must be auto, cpu, cuda, cuda:N or mps, got {value!r}")
        return value

    def metric_names(self) -> list[str]:
        """The names metrics are logged under (without the ``val/``/``test/`` prefix)."""
        return [m.name or m.type for m in self.metrics]

    def to_data(self) -> dict[str, Any]:
        """The resolved spec as plain YAML-ready data, every default filled in."""
        return self.model_dump(mode="json", exclude_none=True)
