"""Classical linear models: GLM heads over fixed bases, closed-form least squares, the
perceptron, and one-vs-rest / one-vs-one wrappers over any binary model.

The GLM family fixes the loss (its negative log-likelihood) and so the link: identity for
``normal``, logistic for ``bernoulli``, softmax for ``categorical``, exp for ``poisson``
(Nalisnick, Deep Learning notes); ``runner validate`` checks that the spec's loss belongs to the family.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator

from registry._registry import Params
from registry.inits import INITS
from registry.models import MODELS, InitSpec

if TYPE_CHECKING:
    from torch import nn

    from registry._features import FixedBasis


class PolynomialBasis(Params):
    """[x, x^2, ..., x^K] with cross terms (Nalisnick, Deep Learning notes; Liquet et al., sec. 3.4)."""

    type: Literal["polynomial"] = "polynomial"
    degree: int = Field(..., ge=1, description="Highest total degree K.")
    interactions: bool = Field(True, description="Include cross terms x_i x_j ...; off: powers of each feature only.")


class RBFBasis(Params):
    """Gaussian radial basis functions around fixed centres (Lal, Notes on ML and Neural Networks)."""

    type: Literal["rbf"] = "rbf"
    centers: int = Field(..., ge=1, description="Number of basis functions.")
    low: float = Field(-1.0, description="Centres lie in [low, high] per feature.")
    high: float = Field(1.0)
    width: float = Field(0.5, gt=0, description="Standard deviation of each bump.")
    seed: int = Field(0, ge=0, description="Seed of the centres for more than one input feature.")


class FourierBasis(Params):
    """sin/cos of multiples of a base frequency per feature (a generic fixed basis: Lal, Notes on ML and Neural Networks)."""

    type: Literal["fourier"] = "fourier"
    terms: int = Field(..., ge=1, description="Harmonics k = 1..terms.")
    period: float = Field(1.0, gt=0, description="Period P of the first harmonic.")


Basis = Annotated[PolynomialBasis | RBFBasis | FourierBasis, Field(discriminator="type")]

FAMILY_LOSSES: dict[str, tuple[str, ...]] = {
    "normal": ("mse", "mae", "huber", "gaussian_nll"),
    "bernoulli": ("bce",),
    "categorical": ("cross_entropy",),
    "poisson": ("poisson_nll",),
}


class GLMParams(Params):
    """A linear predictor w.phi(x) + b over a fixed basis; the family's loss applies the link."""

    family: Literal["normal", "bernoulli", "categorical", "poisson"] = Field(
        "normal", description="Response distribution: normal (identity), bernoulli (logistic), categorical (softmax), poisson (exp)."
    )
    features: Basis | None = Field(None, description="Fixed basis phi; none: the inputs themselves.")
    bias: bool = Field(True, description="Learn an intercept (Nalisnick, Deep Learning notes).")
    init: InitSpec = Field(default_factory=InitSpec)


def basis_module(basis: Any | None, in_features: int) -> FixedBasis | None:
    """The torch module of a basis spec (None for the identity)."""
    from registry import _features

    if basis is None:
        return None
    if basis.type == "polynomial":
        return _features.Polynomial(in_features, basis.degree, basis.interactions)
    if basis.type == "rbf":
        return _features.RBF(in_features, basis.centers, basis.low, basis.high, basis.width, basis.seed)
    return _features.Fourier(in_features, basis.terms, basis.period)


def _expanded(params: Any, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    from torch import nn

    from registry._classical import Expanded
    from registry._layers import flat_size, initialize

    basis = basis_module(params.features, flat_size(in_shape))
    width = flat_size(in_shape) if basis is None else basis.out_features
    model = Expanded(basis, nn.Linear(width, out_features, bias=params.bias))
    initialize(model, INITS.get(params.init.weights.type).builder(params.init.weights), params.init.bias)
    return model


@MODELS.register("glm", params=GLMParams, losses=None)
def glm(params: GLMParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Generalized linear model E[y|x] = g^-1(w.phi(x) + b) with a fixed basis (Nalisnick, Deep Learning notes; Lal, Notes on ML and Neural Networks)."""
    return _expanded(params, in_shape, out_features)


class PoissonParams(Params):
    """Poisson regression: log-rate w.x + b."""

    features: Basis | None = Field(None, description="Fixed basis phi; none: the inputs themselves.")
    bias: bool = True
    init: InitSpec = Field(default_factory=InitSpec)


@MODELS.register("poisson", params=PoissonParams, losses=("poisson_nll",))
def poisson(params: PoissonParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Poisson regression, rate lambda = exp(w.x + b), fitted by the poisson_nll loss (Nalisnick, Deep Learning notes)."""
    return _expanded(params, in_shape, out_features)


class LeastSquaresParams(Params):
    """Ordinary least squares solved in closed form on the training part (no gradient steps)."""

    features: Basis | None = Field(None, description="Fixed basis phi, e.g. {type: polynomial, degree: 3}.")
    bias: bool = Field(True, description="Prepend a column of ones (Lal, Notes on ML and Neural Networks).")
    solver: Literal["lstsq", "pinv"] = Field(
        "lstsq", description="lstsq (SVD, minimum norm) or the Moore-Penrose pseudo-inverse (Liquet et al., sec. 2.2)."
    )


@MODELS.register("least_squares", params=LeastSquaresParams, losses=None, closed_form=True)
def least_squares(params: LeastSquaresParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Least squares w* = pinv(Phi) t, fitted once; classes become +-1 targets (Lal, Notes on ML and Neural Networks; Liquet et al., sec. 2.2-2.3)."""
    from registry._classical import LeastSquares
    from registry._layers import flat_size

    in_features = flat_size(in_shape)
    return LeastSquares(basis_module(params.features, in_features), in_features, out_features, params.bias, params.solver)


class PerceptronParams(Params):
    """Rosenblatt's perceptron: a linear threshold unit trained by the perceptron rule."""

    bias: bool = True
    init: InitSpec = Field(
        default_factory=lambda: InitSpec(weights={"type": "normal", "std": 0.01}),
        description="Random start (Nalisnick, Deep Learning notes).",
    )


@MODELS.register("perceptron", params=PerceptronParams, losses=("perceptron", "one_vs_rest", "one_vs_one"))
def perceptron(params: PerceptronParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Perceptron y = psi(w.x + b), psi(z) = -1 + 2 I[z > 0] (Nalisnick, Deep Learning notes).

    With ``loss: perceptron`` and ``optimizer: {type: sgd, lr: 1}``, ``batch_size: 1`` each
    step is exactly the rule w += y_r x_r, b += y_r on a mistake (tested).
    """
    from torch import nn

    from registry._layers import flat_size, initialize

    model = nn.Linear(flat_size(in_shape), out_features, bias=params.bias)
    initialize(model, INITS.get(params.init.weights.type).builder(params.init.weights), params.init.bias)
    return nn.Sequential(nn.Flatten(), model)


class DecompositionParams(Params):
    """K binary models (one-vs-rest) or K(K-1)/2 (one-vs-one), each a copy of ``base``."""

    base: Any = Field("logistic", description="The binary model, e.g. logistic, least_squares, perceptron, {type: mlp, ...}.")

    @field_validator("base")
    @classmethod
    def _a_registered_model(cls, value: Any) -> Any:
        from pydantic import TypeAdapter, ValidationError

        try:  # resolved when validated, so models registered later (plugins) are allowed too
            return TypeAdapter(MODELS.field_type()).validate_python(value)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'base'}: {e['msg']}" for e in error.errors(include_url=False))
            raise ValueError(problems) from None


#: Bases whose members are single affine maps, built as one map with a row per member.
AFFINE_BASES = ("linear", "logistic")


def _decomposition(kind: str, params: DecompositionParams, in_shape: tuple[int, ...], outputs: int) -> nn.Module:
    from registry._classical import Decomposition

    entry = MODELS.get(params.base.type)
    if params.base.type in AFFINE_BASES:
        # K independent affine maps are the K rows of one affine map: the loss sums the
        # members' binary losses, so no gradient couples the rows. One matmul instead of K
        # (a 45-member one-vs-one on Fashion-MNIST trains ~10x faster).
        return entry.builder(params.base, in_shape, outputs)
    return Decomposition(kind, lambda: entry.builder(params.base, in_shape, 1), outputs)


@MODELS.register("ovr", params=DecompositionParams, losses=("one_vs_rest",))
def ovr(params: DecompositionParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """One-vs-rest: one binary model per class, the highest score wins (Liquet et al., sec. 2.3, Table 3.1)."""
    return _decomposition("ovr", params, in_shape, out_features)


@MODELS.register("ovo", params=DecompositionParams, losses=("one_vs_one",))
def ovo(params: DecompositionParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """One-vs-one: a binary model per pair of classes, majority vote (Liquet et al., sec. 2.3, Table 3.1)."""
    return _decomposition("ovo", params, in_shape, out_features)
