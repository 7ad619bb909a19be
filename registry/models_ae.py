"""Autoencoders and the variational autoencoder, with the ``elbo`` loss the VAE trains under.

They reconstruct their input: a spec sets ``data.target: input``, so the targets are the
(transformed) inputs and the output has the input's shape. The VAE's output packs the
reconstruction and the posterior's mean and log-variance (:mod:`registry._vae`), which
``elbo`` unpacks; its ``predict`` is the reconstruction, so ``mse`` and friends apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from registry._registry import Params
from registry.activations import ACTIVATIONS
from registry.losses import LOSSES
from registry.models import MODELS

if TYPE_CHECKING:
    from torch import nn

    from registry._heads import LossHead

if TYPE_CHECKING:
    ActivationField = Any  # to mypy; at run time the union of the registered activations' params
else:
    ActivationField = ACTIVATIONS.field_type()


class AutoencoderParams(Params):
    """Encoder widths down to the bottleneck; the decoder mirrors them (Liquet et al., sec. 3.5)."""

    hidden: list[int] = Field([32], min_length=1, description="Encoder widths, the last is the code size m: [32] shallow, [128, 32] deep.")
    activation: ActivationField = Field(
        "tanh", description="Hidden activation; identity gives a PCA-like linear autoencoder (Liquet et al., sec. 3.5)."
    )
    output: Literal["identity", "sigmoid"] = Field("identity", description="Output link: sigmoid for inputs in [0, 1].")


@MODELS.register("autoencoder", params=AutoencoderParams, losses=None, inputs="any")
def autoencoder(params: AutoencoderParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Shallow or deep autoencoder x -> code -> x-hat, trained with target = input (Liquet et al., sec. 3.5)."""
    from registry._vae import Autoencoder

    def make() -> nn.Module:
        return ACTIVATIONS.get(params.activation.type).builder(params.activation)

    return Autoencoder(in_shape, out_features, list(params.hidden), make, params.output)


class VAEParams(Params):
    """Gaussian encoder q(z|x) = N(mu, diag sigma^2), decoder p(x|z), standard normal prior (Liquet et al., sec. 8.1)."""

    hidden: list[int] = Field([64], min_length=1, description="Encoder hidden widths; the decoder mirrors them.")
    latent: int = Field(2, ge=1, description="Latent size.")
    activation: ActivationField = Field("relu", description="Hidden activation.")


@MODELS.register("vae", params=VAEParams, losses=("elbo",), inputs="any")
def vae(params: VAEParams, in_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Variational autoencoder with the reparameterization z = mu + sigma * eps (Kingma & Welling 2014; Liquet et al., sec. 8.1)."""
    from registry._vae import VAE

    def make() -> nn.Module:
        return ACTIVATIONS.get(params.activation.type).builder(params.activation)

    return VAE(in_shape, list(params.hidden), params.latent, make)


class ELBOParams(Params):
    likelihood: Literal["gaussian", "bernoulli"] = Field(
        "bernoulli", description="p(x|z): Bernoulli on logits (inputs in [0, 1]) or unit-variance Gaussian (squared error / 2)."
    )
    beta: float | int = Field(1.0, ge=0, description="Weight of the KL term (beta-VAE; 1 is the ELBO).")


@LOSSES.register("elbo", params=ELBOParams, task="regression")
def elbo(params: ELBOParams) -> LossHead:
    """Negative ELBO per example: reconstruction NLL + beta * KL(q(z|x) || N(0, I)) (Liquet et al., sec. 8.1)."""
    from registry._vae import ELBOHead

    return ELBOHead(params.likelihood, float(params.beta))
