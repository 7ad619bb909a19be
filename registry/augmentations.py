"""Train-only image augmentations under ``data.augment:``, applied to each training batch.

They act on ``(n, C, H, W)`` batches where they already are (on the device), drawing from
torch's global RNG, which the spec's seed sets and checkpoints save: a run stays
reproducible and resumable. Validation and test data are never augmented (Liquet et al., ch. 5:
random crops; the Fashion-MNIST benchmark's flips, translations and rotations).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pydantic import Field

from registry._registry import Params, Registry

if TYPE_CHECKING:
    import torch

Augment = Callable[["torch.Tensor"], "torch.Tensor"]

AUGMENTATIONS: Registry = Registry("augmentation")


class FlipParams(Params):
    p: float = Field(0.5, ge=0, le=1, description="Probability each image is flipped.")


def _flip(p: float, dim: int) -> Augment:
    import torch

    def apply(x: torch.Tensor) -> torch.Tensor:
        chosen = torch.rand(x.shape[0], device=x.device) < p
        return torch.where(chosen.view(-1, *([1] * (x.dim() - 1))), x.flip(dim), x)

    return apply


@AUGMENTATIONS.register("hflip", params=FlipParams)
def hflip(params: FlipParams) -> Augment:
    """Mirror left-right with probability p."""
    return _flip(params.p, -1)


@AUGMENTATIONS.register("vflip", params=FlipParams)
def vflip(params: FlipParams) -> Augment:
    """Mirror top-bottom with probability p."""
    return _flip(params.p, -2)


class CropParams(Params):
    padding: int = Field(4, ge=1, description="Zero-pad each side by this much, then cut a random window of the original size.")


@AUGMENTATIONS.register("crop", params=CropParams)
def crop(params: CropParams) -> Augment:
    """Random crop with zero padding: a random translation by up to ``padding`` pixels (Liquet et al., ch. 5)."""
    import torch
    from torch.nn import functional as F

    pad = params.padding

    def apply(x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        padded = F.pad(x, (pad, pad, pad, pad)).permute(0, 2, 3, 1)  # (n, H+2p, W+2p, C)
        top = torch.randint(0, 2 * pad + 1, (n,), device=x.device)
        left = torch.randint(0, 2 * pad + 1, (n,), device=x.device)
        rows = (top[:, None] + torch.arange(h, device=x.device))[:, :, None]
        cols = (left[:, None] + torch.arange(w, device=x.device))[:, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None]
        return padded[batch, rows, cols].permute(0, 3, 1, 2).contiguous()

    return apply


class RotateParams(Params):
    degrees: float = Field(10.0, gt=0, le=180, description="Rotate by an angle drawn uniformly from [-degrees, degrees].")


@AUGMENTATIONS.register("rotate", params=RotateParams)
def rotate(params: RotateParams) -> Augment:
    """Small random rotation about the centre, bilinear, zeros outside (torch affine_grid/grid_sample)."""
    import math

    import torch
    from torch.nn import functional as F

    limit = math.radians(params.degrees)

    def apply(x: torch.Tensor) -> torch.Tensor:
        angle = (torch.rand(x.shape[0], device=x.device) * 2 - 1) * limit
        cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    return apply


def compose(specs: Sequence[Params]) -> Augment | None:
    """The spec's augmentations as one batch function, or None when there are none."""
    steps = [AUGMENTATIONS.get(s.type).builder(s) for s in specs]  # type: ignore[attr-defined]
    if not steps:
        return None

    def apply(x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(
                f"data.augment works on image batches (n, C, H, W), but the training inputs are {tuple(x.shape)}; "
                "reshape them to images (transforms: [{type: reshape, shape: [C, H, W]}]) or drop data.augment"
            )
        for step in steps:
            x = step(x)
        return x

    return apply
