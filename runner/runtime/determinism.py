"""Seeding and torch's determinism switches, set from the spec's ``reproducibility`` level."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_reproducibility(level: str) -> None:
    """bitwise: nondeterministic ops raise; tolerant: they warn; off: torch's fast defaults.

    cuBLAS needs a fixed workspace for deterministic matmuls; it must be set before the
    first CUDA call, which is why this runs before the model is built.
    """
    deterministic = level != "off"
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # torch.use_deterministic_algorithms also imports the compiler (torch._inductor, ~2 s)
    # to pass the flag on to compiled code; the eager flag alone is set here, and
    # ``configure_compiler`` passes it on only when a run compiles.
    torch._C._set_deterministic_algorithms(deterministic, warn_only=level == "tolerant")
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def configure_compiler() -> None:
    """Give ``torch.compile`` the determinism level set by ``set_reproducibility``."""
    import torch._inductor.config as inductor_config

    inductor_config.deterministic = torch.are_deterministic_algorithms_enabled()


class DeviceUnavailable(RuntimeError):
    """The spec or the command line asks for a device this machine lacks (exit status 2:
    the commands check it before anything is trained or logged)."""


def resolve_device(requested: str) -> torch.device:
    """``auto`` picks CUDA when present; an unavailable explicit device is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    instead = "; ask for the CPU (--device cpu, or --set device=cpu) or write `device: auto` to use a GPU only where there is one"
    if device.type == "cuda":
        if torch.version.cuda is None:
            raise DeviceUnavailable(f"device {requested!r} was asked for, but this torch {torch.__version__} is a CPU build{instead}")
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f"device {requested!r} was asked for, but no CUDA device is visible here{instead}")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceUnavailable(f"device {requested!r} was asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailable(f"device 'mps' was asked for, but MPS is not available here{instead}")
    return device


def device_name(device: torch.device) -> str:
    """A human-readable device name for the run's tags."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type
