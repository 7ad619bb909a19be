"""Models a spec can name under ``model:``.

Every builder takes its parameters, the shape of one input example (``in_shape``, e.g.
``(30,)`` for a table or ``(1, 28, 28)`` for an image) and the output size, which comes from the loss (``cross_entropy`` needs one output per class, ``bce`` one logit, ``mse`` one per
target), so a spec never repeats them. Outputs are raw scores: the loss applies the link.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from registry._registry import Params, Registry
from registry.activations import ACTIVATIONS
from registry.inits import INITS

if TYPE_CHECKING:
    from torch import nn

MODELS: Registry = Registry("model")

if TYPE_CHECKING:
    ActivationField = Any  # to mypy; at run time the union of the registered activations' params
else:
    ActivationField = ACTIVATIONS.field_type()


class InitSpec(Params):
    """How weights and biases start: name the scheme; biases usually start at zero."""

    weights: INITS.field_type() = Field("default", description="Weight scheme, e.g. kaiming_normal.")  # type: ignore[valid-type]
    bias: Literal["zeros", "default"] | float = Field("zeros", description="'zeros', a constant, or 'default' for PyTorch's own.")


class LinearParams(Params):
    """A single affine map w.x + b: a generalized linear model once the loss adds the link."""

    bias: bool = Field(True, description="Learn an intercept (Nalisnick, Deep Learning notes).")
    init: InitSpec = Field(default_factory=InitSpec)


def _linear(params: LinearParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    from torch import nn

    from registry._layers import flat_size, initialize

    model = nn.Linear(flat_size(in_shape), out_features, bias=params.bias)
    initialize(model, INITS.get(params.init.weights.type).builder(params.init.weights), params.init.bias)
    return model if len(in_shape) == 1 else nn.Sequential(nn.Flatten(), model)


@MODELS.register("linear", params=LinearParams, losses=None)
def linear(params: LinearParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Linear regression E[y|x] = w.x + b, identity link (Nalisnick, Deep Learning notes; Liquet et al., sec. 2.2)."""
    return _linear(params, in_shape, out_features)


@MODELS.register("logistic", params=LinearParams, losses=("bce",))
def logistic(params: LinearParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Logistic regression: one logit, Bernoulli likelihood through the bce loss (Nalisnick, Deep Learning notes; Liquet et al., sec. 3.1)."""
    return _linear(params, in_shape, out_features)


@MODELS.register("softmax", params=LinearParams, losses=("cross_entropy",))
def softmax(params: LinearParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Softmax (multinomial) regression: K logits, categorical likelihood (Nalisnick, Deep Learning notes; Liquet et al., sec. 3.3)."""
    return _linear(params, in_shape, out_features)


class MLPParams(Params):
    """A feedforward network: hidden widths, activation(s), dropout, normalization, init."""

    hidden: list[int] = Field([64], description="Width of each hidden layer, input side first.")
    activation: ActivationField | list[ActivationField] = Field(
        "relu", description="One activation for every hidden layer, or one per layer."
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout probability after each hidden layer.")
    norm: Literal["none", "batch", "layer", "group"] = Field("none", description="Normalization before each activation.")
    bias: bool = True
    groups: int = Field(2, ge=1, description="Groups of group norm; each hidden width must divide by it.")
    bn_stats: Literal["running", "last_batch"] = Field(
        "running",
        description="Batch norm at test time: running averages, or the last training batch's statistics (Liquet et al., sec. 5.6).",
    )
    skip: Literal["none", "identity", "projection"] = Field(
        "none",
        description="Skip connections between hidden layers: identity (equal widths) or a projection where widths change (Nalisnick, Deep Learning notes).",
    )
    init: InitSpec = Field(default_factory=InitSpec)

    @model_validator(mode="after")
    def _one_activation_per_layer(self) -> MLPParams:
        if isinstance(self.activation, list) and len(self.activation) != len(self.hidden):
            raise ValueError(f"`activation` lists {len(self.activation)} entries but `hidden` has {len(self.hidden)} layers")
        if any(width < 1 for width in self.hidden):
            raise ValueError(f"every hidden width must be >= 1, got {self.hidden}")
        if self.skip == "identity" and len(set(self.hidden)) > 1:
            raise ValueError(f"skip: identity needs equal hidden widths, got {self.hidden}; use skip: projection")
        if self.norm == "group" and any(width % self.groups for width in self.hidden):
            raise ValueError(f"group norm needs every hidden width divisible by groups={self.groups}, got {self.hidden}")
        return self


def _activation_maker(spec: Any) -> Callable[[], nn.Module]:
    """What makes a fresh module of the activation ``spec`` names, for each layer."""

    def make() -> nn.Module:
        return ACTIVATIONS.get(spec.type).builder(spec)

    return make


@MODELS.register("mlp", params=MLPParams, losses=None)
def mlp(params: MLPParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Multilayer perceptron with per-layer widths and activations (Nalisnick, Deep Learning notes; Lal, Notes on ML and Neural Networks)."""
    from torch import nn

    from registry._layers import MLP, flat_size, initialize

    specs = params.activation if isinstance(params.activation, list) else [params.activation] * len(params.hidden)
    makers = [_activation_maker(s) for s in specs]
    model = MLP(
        flat_size(in_shape),
        list(params.hidden),
        out_features,
        makers,
        dropout=params.dropout,
        norm=params.norm,
        bias=params.bias,
        skip=params.skip,
        groups=params.groups,
        bn_stats=params.bn_stats,
    )
    initialize(model, INITS.get(params.init.weights.type).builder(params.init.weights), params.init.bias)
    return model if len(in_shape) == 1 else nn.Sequential(nn.Flatten(), model)
