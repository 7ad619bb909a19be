"""torch modules behind the autoencoders, the VAE's output type and the ELBO head."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from registry._heads import LossHead


def _mlp(widths: list[int], make_activation: Callable[[], nn.Module], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2 or last_activation:
            layers.append(make_activation())
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """Flatten, encode to the code (the last hidden width), decode back, reshape to the input's shape."""

    def __init__(
        self, in_shape: tuple[int, ...], out_features: int, hidden: list[int], make_activation: Callable[[], nn.Module], output: str
    ) -> None:
        super().__init__()
        size = math.prod(in_shape)
        self.out_shape = in_shape if out_features == size else (out_features,)
        self.encoder = _mlp([size, *hidden], make_activation, last_activation=True)
        self.decoder = _mlp([*reversed(hidden), out_features], make_activation, last_activation=False)
        self.output = nn.Sigmoid() if output == "sigmoid" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = self.encoder(x.flatten(1))
        return self.output(self.decoder(code)).reshape(x.shape[0], *self.out_shape)


class VAEOutput(NamedTuple):
    """What a VAE emits: the reconstruction (decoder logits or means) and q(z|x)'s parameters.

    It travels as one tensor ``[reconstruction | mu | log_var]`` along the last axis (the
    training loop and evaluation batch and concatenate plain tensors); :meth:`unpack`
    splits it given the reconstruction size.
    """

    reconstruction: torch.Tensor
    mu: torch.Tensor
    log_var: torch.Tensor

    def pack(self) -> torch.Tensor:
        return torch.cat([self.reconstruction.flatten(1), self.mu, self.log_var], dim=-1)

    @staticmethod
    def unpack(outputs: torch.Tensor, size: int) -> VAEOutput:
        latent = (outputs.shape[-1] - size) // 2
        return VAEOutput(outputs[:, :size], outputs[:, size : size + latent], outputs[:, size + latent :])


class VAE(nn.Module):
    """Encoder -> (mu, log sigma^2); z = mu + sigma * eps in training, z = mu in eval; decoder -> logits/means."""

    def __init__(self, in_shape: tuple[int, ...], hidden: list[int], latent: int, make_activation: Callable[[], nn.Module]) -> None:
        super().__init__()
        size = math.prod(in_shape)
        self.encoder = _mlp([size, *hidden], make_activation, last_activation=True)
        self.mu = nn.Linear(hidden[-1], latent)
        self.log_var = nn.Linear(hidden[-1], latent)
        self.decoder = nn.Sequential(_mlp([latent, *reversed(hidden)], make_activation, last_activation=True), nn.Linear(hidden[0], size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x.flatten(1))
        mu, log_var = self.mu(h), self.log_var(h)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu) if self.training else mu
        return VAEOutput(self.decoder(z), mu, log_var).pack()


class ELBOHead(LossHead):
    """Mean over examples of -ELBO = -log p(x|z) + beta * KL(N(mu, sigma^2) || N(0, I)).

    The Gaussian likelihood has unit variance and drops the constant D/2 log(2 pi). The head
    learns the reconstruction size from the targets of its first call, so ``predict`` can
    return the reconstruction (probabilities for Bernoulli) in the targets' shape.
    """

    def __init__(self, likelihood: str, beta: float) -> None:
        super().__init__()
        self.likelihood, self.beta = likelihood, beta
        self.target_shape: tuple[int, ...] | None = None

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.target_shape = tuple(targets.shape[1:])
        parts = VAEOutput.unpack(outputs, math.prod(self.target_shape))
        flat = targets.flatten(1).to(outputs.dtype)
        if self.likelihood == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(parts.reconstruction, flat, reduction="none").sum(-1)
        else:
            nll = 0.5 * (parts.reconstruction - flat).pow(2).sum(-1)
        kl = -0.5 * (1 + parts.log_var - parts.mu.pow(2) - parts.log_var.exp()).sum(-1)
        return (nll + self.beta * kl).mean()

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        if self.target_shape is None:
            raise RuntimeError("the elbo head learns the reconstruction size from targets: call it once before predict")
        recon = VAEOutput.unpack(outputs, math.prod(self.target_shape)).reconstruction
        recon = torch.sigmoid(recon) if self.likelihood == "bernoulli" else recon
        return recon.reshape(recon.shape[0], *self.target_shape)
