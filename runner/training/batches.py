"""Where training batches come from: device-resident tensors indexed in place, or a DataLoader.

Both paths walk the same per-epoch order in the same batches, so on CPU they give
bit-identical results; the DataLoader path only changes where the rows live (host memory,
pinned for CUDA) and who gathers them (worker processes).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from runner.training.pipeline import Tensors

#: Data may take at most this share of the device's free memory; the rest is for the model,
#: its activations and the optimizer state.
FIT_SHARE = 0.5


def choose_loader(requested: str, nbytes: int, device: torch.device, free: int | None = None) -> str:
    """``device`` or ``dataloader``. ``auto`` keeps data on the device when it fits: always on
    CPU (the rows are in host memory already), on CUDA when ``nbytes`` is at most
    ``FIT_SHARE`` of the free device memory (``free``, measured when not given)."""
    if requested != "auto":
        return requested
    if device.type != "cuda":
        return "device"
    if free is None:
        free, _ = torch.cuda.mem_get_info(device)
    return "device" if nbytes <= FIT_SHARE * free else "dataloader"


def sizes(rows: int, batch_size: int) -> list[int]:
    """Rows in each batch of an epoch: full batches, then the remainder."""
    return [min(batch_size, rows - start) for start in range(0, rows, batch_size)]


def steps_per_epoch(rows: int, batch_size: int, accumulate: int) -> int:
    """Optimizer steps in an epoch of ``rows`` rows (what per-step schedules count)."""
    return -(-len(sizes(rows, batch_size)) // accumulate)


class _Rows(torch.utils.data.Dataset):
    """A tensor pair a DataLoader gathers whole batches from (``__getitems__``), not row by row."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.as_tensor(indices)
        return self.x[rows], self.y[rows]


class _EpochOrder(torch.utils.data.Sampler):
    """Yields the current epoch's batches of row indices; the loop sets ``order`` each epoch."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.order = torch.empty(0, dtype=torch.int64)

    def __len__(self) -> int:
        return len(sizes(len(self.order), self.batch_size))

    def __iter__(self) -> Iterator[list[int]]:
        for start in range(0, len(self.order), self.batch_size):
            yield self.order[start : start + self.batch_size].tolist()


def _as_is(batch: Any) -> Any:
    return batch


class Batches:
    """An epoch's ``(x, y)`` batches of one part, in the order given, on ``device``."""

    def __init__(self, part: Tensors, batch_size: int, *, loader: str, workers: int, device: torch.device, seed: int) -> None:
        self.part, self.batch_size, self.device = part, batch_size, device
        self.loader: torch.utils.data.DataLoader | None = None
        if loader == "dataloader":
            self._order = _EpochOrder(batch_size)
            self.loader = torch.utils.data.DataLoader(
                _Rows(part.x, part.y),
                batch_sampler=self._order,
                collate_fn=_as_is,
                num_workers=workers,
                persistent_workers=workers > 0,
                pin_memory=device.type == "cuda",
                # Its own generator: creating the iterator must not draw from the global RNG,
                # which dropout uses (a resumed run would otherwise diverge).
                generator=torch.Generator().manual_seed(seed),
            )

    def __call__(self, order: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.loader is None:
            order = order.to(self.device)
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                yield self.part.x[rows], self.part.y[rows]
            return
        self._order.order = order
        for x, y in self.loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
