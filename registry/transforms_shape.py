"""Shape and encoding transforms: ``flatten`` and ``reshape`` for image or sequence arrays, ``one_hot``.

Like every transform they are scikit-learn transformers, fitted on the training part only;
the shape ones have nothing to fit and work on arrays of any rank, so an image table
``(n, 1, 28, 28)`` becomes ``(n, 784)`` for a dense model, or ``(n, 28, 28)`` for a sequence model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from registry._registry import NoParams, Params
from registry.transforms import TRANSFORMS

if TYPE_CHECKING:
    import numpy as np
    from sklearn.base import TransformerMixin


def _flatten(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


def _reshape(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return x.reshape(len(x), *shape)


@TRANSFORMS.register("flatten")
def flatten(params: NoParams) -> TransformerMixin:
    """(n, d1, d2, ...) -> (n, d1*d2*...): images to vectors for a dense model (Lal, Notes on ML and Neural Networks; Liquet et al., sec. 6.4)."""
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(_flatten)


class ReshapeParams(Params):
    shape: list[int] = Field(..., min_length=1, description="Shape of one example, e.g. [1, 8, 8] or [28, 28]; -1 once for 'the rest'.")


@TRANSFORMS.register("reshape", params=ReshapeParams)
def reshape(params: ReshapeParams) -> TransformerMixin:
    """(n, ...) -> (n, *shape): e.g. 64 digit features to a 1x8x8 image or to 8 steps of 8 (numpy reshape)."""
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(_reshape, kw_args={"shape": tuple(params.shape)})


class OneHotParams(Params):
    columns: list[int] | None = Field(None, description="Indices of the categorical columns; default: every column.")
    drop_first: bool = Field(
        False, description="L-1 dummies instead of L (a model with an intercept is then identifiable; Liquet et al., sec. 2.3)."
    )


@TRANSFORMS.register("one_hot", params=OneHotParams)
def one_hot(params: OneHotParams) -> TransformerMixin:
    """Categorical columns to 0/1 indicator columns, others passed through (scikit-learn OneHotEncoder; Nalisnick, Deep Learning notes)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    encoder = OneHotEncoder(drop="first" if params.drop_first else None, sparse_output=False, handle_unknown="ignore", dtype="float32")
    if params.columns is None:
        return encoder
    return ColumnTransformer([("one_hot", encoder, list(params.columns))], remainder="passthrough", sparse_threshold=0)
