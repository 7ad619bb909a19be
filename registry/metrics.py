"""Evaluation metrics a spec lists under ``metrics:``, computed with torchmetrics.

A metric is logged as ``<split>/<name>``; ``name`` defaults to the metric's type, so two
variants of one metric (``f1`` macro and micro) need distinct names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from registry._registry import Params, Registry
from registry._task import Task

if TYPE_CHECKING:
    import torch

MetricFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]
METRICS: Registry = Registry("metric")


def defined(value: torch.Tensor | None) -> torch.Tensor:
    """A torchmetrics functional's value: some are typed Optional (None for a task they do not
    know), never None for the tasks passed here."""
    if value is None:
        raise ValueError("the metric has no value for this task")
    return value


class MetricParams(Params):
    name: str | None = Field(None, description="Logged name; default: the metric's type.")

    @field_validator("name")
    @classmethod
    def _a_key_and_a_file_name(cls, name: str | None) -> str | None:
        # The name is a metric key (val/<name>) and, for a figure, a file name (<name>.png).
        if name is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
            raise ValueError(f"{name!r} cannot name a metric: letters, digits, '_', '.' and '-' only (it names a file too)")
        return name


class ClassificationParams(MetricParams):
    average: Literal["macro", "micro", "weighted", "none"] = Field(
        "macro", description="How per-class scores combine for more than two classes (Nalisnick, Deep Learning notes); none: one per class."
    )
    threshold: float = Field(0.5, gt=0, lt=1, description="Decision threshold p0 for binary tasks (Lal, Notes on ML and Neural Networks).")


class AccuracyParams(MetricParams):
    threshold: float = Field(0.5, gt=0, lt=1, description="Decision threshold p0 for binary tasks.")


def _classification(params: ClassificationParams | AccuracyParams, task: Task) -> dict[str, Any]:
    if task.kind == "binary":
        return {"task": "binary", "threshold": params.threshold}
    average = getattr(params, "average", "micro")
    return {"task": "multiclass", "num_classes": task.n_classes, "average": average}


@METRICS.register("accuracy", params=AccuracyParams, task="classification", higher_is_better=True)
def accuracy(params: AccuracyParams, task: Task) -> MetricFn:
    """Share of correct predictions, 1 - mean 0-1 loss; threshold p0 or argmax (Nalisnick, Deep Learning notes; Lal, Notes on ML and Neural Networks)."""
    from torchmetrics.functional import accuracy as fn

    kwargs = _classification(params, task)
    return lambda preds, target: fn(preds, target, **kwargs)


def _per_class(fn_name: str, doc: str) -> None:
    def build(params: ClassificationParams, task: Task) -> MetricFn:
        import torchmetrics.functional as tmf

        fn = getattr(tmf, fn_name)
        kwargs = _classification(params, task)
        return lambda preds, target: fn(preds, target, **kwargs)

    build.__doc__ = doc
    name = {"f1_score": "f1"}.get(fn_name, fn_name)
    METRICS.add(name, build, ClassificationParams, task="classification", higher_is_better=True)


_per_class("precision", "Precision TP/(TP+FP), per class then averaged (Nalisnick, Deep Learning notes).")
_per_class("recall", "Recall (sensitivity) TP/(TP+FN), per class then averaged (Nalisnick, Deep Learning notes).")
_per_class("f1_score", "F1, the harmonic mean of precision and recall (Nalisnick, Deep Learning notes).")


class AUROCParams(MetricParams):
    average: Literal["macro", "weighted"] = Field("macro", description="One-vs-rest averaging for more than two classes.")


@METRICS.register("roc_auc", params=AUROCParams, task="classification", higher_is_better=True)
def roc_auc(params: AUROCParams, task: Task) -> MetricFn:
    """Area under the ROC curve from predicted probabilities (Liquet et al., ch. 3)."""
    from torchmetrics.functional import auroc

    kwargs: dict[str, Any] = {"task": "binary"}
    if task.kind == "multiclass":
        kwargs = {"task": "multiclass", "num_classes": task.n_classes, "average": params.average}
    return lambda preds, target: defined(auroc(preds, target, **kwargs))


@METRICS.register("rmse", params=MetricParams, task="regression", higher_is_better=False)
def rmse(params: MetricParams, task: Task) -> MetricFn:
    """Root mean squared error (Nalisnick, Deep Learning notes)."""
    from torchmetrics.functional import mean_squared_error

    return lambda preds, target: mean_squared_error(preds, target).sqrt()


@METRICS.register("mse", params=MetricParams, task="regression", higher_is_better=False)
def mse(params: MetricParams, task: Task) -> MetricFn:
    """Mean squared error (Nalisnick, Deep Learning notes)."""
    from torchmetrics.functional import mean_squared_error

    return lambda preds, target: mean_squared_error(preds, target)


@METRICS.register("mae", params=MetricParams, task="regression", higher_is_better=False)
def mae(params: MetricParams, task: Task) -> MetricFn:
    """Mean absolute error."""
    from torchmetrics.functional import mean_absolute_error

    return lambda preds, target: mean_absolute_error(preds, target)


@METRICS.register("r2", params=MetricParams, task="regression", higher_is_better=True)
def r2(params: MetricParams, task: Task) -> MetricFn:
    """Coefficient of determination R^2."""
    from torchmetrics.functional import r2_score

    return lambda preds, target: r2_score(preds, target)
