"""Sequence models: ``rnn``, ``lstm``, ``gru`` (stacked, bidirectional), ``seq2seq`` (an
encoder-decoder with attention) and ``transformer`` (an encoder classifier).

Inputs are sequences ``(T, F)``: T steps of F features. A table row ``(d,)`` is read as d
steps of one feature, and an image ``(C, H, W)`` as H steps of C*W features (rows as time,
the usual way to run an RNN on MNIST), so every model accepts every dataset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from registry._registry import Params
from registry.models import MODELS

if TYPE_CHECKING:
    from torch import nn


def sequence_shape(in_shape: tuple[int, ...]) -> tuple[int, int]:
    """(steps, features) of one example as the sequence models read it."""
    if len(in_shape) == 1:
        return in_shape[0], 1
    if len(in_shape) == 2:
        return in_shape[0], in_shape[1]
    if len(in_shape) == 3:
        return in_shape[1], in_shape[0] * in_shape[2]
    raise ValueError(f"sequence models read (T, F) examples, (d,) tables or (C, H, W) images, not {in_shape}")


class RecurrentParams(Params):
    """A recurrent network read out from its last step (or the mean over steps) by a linear layer."""

    hidden: int = Field(32, ge=1, description="Hidden state size (per direction).")
    layers: int = Field(1, ge=1, description="Stacked recurrent layers (Liquet et al., sec. 7.2).")
    bidirectional: bool = Field(False, description="Also read the sequence backwards; features are concatenated (Liquet et al., sec. 7.2).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout between stacked layers.")
    readout: Literal["last", "mean"] = Field("last", description="Classify from the last step's output or the mean over steps.")


def _recurrent(kind: str, params: RecurrentParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    from registry._sequence import RecurrentClassifier

    steps, features = sequence_shape(in_shape)
    return RecurrentClassifier(
        kind,
        features,
        params.hidden,
        params.layers,
        bidirectional=params.bidirectional,
        dropout=params.dropout,
        readout=params.readout,
        out_features=out_features,
    )


@MODELS.register("rnn", params=RecurrentParams, losses=None, inputs="sequences")
def rnn(params: RecurrentParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Elman RNN, h_t = tanh(W x_t + U h_{t-1} + b) (Liquet et al., sec. 7.2; torch.nn.RNN)."""
    return _recurrent("rnn", params, in_shape, out_features)


@MODELS.register("lstm", params=RecurrentParams, losses=None, inputs="sequences")
def lstm(params: RecurrentParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Long short-term memory: gated cell state (Hochreiter & Schmidhuber 1997; Liquet et al., sec. 7.3; torch.nn.LSTM)."""
    return _recurrent("lstm", params, in_shape, out_features)


@MODELS.register("gru", params=RecurrentParams, losses=None, inputs="sequences")
def gru(params: RecurrentParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Gated recurrent unit (Cho et al. 2014; Liquet et al., sec. 7.3; torch.nn.GRU)."""
    return _recurrent("gru", params, in_shape, out_features)


class Seq2SeqParams(Params):
    """GRU encoder, GRU decoder attending over the encoder's outputs at every step (Liquet et al., sec. 7.4)."""

    hidden: int = Field(32, ge=1, description="Hidden size of encoder and decoder.")
    score: Literal["dot", "scaled_dot", "general", "additive"] = Field(
        "scaled_dot",
        description="Attention score of decoder state s and encoder output h: s.h, s.h/sqrt(d), s.W h, v.tanh(W s + U h) (Liquet et al., sec. 7.4).",
    )
    steps: int | None = Field(
        None, ge=1, description="Output steps; default: one step (a classifier) unless the targets are sequences, then their length."
    )


@MODELS.register("seq2seq", params=Seq2SeqParams, losses=None, inputs="sequences")
def seq2seq(params: Seq2SeqParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Encoder-decoder with attention: each output step reads a softmax-weighted context of the input (Bahdanau et al. 2015; Liquet et al., sec. 7.4)."""
    from registry._sequence import Seq2Seq

    steps_in, features = sequence_shape(in_shape)
    steps = params.steps
    if steps is None:
        # Reconstructing a sequence (data.target: input) asks for T*F outputs: T steps of F.
        steps = steps_in if out_features == steps_in * features and len(in_shape) == 2 else 1
    if out_features % steps:
        raise ValueError(f"{out_features} outputs do not divide into {steps} steps")
    return Seq2Seq(features, params.hidden, steps, out_features // steps, score=params.score, squeeze=steps == 1)


class TransformerParams(Params):
    """A transformer encoder over the steps, pooled, then a linear classifier (Vaswani et al. 2017; Liquet et al., sec. 7.5)."""

    d_model: int = Field(32, ge=1, description="Model width p.")
    heads: int = Field(4, ge=1, description="Attention heads H; d_model must divide by it.")
    layers: int = Field(2, ge=1, description="Encoder blocks.")
    ffn: int = Field(64, ge=1, description="Width of each block's feed-forward layer.")
    dropout: float = Field(0.1, ge=0, lt=1)
    positional: Literal["learned", "sinusoidal", "none"] = Field(
        "learned", description="Positional embedding added to the inputs: learned, or sin/cos with base 10,000 (Liquet et al., sec. 7.5)."
    )
    pooling: Literal["mean", "cls"] = Field("mean", description="Classify from the mean over steps or a learned [CLS] token.")
    norm_first: bool = Field(False, description="Pre-norm blocks (LayerNorm before attention); the original is post-norm.")

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerParams:
        if self.d_model % self.heads:
            raise ValueError(f"d_model={self.d_model} must divide by heads={self.heads}")
        return self


@MODELS.register("transformer", params=TransformerParams, losses=None, inputs="sequences")
def transformer(params: TransformerParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Transformer encoder classifier with positional embeddings (torch.nn.TransformerEncoderLayer; Liquet et al., sec. 7.5)."""
    from registry._sequence import TransformerClassifier

    steps, features = sequence_shape(in_shape)
    return TransformerClassifier(
        features,
        steps,
        out_features,
        d_model=params.d_model,
        heads=params.heads,
        layers=params.layers,
        ffn=params.ffn,
        dropout=params.dropout,
        positional=params.positional,
        pooling=params.pooling,
        norm_first=params.norm_first,
    )
