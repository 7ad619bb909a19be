"""Losses a spec can name under ``loss:``.

Each entry's ``task`` metadata says which targets it serves; the output size of the model
follows from it (one logit for ``bce``, one per class for ``cross_entropy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from registry._registry import Params, Registry

if TYPE_CHECKING:
    from registry._heads import LossHead

LOSSES: Registry = Registry("loss")


class RegressionLossParams(Params):
    reduction: Literal["mean", "sum"] = Field("mean", description="Average (1/N) or sum over examples.")
    scale: float = Field(1.0, gt=0, description="Constant factor, e.g. 0.5 for the 1/2N form (Lal, Notes on ML and Neural Networks).")


@LOSSES.register("mse", params=RegressionLossParams, task="regression")
def mse(params: RegressionLossParams) -> LossHead:
    """Squared loss (1/N) sum (f(x)-y)^2, the Gaussian NLL with fixed sigma (Nalisnick, Deep Learning notes)."""
    from registry._heads import RegressionHead

    return RegressionHead("mse", params.reduction, params.scale)


@LOSSES.register("mae", params=RegressionLossParams, task="regression")
def mae(params: RegressionLossParams) -> LossHead:
    """Absolute loss (1/N) sum |f(x)-y|, the Laplace NLL (Liquet et al., ch. 2)."""
    from registry._heads import RegressionHead

    return RegressionHead("mae", params.reduction, params.scale)


class HuberParams(RegressionLossParams):
    delta: float = Field(1.0, gt=0, description="Where the loss turns from quadratic to linear.")


@LOSSES.register("huber", params=HuberParams, task="regression")
def huber(params: HuberParams) -> LossHead:
    """Huber loss: quadratic near zero, linear beyond delta (Liquet et al., ch. 2)."""
    from registry._heads import RegressionHead

    return RegressionHead("huber", params.reduction, params.scale, params.delta)


class BCEParams(Params):
    pos_weight: float | None = Field(None, gt=0, description="Weight of positive examples, for imbalance.")


@LOSSES.register("bce", params=BCEParams, task="binary")
def bce(params: BCEParams) -> LossHead:
    """Binary cross-entropy on one logit with the sigmoid link (Nalisnick, Deep Learning notes; Lal, Notes on ML and Neural Networks)."""
    from registry._heads import BinaryHead

    return BinaryHead(params.pos_weight)


class CrossEntropyParams(Params):
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Mass spread uniformly over classes.")
    class_weights: list[float] | None = Field(None, description="One weight per class, for imbalance.")


@LOSSES.register("cross_entropy", params=CrossEntropyParams, task="multiclass")
def cross_entropy(params: CrossEntropyParams) -> LossHead:
    """Categorical cross-entropy over K logits with the softmax link (Nalisnick, Deep Learning notes)."""
    from registry._heads import CategoricalHead

    return CategoricalHead(params.label_smoothing, params.class_weights)
