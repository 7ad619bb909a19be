"""More classification metrics (top-k, F-beta, specificity, PR-AUC, log loss) and the figure
metrics (confusion matrix, ROC curve), which are drawn once on the test part and logged as
images rather than as numbers (meta ``figure=True``).

``average: none`` gives one value per class; the loop logs them as ``<name>/<class index>``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from registry._task import Task
from registry.metrics import METRICS, MetricFn, MetricParams, defined

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

FigureFn = Callable[["torch.Tensor", "torch.Tensor"], "Figure"]
Average = Literal["macro", "micro", "weighted", "none"]


class AveragedParams(MetricParams):
    average: Average = Field("macro", description="macro, micro, weighted, or none (one value per class).")
    threshold: float = Field(0.5, gt=0, lt=1, description="Decision threshold p0 for binary tasks (Lal, Notes on ML and Neural Networks).")


def _kwargs(params: AveragedParams, task: Task) -> dict[str, Any]:
    if task.kind == "binary":
        return {"task": "binary", "threshold": params.threshold}
    return {"task": "multiclass", "num_classes": task.n_classes, "average": params.average}


class FBetaParams(AveragedParams):
    beta: float = Field(1.0, gt=0, description="Weight of recall relative to precision (Liquet et al., ch. 3).")


@METRICS.register("fbeta", params=FBetaParams, task="classification", higher_is_better=True)
def fbeta(params: FBetaParams, task: Task) -> MetricFn:
    """F-beta = (1 + b^2) P R / (b^2 P + R), per class then averaged (Liquet et al., ch. 3)."""
    from torchmetrics.functional import fbeta_score

    kwargs = _kwargs(params, task)
    return lambda preds, target: fbeta_score(preds, target, beta=params.beta, **kwargs)


@METRICS.register("specificity", params=AveragedParams, task="classification", higher_is_better=True)
def specificity(params: AveragedParams, task: Task) -> MetricFn:
    """Specificity TN/(TN+FP), the recall of the negatives (Liquet et al., ch. 3)."""
    from torchmetrics.functional import specificity as fn

    kwargs = _kwargs(params, task)
    return lambda preds, target: fn(preds, target, **kwargs)


class TopKParams(MetricParams):
    k: int = Field(5, ge=1, description="A prediction counts if the true class is among the k highest scores.")


@METRICS.register("top_k_accuracy", params=TopKParams, task="classification", higher_is_better=True)
def top_k_accuracy(params: TopKParams, task: Task) -> MetricFn:
    """Top-k accuracy, e.g. ImageNet's top-5 (Liquet et al., ch. 6); needs k < number of classes."""
    from torchmetrics.functional import accuracy

    if task.kind == "binary" or params.k >= task.n_classes:
        raise ValueError(f"top_k_accuracy needs k < number of classes, but k={params.k} with {task.n_classes or 2} classes")
    return lambda preds, target: accuracy(preds, target, task="multiclass", num_classes=task.n_classes, top_k=params.k, average="micro")


class PRAUCParams(MetricParams):
    average: Literal["macro", "weighted"] = Field("macro", description="One-vs-rest averaging for more than two classes.")


@METRICS.register("pr_auc", params=PRAUCParams, task="classification", higher_is_better=True)
def pr_auc(params: PRAUCParams, task: Task) -> MetricFn:
    """Area under the precision-recall curve (average precision), better than ROC-AUC under imbalance."""
    from torchmetrics.functional import average_precision

    if task.kind == "binary":
        return lambda preds, target: defined(average_precision(preds, target, task="binary"))
    return lambda preds, target: defined(
        average_precision(preds, target, task="multiclass", num_classes=task.n_classes, average=params.average)
    )


class LogLossParams(MetricParams):
    eps: float = Field(1e-7, gt=0, lt=0.5, description="Probabilities are clipped to [eps, 1 - eps] (Liquet et al., ch. 3).")


@METRICS.register("log_loss", params=LogLossParams, task="classification", higher_is_better=False)
def log_loss(params: LogLossParams, task: Task) -> MetricFn:
    """Mean negative log-likelihood of the true class under the predicted probabilities."""

    def fn(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = preds.clamp(params.eps, 1 - params.eps)
        if preds.ndim == 1:
            return -(target * p.log() + (1 - target) * (1 - p).log()).mean()
        p = p / p.sum(1, keepdim=True)
        return -p.gather(1, target.unsqueeze(1)).log().mean()

    return fn


class ConfusionParams(MetricParams):
    normalize: Literal["none", "true", "pred", "all"] = Field("none", description="Counts, or rates over rows/columns/all.")
    threshold: float = Field(0.5, gt=0, lt=1, description="Decision threshold for binary tasks.")


@METRICS.register("confusion_matrix", params=ConfusionParams, task="classification", figure=True)
def confusion_matrix(params: ConfusionParams, task: Task) -> FigureFn:
    """Confusion matrix C_ij = examples of true class i predicted as j (Nalisnick, Deep Learning notes), drawn on the test part."""
    from torchmetrics.functional import confusion_matrix as fn

    kwargs: dict[str, Any] = {"task": "binary", "threshold": params.threshold}
    if task.kind == "multiclass":
        kwargs = {"task": "multiclass", "num_classes": task.n_classes}
    normalize = None if params.normalize == "none" else params.normalize

    def draw(preds: torch.Tensor, target: torch.Tensor) -> Figure:
        from registry._figures import matrix_figure

        return matrix_figure(fn(preds, target, normalize=normalize, **kwargs).cpu().numpy())

    return draw


@METRICS.register("roc_curve", params=MetricParams, task="classification", figure=True)
def roc_curve(params: MetricParams, task: Task) -> FigureFn:
    """ROC curve (TPR against FPR over all thresholds; one-vs-rest per class), with its AUC (Liquet et al., ch. 3)."""
    from torchmetrics.functional import auroc, roc

    kwargs: dict[str, Any] = {"task": "binary"}
    if task.kind == "multiclass":
        kwargs = {"task": "multiclass", "num_classes": task.n_classes}

    def draw(preds: torch.Tensor, target: torch.Tensor) -> Figure:
        from registry._figures import roc_figure

        fpr, tpr, _ = roc(preds, target, **kwargs)
        area = auroc(preds, target, **kwargs, average=None) if task.kind == "multiclass" else auroc(preds, target, task="binary")
        return roc_figure(fpr, tpr, area)

    return draw
