"""Layers a ``sequential``/``cnn`` model lists under ``layers:``, each knowing its output shape.

A layer builder takes its parameters and the shape of one input example and returns the
torch module with the shape of one output example, so a layer list is checked for fit
when the model is built, and the output-size formulas of the notes are code:
``(n + 2p - d(f-1) - 1) // s + 1`` per spatial axis (Lal, Notes on ML and Neural Networks; Liquet et al., sec. 6.3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, TypeAdapter, field_validator

from registry._registry import NoParams, Params, Registry
from registry.activations import ACTIVATIONS

if TYPE_CHECKING:
    from torch import nn

Shape = tuple[int, ...]
LAYERS: Registry = Registry("layer")
if TYPE_CHECKING:
    ActivationField = Any  # to mypy; at run time the union of the registered activations' params
else:
    ActivationField = ACTIVATIONS.field_type()
Pair = int | tuple[int, int]


def _pair(value: Pair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length along one axis of a convolution or pooling (Lal, Notes on ML and Neural Networks; Liquet et al., sec. 6.3)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _image(shape: Shape, layer: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError(f"layer {layer!r} needs image inputs (C, H, W), but gets shape {shape}; add a reshape transform")
    return shape


def _activation(spec: Params | None) -> nn.Module | None:
    return None if spec is None else ACTIVATIONS.get(spec.type).builder(spec)  # type: ignore[attr-defined]


def _with_activation(module: nn.Module, spec: Params | None) -> nn.Module:
    from torch import nn

    activation = _activation(spec)
    return module if activation is None else nn.Sequential(module, activation)


class ConvParams(Params):
    filters: int = Field(..., ge=1, description="Output channels n_f (Lal, Notes on ML and Neural Networks).")
    kernel: Pair = Field(3, description="Filter size f, or [f_h, f_w].")
    stride: Pair = Field(1, description="Step s between filter positions (Lal, Notes on ML and Neural Networks).")
    padding: Literal["valid", "same"] | int | tuple[int, int] = Field(
        "valid",
        description="valid (p=0), same (output size = input size at stride 1), or p per side (Lal, Notes on ML and Neural Networks).",
    )
    dilation: Pair = Field(1, description="Spacing between filter taps (Liquet et al., sec. 6.3).")
    bias: bool = True
    activation: ActivationField | None = Field(None, description="Applied after the convolution; none by default.")


@LAYERS.register("conv", params=ConvParams)
def conv(params: ConvParams, shape: Shape) -> tuple[nn.Module, Shape]:
    """2-D convolution (cross-correlation) of n_f filters f x f x n_ch; 1x1 filters mix channels only (Lal, Notes on ML and Neural Networks)."""
    from torch import nn

    channels, height, width = _image(shape, "conv")
    kernel, stride, dilation = _pair(params.kernel), _pair(params.stride), _pair(params.dilation)
    if params.padding == "same":
        if stride != (1, 1):
            raise ValueError("padding: same needs stride 1; give the padding as a number")
        padding: Any = "same"
        out: tuple[int, ...] = (height, width)
    else:
        pad = (0, 0) if params.padding == "valid" else _pair(params.padding)
        padding = pad
        out = tuple(conv_out(n, k, s, p, d) for n, k, s, p, d in zip((height, width), kernel, stride, pad, dilation))
    if min(out) < 1:
        raise ValueError(f"a {kernel} conv leaves no output on a {height}x{width} input")
    module = nn.Conv2d(channels, params.filters, kernel, stride, padding, dilation, bias=params.bias)
    return _with_activation(module, params.activation), (params.filters, *out)


class PoolParams(Params):
    kernel: Pair = Field(2, description="Window size (Lal, Notes on ML and Neural Networks).")
    stride: Pair | None = Field(None, description="Default: the window size (non-overlapping; Lal, Notes on ML and Neural Networks).")
    padding: Pair = 0


def _pool(kind: str, params: PoolParams, shape: Shape) -> tuple[nn.Module, Shape]:
    from torch import nn

    channels, height, width = _image(shape, f"{kind}_pool")
    kernel = _pair(params.kernel)
    stride = kernel if params.stride is None else _pair(params.stride)
    padding = _pair(params.padding)
    out = tuple(conv_out(n, k, s, p) for n, k, s, p in zip((height, width), kernel, stride, padding))
    if min(out) < 1:
        raise ValueError(f"a {kernel} {kind} pool leaves no output on a {height}x{width} input")
    module = (nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(kernel, stride, padding)
    return module, (channels, *out)


@LAYERS.register("max_pool", params=PoolParams)
def max_pool(params: PoolParams, shape: Shape) -> tuple[nn.Module, Shape]:
    """Max pooling per channel over a window (Lal, Notes on ML and Neural Networks)."""
    return _pool("max", params, shape)


@LAYERS.register("avg_pool", params=PoolParams)
def avg_pool(params: PoolParams, shape: Shape) -> tuple[nn.Module, Shape]:
    """Average pooling per channel over a window (Lal, Notes on ML and Neural Networks)."""
    return _pool("avg", params, shape)


@LAYERS.register("global_avg_pool")
def global_avg_pool(params: NoParams, shape: Shape) -> tuple[nn.Module, Shape]:
    """Mean of each channel over all positions: (C, H, W) -> (C,) (ResNet's head; Liquet et al., sec. 6.5)."""
    from registry._layers import GlobalPool

    channels, _, _ = _image(shape, "global_avg_pool")
    return GlobalPool("mean"), (channels,)


@LAYERS.register("global_max_pool")
def global_max_pool(params: NoParams, shape: Shape) -> tuple[nn.Module, Shape]:
    """Max of each channel over all positions: (C, H, W) -> (C,)."""
    from registry._layers import GlobalPool

    channels, _, _ = _image(shape, "global_max_pool")
    return GlobalPool("max"), (channels,)


@LAYERS.register("flatten")
def flatten(params: NoParams, shape: Shape) -> tuple[nn.Module, Shape]:
    """(C, H, W) -> (C*H*W,), before a dense layer (Lal, Notes on ML and Neural Networks)."""
    from torch import nn

    size = 1
    for dim in shape:
        size *= dim
    return nn.Flatten(), (size,)


class DenseParams(Params):
    units: int = Field(..., ge=1, description="Output features.")
    bias: bool = True
    activation: ActivationField | None = Field(None, description="Applied after the affine map; none by default.")


@LAYERS.register("dense", params=DenseParams)
def dense(params: DenseParams, shape: Shape) -> tuple[nn.Module, Shape]:
    """Fully connected layer on a flat input (flattening first when needed)."""
    from torch import nn

    size = 1
    for dim in shape:
        size *= dim
    module: nn.Module = nn.Linear(size, params.units, bias=params.bias)
    if len(shape) > 1:
        module = nn.Sequential(nn.Flatten(), module)
    return _with_activation(module, params.activation), (params.units,)


class DropoutParams(Params):
    p: float = Field(0.5, ge=0, lt=1, description="Probability of zeroing a unit in training (inverted dropout; Liquet et al., sec. 5.7).")


@LAYERS.register("dropout", params=DropoutParams)
def dropout(params: DropoutParams, shape: Shape) -> tuple[nn.Module, Shape]:
    """Inverted dropout: zero units with probability p in training, identity at test time."""
    from torch import nn

    return nn.Dropout(params.p), shape


class ActivationLayerParams(Params):
    function: ActivationField = Field(..., description="The activation, e.g. relu or {type: leaky_relu, slope: 0.1}.")


@LAYERS.register("activation", params=ActivationLayerParams)
def activation(params: ActivationLayerParams, shape: Shape) -> tuple[nn.Module, Shape]:
    """An activation as its own layer (after a norm, say)."""
    return _activation(params.function), shape  # type: ignore[return-value]


class NormParams(Params):
    kind: Literal["batch", "layer", "group"] = Field(
        "batch", description="Batch (per channel), layer or group norm (Liquet et al., sec. 5.6)."
    )
    groups: int = Field(2, ge=1, description="Groups of group norm.")
    bn_stats: Literal["running", "last_batch"] = Field("running", description="Batch norm's test-time statistics.")


@LAYERS.register("norm", params=NormParams)
def norm(params: NormParams, shape: Shape) -> tuple[nn.Module, Shape]:
    """Normalization over the channels (images) or features (vectors)."""
    from registry._layers import norm_layer

    return norm_layer(params.kind, shape[0], len(shape) - 1 if len(shape) > 1 else 1, params.groups, params.bn_stats), shape


class ResidualParams(Params):
    layers: list[Any] = Field(..., min_length=1, description="The block's layers, e.g. two 3x3 convs with batch norm.")
    skip: Literal["identity", "projection"] = Field(
        "projection", description="identity: the block must keep the shape; projection: a 1x1 conv (or linear map) where it changes."
    )
    activation: ActivationField | None = Field("relu", description="Applied after the sum, as in ResNet.")

    @field_validator("layers")
    @classmethod
    def _layers_are_layers(cls, value: list[Any]) -> list[Any]:
        return [TypeAdapter(LAYERS.field_type()).validate_python(v) for v in value]


@LAYERS.register("residual", params=ResidualParams)
def residual(params: ResidualParams, shape: Shape) -> tuple[nn.Module, Shape]:
    """A block with a shortcut: activation(F(x) + x), or + a projection of x when shapes differ (Liquet et al., sec. 6.5; Nalisnick, Deep Learning notes)."""
    from torch import nn

    from registry._layers import Residual

    body, out = stack(params.layers, shape)
    if out == shape:
        shortcut: nn.Module = nn.Identity()
    elif params.skip == "identity":
        raise ValueError(f"an identity skip needs the block to keep its shape, but it maps {shape} to {out}; use skip: projection")
    elif len(shape) == 3 and len(out) == 3:
        stride = (max(shape[1] // out[1], 1), max(shape[2] // out[2], 1))
        shortcut = nn.Conv2d(shape[0], out[0], 1, stride=stride, bias=False)
        if tuple(conv_out(n, 1, s) for n, s in zip(shape[1:], stride)) != out[1:]:
            raise ValueError(f"no 1x1 projection maps {shape} to {out}")
    elif len(shape) == 1 and len(out) == 1:
        shortcut = nn.Linear(shape[0], out[0], bias=False)
    else:
        raise ValueError(f"no projection maps {shape} to {out}")
    return Residual(body, shortcut, _activation(params.activation)), out


class ConvHeadParams(Params):
    units: list[int] = Field(
        default_factory=list, description="Widths of 1x1 conv layers after the full-size conv (the last is added for the outputs)."
    )


@LAYERS.register("conv_head", params=ConvHeadParams)
def conv_head(params: ConvHeadParams, shape: Shape) -> tuple[nn.Module, Shape]:
    """A dense layer as a conv: a full-size conv (kernel = the input's H x W), then 1x1 convs (Lal, Notes on ML and Neural Networks)."""
    from torch import nn

    channels, height, width = _image(shape, "conv_head")
    widths = [channels, *params.units]
    layers: list[nn.Module] = []
    for i, units in enumerate(params.units):
        kernel = (height, width) if i == 0 else (1, 1)
        layers += [nn.Conv2d(widths[i], units, kernel), nn.ReLU()]
    if not layers:
        return nn.Identity(), shape
    return nn.Sequential(*layers), (widths[-1], 1, 1)


def stack(layers: list[Any], shape: Shape) -> tuple[nn.Sequential, Shape]:
    """The layers as one ``nn.Sequential`` and the shape of its output."""
    from torch import nn

    modules = []
    for index, layer in enumerate(layers):
        try:
            module, shape = LAYERS.get(layer.type).builder(layer, shape)
        except ValueError as error:
            raise ValueError(f"layer {index} ({layer.type}): {error}") from error
        modules.append(module)
    return nn.Sequential(*modules), shape
