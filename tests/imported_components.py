"""A component outside the registry, named from a spec as ``tests.imported_components:tiny``
(used by tests/test_allow_imports.py)."""

from __future__ import annotations

from pydantic import Field
from torch import nn

from registry import Params


class TinyParams(Params):
    width: int = Field(4, ge=1)


def tiny(params: TinyParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """A one-hidden-layer net defined outside this repository's registry."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_shape[0], params.width), nn.ReLU(), nn.Linear(params.width, out_features))


tiny.Params = TinyParams  # type: ignore[attr-defined]
