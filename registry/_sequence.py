"""torch modules behind the sequence models. Imported only when a model is built."""

from __future__ import annotations

import math

import torch
from torch import nn


def as_sequence(x: torch.Tensor) -> torch.Tensor:
    """(n, d) -> (n, d, 1); (n, C, H, W) -> (n, H, C*W); (n, T, F) unchanged."""
    if x.dim() == 2:
        return x.unsqueeze(-1)
    if x.dim() == 4:
        n, c, h, w = x.shape
        return x.permute(0, 2, 1, 3).reshape(n, h, c * w)
    return x


class RecurrentClassifier(nn.Module):
    """torch's RNN/LSTM/GRU, then a linear readout of the last step or the mean over steps."""

    def __init__(
        self, kind: str, features: int, hidden: int, layers: int, *, bidirectional: bool, dropout: float, readout: str, out_features: int
    ) -> None:
        super().__init__()
        cell = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.recurrent = cell(
            features, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0
        )
        self.readout = readout
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.recurrent(as_sequence(x))
        summary = outputs[:, -1] if self.readout == "last" else outputs.mean(dim=1)
        return self.head(summary)


class Attention(nn.Module):
    """Scores of a query against keys, softmax-normalized, and the weighted sum of the values (Liquet et al., sec. 7.4)."""

    def __init__(self, size: int, score: str) -> None:
        super().__init__()
        self.score = score
        if score == "general":
            self.w = nn.Linear(size, size, bias=False)
        elif score == "additive":
            self.w, self.u = nn.Linear(size, size, bias=False), nn.Linear(size, size, bias=False)
            self.v = nn.Linear(size, 1, bias=False)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """(n, d) query, (n, T, d) keys -> (n, T) unnormalized scores."""
        if self.score == "additive":
            return self.v(torch.tanh(self.w(query).unsqueeze(1) + self.u(keys))).squeeze(-1)
        if self.score == "general":
            query = self.w(query)
        scores = torch.einsum("nd,ntd->nt", query, keys)
        return scores / math.sqrt(keys.shape[-1]) if self.score == "scaled_dot" else scores

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = torch.softmax(self.scores(query, keys), dim=-1)
        return torch.einsum("nt,ntd->nd", weights, keys), weights


class Seq2Seq(nn.Module):
    """GRU encoder; a GRU-cell decoder that attends to the encoder outputs at each output step.

    The decoder's input at step t is its own previous output (zeros at the start) and the
    attention context; ``last_weights`` keeps the attention weights of the latest forward,
    (n, steps, T), to inspect what each output step read.
    """

    def __init__(self, features: int, hidden: int, steps: int, out_per_step: int, *, score: str, squeeze: bool) -> None:
        super().__init__()
        self.steps, self.out_per_step, self.squeeze = steps, out_per_step, squeeze
        self.encoder = nn.GRU(features, hidden, batch_first=True)
        self.attention = Attention(hidden, score)
        self.decoder = nn.GRUCell(out_per_step + hidden, hidden)
        self.out = nn.Linear(2 * hidden, out_per_step)
        self.last_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keys, state = self.encoder(as_sequence(x))
        state = state[-1]
        previous = keys.new_zeros(keys.shape[0], self.out_per_step)
        outputs, weights = [], []
        for _ in range(self.steps):
            context, weight = self.attention(state, keys)
            state = self.decoder(torch.cat([previous, context], dim=-1), state)
            context, weight = self.attention(state, keys)
            previous = self.out(torch.cat([state, context], dim=-1))
            outputs.append(previous)
            weights.append(weight)
        self.last_weights = torch.stack(weights, dim=1).detach()
        result = torch.stack(outputs, dim=1)
        return result[:, 0] if self.squeeze else result


def sinusoidal(steps: int, size: int) -> torch.Tensor:
    """PE[t, 2i] = sin(t / 10000^(2i/p)), PE[t, 2i+1] = cos(...) (Vaswani et al. 2017; Liquet et al., sec. 7.5)."""
    position = torch.arange(steps, dtype=torch.float32).unsqueeze(1)
    rate = torch.exp(torch.arange(0, size, 2, dtype=torch.float32) * (-math.log(10000.0) / size))
    table = torch.zeros(steps, size)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)[:, : size // 2]
    return table


class TransformerClassifier(nn.Module):
    """Input projection + positional embedding -> transformer encoder blocks -> pool -> linear."""

    def __init__(
        self,
        features: int,
        steps: int,
        out_features: int,
        *,
        d_model: int,
        heads: int,
        layers: int,
        ffn: int,
        dropout: float,
        positional: str,
        pooling: str,
        norm_first: bool,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(features, d_model)
        self.pooling = pooling
        length = steps + (1 if pooling == "cls" else 0)
        if positional == "learned":
            self.position = nn.Parameter(torch.zeros(length, d_model))
            nn.init.normal_(self.position, std=0.02)
        else:
            self.register_buffer("position", sinusoidal(length, d_model) if positional == "sinusoidal" else torch.zeros(length, d_model))
        if pooling == "cls":
            self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        block = nn.TransformerEncoderLayer(d_model, heads, ffn, dropout, batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(as_sequence(x))
        if self.pooling == "cls":
            tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        encoded = self.encoder(tokens + self.position)
        return self.head(encoded[:, 0] if self.pooling == "cls" else encoded.mean(dim=1))
