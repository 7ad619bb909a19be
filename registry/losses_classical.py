"""Losses beyond squared error and cross-entropy: likelihoods with learned variance or rate,
margin losses for the perceptron and SVM-style classifiers, decomposed multi-class problems,
divergences and the triplet loss. Each entry's ``task`` metadata says which targets it serves;
``outputs`` says how many outputs the model needs when that is not one per class/target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from registry._registry import NoParams, Params
from registry.losses import LOSSES

if TYPE_CHECKING:
    from registry._heads import LossHead


class GaussianNLLParams(Params):
    eps: float = Field(1e-6, gt=0, description="Floor of the variance, for stability.")
    full: bool = Field(False, description="Include the constant 0.5 log(2 pi).")


@LOSSES.register("gaussian_nll", params=GaussianNLLParams, task="regression", outputs="mean_and_log_variance")
def gaussian_nll(params: GaussianNLLParams) -> LossHead:
    """Gaussian NLL with learned (heteroskedastic) variance: the model outputs mean and log sigma^2 (Nalisnick, Deep Learning notes; Lal, Notes on ML and Neural Networks)."""
    from registry._heads_classical import GaussianNLLHead

    return GaussianNLLHead(params.eps, params.full)


class PoissonNLLParams(Params):
    full: bool = Field(False, description="Add Stirling's term for log(y!).")


@LOSSES.register("poisson_nll", params=PoissonNLLParams, task="regression")
def poisson_nll(params: PoissonNLLParams) -> LossHead:
    """Poisson NLL exp(f) - y f with log-rate f(x), the Poisson GLM's loss (Nalisnick, Deep Learning notes)."""
    from registry._heads_classical import PoissonNLLHead

    return PoissonNLLHead(params.full)


@LOSSES.register("hinge", task="binary")
def hinge(params: NoParams) -> LossHead:
    """Hinge loss max(0, 1 - y s), labels +-1 (the linear SVM's loss)."""
    from registry._heads_classical import MarginHead

    return MarginHead("hinge")


@LOSSES.register("perceptron", task="binary")
def perceptron(params: NoParams) -> LossHead:
    """Perceptron criterion -y s on mistakes only: with SGD lr 1, batch 1 it is the perceptron rule (Nalisnick, Deep Learning notes)."""
    from registry._heads_classical import MarginHead

    return MarginHead("perceptron")


class DecomposedParams(Params):
    binary: Literal["bce", "hinge", "perceptron", "mse"] = Field(
        "bce", description="Loss of each binary problem: bce (logistic), hinge, perceptron, or mse on +-1 (least squares)."
    )


@LOSSES.register("one_vs_rest", params=DecomposedParams, task="multiclass")
def one_vs_rest(params: DecomposedParams) -> LossHead:
    """K independent binary problems, class k against the rest; the highest score wins (Liquet et al., sec. 2.3, 3.2)."""
    from registry._heads_classical import DecomposedHead

    return DecomposedHead("ovr", params.binary)


@LOSSES.register("one_vs_one", params=DecomposedParams, task="multiclass", outputs="pairs")
def one_vs_one(params: DecomposedParams) -> LossHead:
    """K(K-1)/2 binary problems, one per pair of classes on their rows only; majority vote (Liquet et al., sec. 2.3, 3.2)."""
    from registry._heads_classical import DecomposedHead

    return DecomposedHead("ovo", params.binary)


@LOSSES.register("kl", task="regression")
def kl(params: NoParams) -> LossHead:
    """KL(q || softmax(f(x))) where each row of the targets is a distribution q (Nalisnick, Deep Learning notes; Lal, Notes on ML and Neural Networks)."""
    from registry._heads_classical import KLHead

    return KLHead()


class TripletParams(Params):
    margin: float = Field(1.0, gt=0, description="alpha: how much farther the negative must be (Liquet et al., sec. 6.6).")
    p: float = Field(2.0, gt=0, description="Norm of the embedding distance.")
    dim: int = Field(16, ge=1, description="Size of the embedding the model outputs.")


@LOSSES.register("triplet", params=TripletParams, task="multiclass", outputs="dim")
def triplet(params: TripletParams) -> LossHead:
    """Triplet loss on embeddings with batch-hard mining of positives and negatives (Liquet et al., sec. 6.6)."""
    from registry._heads_classical import TripletHead

    return TripletHead(params.margin, params.p)
