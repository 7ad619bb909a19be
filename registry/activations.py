"""Activation functions, nameable in a spec as ``activation: relu`` or ``{type: leaky_relu, slope: 0.3}``.

Sources: Nalisnick Nalisnick, Deep Learning notes, Lal Lal, Notes on ML and Neural Networks (Lal notes Keras' leaky slope is 0.3 while
PyTorch's is 0.01, hence the slope is always explicit here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from registry._registry import NoParams, Params, Registry

if TYPE_CHECKING:
    from torch import nn

ACTIVATIONS: Registry = Registry("activation")


def _simple(name: str, torch_name: str, doc: str) -> None:
    def build(params: NoParams) -> nn.Module:
        from torch import nn

        return getattr(nn, torch_name)()

    build.__doc__ = doc
    ACTIVATIONS.add(name, build, NoParams)


_simple("identity", "Identity", "The identity map (linear output).")
_simple("sigmoid", "Sigmoid", "Logistic sigmoid, phi' = phi(1 - phi) (Nalisnick, Deep Learning notes).")
_simple("tanh", "Tanh", "Hyperbolic tangent, zero-centred (Lal, Notes on ML and Neural Networks).")
_simple("relu", "ReLU", "Rectified linear unit max(0, z) (Nalisnick, Deep Learning notes).")
_simple("gelu", "GELU", "Gaussian error linear unit.")
_simple("silu", "SiLU", "SiLU / swish z * sigmoid(z) (Liquet et al., ch. 5).")
_simple("swish", "SiLU", "Alias of silu.")
_simple("softplus", "Softplus", "Softplus log(1 + e^z), a smooth ReLU.")
_simple("selu", "SELU", "Scaled ELU (Liquet et al., ch. 5).")


class LeakyReLUParams(Params):
    slope: float = Field(0.01, gt=0, lt=1, description="Negative slope epsilon in max(eps z, z).")


@ACTIVATIONS.register("leaky_relu", params=LeakyReLUParams)
def leaky_relu(params: LeakyReLUParams) -> nn.Module:
    """Leaky ReLU max(eps z, z) with an explicit slope (Nalisnick, Deep Learning notes; Keras uses 0.3, torch 0.01)."""
    from torch import nn

    return nn.LeakyReLU(params.slope)


class ELUParams(Params):
    alpha: float = Field(1.0, gt=0, description="Scale alpha of alpha (e^z - 1) for z <= 0.")


@ACTIVATIONS.register("elu", params=ELUParams)
def elu(params: ELUParams) -> nn.Module:
    """Exponential linear unit (Lal, Notes on ML and Neural Networks)."""
    from torch import nn

    return nn.ELU(params.alpha)


class PReLUParams(Params):
    init: float = Field(0.25, description="Initial value of the learned slope.")


@ACTIVATIONS.register("prelu", params=PReLUParams)
def prelu(params: PReLUParams) -> nn.Module:
    """Parametric ReLU: the negative slope is learned (Lal, Notes on ML and Neural Networks)."""
    from torch import nn

    return nn.PReLU(init=params.init)


class RReLUParams(Params):
    lower: float = Field(1 / 8, ge=0, lt=1, description="Lower bound of the random slope.")
    upper: float = Field(1 / 3, ge=0, lt=1, description="Upper bound of the random slope.")


@ACTIVATIONS.register("rrelu", params=RReLUParams)
def rrelu(params: RReLUParams) -> nn.Module:
    """Randomized leaky ReLU: random slope in training, the mean slope at test (Lal, Notes on ML and Neural Networks)."""
    from torch import nn

    return nn.RReLU(params.lower, params.upper)


class SoftmaxParams(Params):
    dim: int = Field(-1, description="Axis the softmax normalizes over.")


@ACTIVATIONS.register("softmax", params=SoftmaxParams)
def softmax(params: SoftmaxParams) -> nn.Module:
    """Softmax output link (Nalisnick, Deep Learning notes)."""
    from torch import nn

    return nn.Softmax(dim=params.dim)


@ACTIVATIONS.register("step")
def step(params: NoParams) -> nn.Module:
    """Threshold step Theta(z) = 1 if z > 0 else 0, the TLU's activation (Lal, Notes on ML and Neural Networks); zero gradient."""
    import torch
    from torch import nn

    class Step(nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return (z > 0).to(z.dtype)

    return Step()
