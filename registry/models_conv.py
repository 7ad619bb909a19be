"""Layer-list models: ``sequential`` (any layers), ``cnn`` (a ConvNet with a dense or fully
convolutional head) and the ``vgg`` and ``resnet`` presets.

Each ends in an output layer sized by the loss (as every model does), so a spec lists only
the hidden layers. Layers are those of :mod:`registry.layers`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, TypeAdapter, field_validator

from registry._registry import Params
from registry.inits import INITS
from registry.layers import LAYERS, stack
from registry.models import MODELS, InitSpec

if TYPE_CHECKING:
    from torch import nn


def _layer_list(value: list[Any]) -> list[Any]:
    return [TypeAdapter(LAYERS.field_type()).validate_python(v) for v in value]


def _init(model: nn.Module, init: InitSpec) -> nn.Module:
    from registry._layers import initialize

    initialize(model, INITS.get(init.weights.type).builder(init.weights), init.bias)
    return model


def _head(shape: tuple[int, ...], out_features: int, kind: str) -> nn.Module:
    """The output layer: flatten + linear (dense), or a conv spanning what is left, then flatten (fully_conv)."""
    from torch import nn

    from registry._layers import flat_size

    if kind == "fully_conv" and len(shape) == 3:
        return nn.Sequential(nn.Conv2d(shape[0], out_features, shape[1:]), nn.Flatten())
    linear = nn.Linear(flat_size(shape), out_features)
    return linear if len(shape) == 1 else nn.Sequential(nn.Flatten(), linear)


class SequentialParams(Params):
    """An explicit layer list; the output layer follows from the loss."""

    layers: list[Any] = Field(default_factory=list, description="The layers in order, e.g. [{type: dense, units: 32, activation: relu}].")
    head: Literal["dense", "fully_conv"] = Field(
        "dense", description="Output layer: linear on the flattened features, or a full-size conv."
    )
    init: InitSpec = Field(default_factory=InitSpec)

    @field_validator("layers")
    @classmethod
    def _layers_are_layers(cls, value: list[Any]) -> list[Any]:
        return _layer_list(value)


def _sequential(params: Any, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    from torch import nn

    body, shape = stack(list(params.layers), in_shape)
    return _init(nn.Sequential(*body, _head(shape, out_features, params.head)), params.init)


@MODELS.register("sequential", params=SequentialParams, losses=None, inputs="any")
def sequential(params: SequentialParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """The layers exactly as listed, then the output layer (Keras-style Sequential)."""
    return _sequential(params, in_shape, out_features)


_CNN_DEFAULT = [
    {"type": "conv", "filters": 16, "kernel": 3, "padding": "same", "activation": "relu"},
    {"type": "max_pool", "kernel": 2},
    {"type": "conv", "filters": 32, "kernel": 3, "padding": "same", "activation": "relu"},
    {"type": "global_avg_pool"},
]


class CNNParams(SequentialParams):
    """A ConvNet from a layer list: [conv -> pool] x n -> flatten -> dense (Lal, Notes on ML and Neural Networks)."""

    layers: list[Any] = Field(default_factory=lambda: list(_CNN_DEFAULT), description="Conv, pool, norm, residual, dense, ... layers.")


@MODELS.register("cnn", params=CNNParams, losses=None, inputs="images")
def cnn(params: CNNParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Convolutional network from a layer list, dense or fully convolutional head (Lal, Notes on ML and Neural Networks; Liquet et al., sec. 6.3-6.4)."""
    return _sequential(params, in_shape, out_features)


VGG_CONFIGS: dict[str, list[list[int]]] = {
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


class VGGParams(Params):
    """Blocks of 3x3 same convs, each block closed by a 2x2 max-pool, then dense layers (Simonyan & Zisserman 2015)."""

    blocks: Literal["vgg11", "vgg13", "vgg16", "vgg19"] | list[list[int]] = Field(
        [[16], [32]], description="A named configuration or the filters of each conv, block by block."
    )
    dense: list[int] = Field([64], description="Widths of the dense layers before the output (VGG: [4096, 4096]).")
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout after each dense layer (FC layers only; Liquet et al., sec. 6.4).")
    batch_norm: bool = Field(False, description="Batch norm after each conv (VGG-BN).")
    init: InitSpec = Field(default_factory=InitSpec)


@MODELS.register("vgg", params=VGGParams, losses=None, inputs="images")
def vgg(params: VGGParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """VGG-style ConvNet; ``blocks: vgg19`` with dense [4096, 4096] is VGG19, 143,667,240 parameters at 224x224x3 (Liquet et al., sec. 6.4)."""
    from torch import nn

    blocks = VGG_CONFIGS[params.blocks] if isinstance(params.blocks, str) else params.blocks
    layers: list[dict[str, Any]] = []
    for block in blocks:
        for filters in block:
            layers.append(
                {"type": "conv", "filters": filters, "kernel": 3, "padding": "same", "activation": None if params.batch_norm else "relu"}
            )
            if params.batch_norm:
                layers += [{"type": "norm", "kind": "batch"}, {"type": "activation", "function": "relu"}]
        layers.append({"type": "max_pool", "kernel": 2})
    layers.append({"type": "flatten"})
    for units in params.dense:
        layers.append({"type": "dense", "units": units, "activation": "relu"})
        if params.dropout:
            layers.append({"type": "dropout", "p": params.dropout})
    body, shape = stack(_layer_list(layers), in_shape)
    return _init(nn.Sequential(*body, _head(shape, out_features, "dense")), params.init)


class ResNetParams(Params):
    """Stages of basic residual blocks (two 3x3 convs with batch norm, He et al. 2016), global average pool, linear output."""

    widths: list[int] = Field([16, 32], min_length=1, description="Channels of each stage; stages after the first halve the resolution.")
    blocks: list[int] = Field(
        [1, 1], min_length=1, description="Residual blocks per stage (ResNet-18: [2, 2, 2, 2] with widths [64, 128, 256, 512])."
    )
    stem: Literal["small", "imagenet"] = Field(
        "small", description="small: one 3x3 conv (small images); imagenet: 7x7 stride-2 conv and 3x3 stride-2 max-pool."
    )
    init: InitSpec = Field(default_factory=InitSpec)

    @field_validator("blocks")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(b < 1 for b in value):
            raise ValueError(f"every stage needs at least one block, got {value}")
        return value


@MODELS.register("resnet", params=ResNetParams, losses=None, inputs="images")
def resnet(params: ResNetParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """ResNet-style network; widths [64,128,256,512], blocks [2,2,2,2], imagenet stem is ResNet-18 (Liquet et al., sec. 6.5)."""
    from torch import nn

    if len(params.widths) != len(params.blocks):
        raise ValueError(f"`widths` has {len(params.widths)} stages but `blocks` {len(params.blocks)}")
    first = params.widths[0]
    if params.stem == "imagenet":
        layers: list[dict[str, Any]] = [
            {"type": "conv", "filters": first, "kernel": 7, "stride": 2, "padding": 3, "bias": False},
            {"type": "norm"},
            {"type": "activation", "function": "relu"},
            {"type": "max_pool", "kernel": 3, "stride": 2, "padding": 1},
        ]
    else:
        layers = [
            {"type": "conv", "filters": first, "kernel": 3, "padding": 1, "bias": False},
            {"type": "norm"},
            {"type": "activation", "function": "relu"},
        ]
    for stage, (width, count) in enumerate(zip(params.widths, params.blocks)):
        for block in range(count):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(
                {
                    "type": "residual",
                    "skip": "projection",
                    "layers": [
                        {"type": "conv", "filters": width, "kernel": 3, "stride": stride, "padding": 1, "bias": False},
                        {"type": "norm"},
                        {"type": "activation", "function": "relu"},
                        {"type": "conv", "filters": width, "kernel": 3, "padding": 1, "bias": False},
                        {"type": "norm"},
                    ],
                }
            )
    layers.append({"type": "global_avg_pool"})
    body, shape = stack(_layer_list(layers), in_shape)
    model = _init(nn.Sequential(*body, _head(shape, out_features, "dense")), params.init)
    _projection_norms(model)
    return model


def _projection_norms(model: nn.Module) -> None:
    """ResNet's projection shortcut is a 1x1 conv followed by batch norm: add the norm."""
    from torch import nn

    from registry._layers import Residual

    for module in model.modules():
        if isinstance(module, Residual) and isinstance(module.shortcut, nn.Conv2d):
            module.shortcut = nn.Sequential(module.shortcut, nn.BatchNorm2d(module.shortcut.out_channels))
