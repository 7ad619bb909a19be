"""Multi-process data parallelism: ``runner run --nproc N`` relaunches itself under torchrun.

Each process (rank) trains on its shard of every epoch's order; DDP all-reduces the
gradients, so every rank holds the same weights. Only rank 0 tracks, checkpoints and
prints. Without torchrun's environment every function here is a no-op for one process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn


def world_size() -> int:
    """Processes taking part; torchrun's ``WORLD_SIZE``, else 1."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's index among them; 0 outside torchrun."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Rank 0 is the one that talks to MLflow, writes checkpoints and prints."""
    return rank() == 0


def launch(nproc: int, runner_args: Sequence[str]) -> int:
    """Run ``runner <runner_args>`` in ``nproc`` processes under torchrun; its exit status."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "runner",
        *runner_args,
    ]
    child = subprocess.Popen(command)
    try:
        return child.wait()
    except KeyboardInterrupt:  # torchrun passes it on; the workers mark the run KILLED
        return child.wait()


def setup(device: torch.device) -> torch.device:
    """Join the process group (once per process) and return this rank's device.

    gloo on CPU, nccl on CUDA where each rank takes the GPU of its local rank.
    """
    if world_size() == 1:
        return device
    import torch
    import torch.distributed as dist

    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"--nproc needs one GPU per process, but local rank {local} has none of {torch.cuda.device_count()}")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def shutdown() -> None:
    """Leave the process group, if this process joined one."""
    if world_size() == 1:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The module the training steps call: DDP around ``model`` under torchrun, else ``model``."""
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def grad_sync(net: nn.Module, sync: bool) -> AbstractContextManager[Any]:
    """Skip DDP's all-reduce on micro-batches that do not end an optimizer step."""
    if sync or not hasattr(net, "no_sync"):
        return nullcontext()
    return net.no_sync()  # type: ignore[operator]


def shard(order: torch.Tensor) -> torch.Tensor:
    """This rank's rows of an epoch's order, as DistributedSampler does it: the order is
    padded cyclically to a multiple of the world size, then rank r takes rows r, r+W, ..."""
    world = world_size()
    if world == 1:
        return order
    import torch

    padding = (-len(order)) % world
    if padding:
        order = torch.cat([order, order[:padding]])
    return order[rank() :: world]


def epoch_totals(loss_sum: torch.Tensor, rows: int, first_bad: int) -> tuple[float, int, int]:
    """Summed training loss and rows over all ranks, and the earliest bad step on any rank
    (so that every rank stops together). One read-back per epoch either way."""
    import torch

    if world_size() == 1:
        return float(loss_sum), rows, first_bad
    import torch.distributed as dist

    totals = torch.stack([loss_sum.double(), torch.tensor(float(rows), dtype=torch.float64, device=loss_sum.device)])
    bad = torch.tensor([first_bad], dtype=torch.int64, device=loss_sum.device)
    dist.all_reduce(totals)
    dist.all_reduce(bad, op=dist.ReduceOp.MIN)
    return float(totals[0]), int(totals[1]), int(bad[0])
