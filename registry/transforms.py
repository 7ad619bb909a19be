"""Feature transforms under ``data.transforms:``, fitted on the training part only.

Each builder returns an unfitted scikit-learn transformer; the pipeline fits it on the
training rows and applies it to every part, so nothing of the validation or test data leaks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from registry._registry import NoParams, Params, Registry

if TYPE_CHECKING:
    from sklearn.base import TransformerMixin

TRANSFORMS: Registry = Registry("transform")


@TRANSFORMS.register("standardize")
def standardize(params: NoParams) -> TransformerMixin:
    """Zero mean, unit variance per feature; zero-centred inputs train better (Lal, Notes on ML and Neural Networks)."""
    from sklearn.preprocessing import StandardScaler

    return StandardScaler()


class MinMaxParams(Params):
    low: float = 0.0
    high: float = 1.0


@TRANSFORMS.register("minmax", params=MinMaxParams)
def minmax(params: MinMaxParams) -> TransformerMixin:
    """Rescale each feature to [low, high]."""
    from sklearn.preprocessing import MinMaxScaler

    return MinMaxScaler(feature_range=(params.low, params.high))


class ScaleParams(Params):
    factor: float = Field(..., description="Multiply every feature by this, e.g. 1/255 for pixels.")


@TRANSFORMS.register("scale", params=ScaleParams)
def scale(params: ScaleParams) -> TransformerMixin:
    """Multiply every feature by a constant."""
    from sklearn.preprocessing import FunctionTransformer

    factor = params.factor
    return FunctionTransformer(lambda x: x * factor)


class PolynomialParams(Params):
    degree: int = Field(..., ge=1, description="Highest total degree K of the expansion (Nalisnick, Deep Learning notes).")
    include_bias: bool = Field(False, description="Add the constant feature (the model usually has a bias).")


@TRANSFORMS.register("polynomial", params=PolynomialParams)
def polynomial(params: PolynomialParams) -> TransformerMixin:
    """Polynomial basis [x, x^2, ..., x^K] with cross terms (Nalisnick, Deep Learning notes; Lal, Notes on ML and Neural Networks; Liquet et al., sec. 3.4)."""
    from sklearn.preprocessing import PolynomialFeatures

    return PolynomialFeatures(params.degree, include_bias=params.include_bias)
