"""Components outside the registry, named from a spec as ``tests.imported_components:tiny``
(used by tests/test_allow_imports.py) and ``...:unpicklable`` (tests/test_served.py)."""

from __future__ import annotations

import threading
from typing import Any

from pydantic import Field
from sklearn.base import BaseEstimator, TransformerMixin
from torch import nn

from registry import Params


class TinyParams(Params):
    width: int = Field(4, ge=1)


def tiny(params: TinyParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """A one-hidden-layer net defined outside this repository's registry."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_shape[0], params.width), nn.ReLU(), nn.Linear(params.width, out_features))


tiny.Params = TinyParams  # type: ignore[attr-defined]


class _Locked(BaseEstimator, TransformerMixin):
    """The identity, holding a lock: a fitted transform that cannot be pickled."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def fit(self, x: Any, y: Any = None) -> _Locked:
        return self

    def transform(self, x: Any) -> Any:
        return x


def unpicklable(params: Params) -> TransformerMixin:
    """A transform whose fitted object does not pickle (tests/test_served.py)."""
    return _Locked()
