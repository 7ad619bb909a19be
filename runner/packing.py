"""A nested state (dicts, lists, tuples, tensors, plain values) packed into a few flat tensors.

Why: ``torch.save`` pays per tensor and per Python object (a zip record, a pickler callback
each), and a small model's checkpoint is dozens of small tensors (weights, two moments and a
step per parameter, RNG states). Packed, it is one buffer per device and dtype plus a JSON
layout, and packing is the snapshot itself: one copy per buffer, taken in the training loop,
after which the background writer pickles a handful of objects instead of hundreds (which
held the GIL the loop needed, a fifth of a 20-ms epoch).
"""

from __future__ import annotations

import json
from typing import Any

import torch

_KEY = "specrun.packed"
_TENSOR = "specrun.tensor"


def is_packed(value: Any) -> bool:
    return isinstance(value, dict) and _KEY in value


def pack(state: Any) -> dict[str, Any]:
    """A copy of ``state`` whose tensors are slices of one buffer per (device, dtype)."""
    leaves: list[torch.Tensor] = []

    def strip(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            leaves.append(value.detach())
            return (_TENSOR, len(leaves) - 1)
        if isinstance(value, dict):
            return {key: strip(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(strip(item) for item in value)
        return value

    tree = strip(state)
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for index, leaf in enumerate(leaves):
        groups.setdefault((leaf.device, leaf.dtype), []).append(index)
    buffers, layout = [], [None] * len(leaves)
    for group, indices in enumerate(groups.values()):
        offset = 0
        for index in indices:
            layout[index] = [group, offset, list(leaves[index].shape)]
            offset += leaves[index].numel()
        buffers.append(torch.cat([leaves[index].reshape(-1) for index in indices]))
    return {_KEY: 1, "tree": tree, "layout": json.dumps(layout), "buffers": buffers}


def unpack(packed: dict[str, Any]) -> Any:
    """The state ``pack`` was given. Each tensor gets its own storage: some consumers read
    a tensor's memory from the start of its storage (``torch.set_rng_state`` crashes on a
    view at an offset)."""
    buffers = packed["buffers"]
    tensors = []
    for group, offset, shape in json.loads(packed["layout"]):
        numel = 1
        for size in shape:
            numel *= size
        tensors.append(buffers[group][offset : offset + numel].view(shape).clone())

    def fill(value: Any) -> Any:
        if isinstance(value, tuple) and len(value) == 2 and value[0] == _TENSOR:
            return tensors[value[1]]
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(fill(item) for item in value)
        return value

    return fill(packed["tree"])
