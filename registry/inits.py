"""Weight initializations, applied to every linear and conv layer of a model.

PyTorch's default ``nn.Linear`` initialization differs from both sources (Lal; Liquet et al.),
so a spec names its scheme explicitly: ``init: {weights: kaiming_normal, bias: zeros}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from registry._registry import NoParams, Params, Registry

if TYPE_CHECKING:
    import torch

WeightInit = Callable[["torch.Tensor"], object]
INITS: Registry = Registry("init")


@INITS.register("default")
def default(params: NoParams) -> WeightInit | None:
    """Leave PyTorch's own layer initialization in place."""
    return None


class XavierParams(Params):
    gain: float = Field(1.0, gt=0, description="Scaling gain (e.g. 5/3 for tanh).")


@INITS.register("xavier_uniform", params=XavierParams)
def xavier_uniform(params: XavierParams) -> WeightInit:
    """Glorot uniform, U(+-sqrt(6/(fan_in+fan_out))) (Nalisnick, Deep Learning notes)."""
    from torch import nn

    return lambda w: nn.init.xavier_uniform_(w, gain=params.gain)


@INITS.register("xavier_normal", params=XavierParams)
def xavier_normal(params: XavierParams) -> WeightInit:
    """Glorot normal, N(0, 2/(fan_in+fan_out)) (Lal, Notes on ML and Neural Networks)."""
    from torch import nn

    return lambda w: nn.init.xavier_normal_(w, gain=params.gain)


class KaimingParams(Params):
    mode: Literal["fan_in", "fan_out"] = Field("fan_in", description="Preserve forward (fan_in) or backward (fan_out) variance.")
    nonlinearity: Literal["relu", "leaky_relu", "linear", "tanh", "sigmoid"] = "relu"
    slope: float = Field(0.0, ge=0, description="Negative slope, for leaky_relu.")


@INITS.register("kaiming_normal", params=KaimingParams)
def kaiming_normal(params: KaimingParams) -> WeightInit:
    """He normal, N(0, 2/fan_in) for ReLU (Nalisnick, Deep Learning notes; He et al. 2015)."""
    from torch import nn

    return lambda w: nn.init.kaiming_normal_(w, a=params.slope, mode=params.mode, nonlinearity=params.nonlinearity)


@INITS.register("kaiming_uniform", params=KaimingParams)
def kaiming_uniform(params: KaimingParams) -> WeightInit:
    """He uniform, U(+-sqrt(6/fan_in)) for ReLU (He et al. 2015)."""
    from torch import nn

    return lambda w: nn.init.kaiming_uniform_(w, a=params.slope, mode=params.mode, nonlinearity=params.nonlinearity)


class NormalParams(Params):
    mean: float = 0.0
    std: float = Field(
        1.0, gt=0, description="Standard deviation; N(0, 1) is the historical baseline (Lal, Notes on ML and Neural Networks)."
    )


@INITS.register("normal", params=NormalParams)
def normal(params: NormalParams) -> WeightInit:
    """Gaussian N(mean, std^2) weights."""
    from torch import nn

    return lambda w: nn.init.normal_(w, params.mean, params.std)


class OrthogonalParams(Params):
    gain: float = Field(1.0, gt=0)


@INITS.register("orthogonal", params=OrthogonalParams)
def orthogonal(params: OrthogonalParams) -> WeightInit:
    """A (semi-)orthogonal weight matrix (Saxe et al. 2014)."""
    from torch import nn

    return lambda w: nn.init.orthogonal_(w, gain=params.gain)


@INITS.register("zeros")
def zeros(params: NoParams) -> WeightInit:
    """All-zero weights: shows the symmetry problem of Lal, Notes on ML and Neural Networks."""
    from torch import nn

    return nn.init.zeros_
