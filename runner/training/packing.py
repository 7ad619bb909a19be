"""A nested state (dicts, lists, tuples, tensors, plain values) packed into a few flat tensors.

Why: ``torch.save`` pays per tensor and per Python object (a zip record, a pickler callback
each), and a small model's checkpoint is dozens of small tensors (weights, two moments and a
step per parameter, RNG states). Packed, it is one buffer per device and dtype plus a JSON
layout, and packing is the snapshot itself: one copy per buffer, taken in the training loop,
after which the background writer pickles a handful of objects instead of hundreds (which
held the GIL the loop needed: a 20-ms epoch took a third longer).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import torch

_KEY = "specrun.packed"
_TENSOR = "specrun.tensor"


def is_packed(value: Any) -> bool:
    return isinstance(value, dict) and _KEY in value


def _map(value: Any, is_leaf: Callable[[Any], bool], leaf: Callable[[Any], Any]) -> Any:
    """``value`` with every leaf replaced by ``leaf(it)``, through dicts, lists and tuples."""
    if is_leaf(value):
        return leaf(value)
    if isinstance(value, dict):
        return {key: _map(item, is_leaf, leaf) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map(item, is_leaf, leaf) for item in value)
    return value


def _is_marker(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and value[0] == _TENSOR


def pack(state: Any) -> dict[str, Any]:
    """A copy of ``state`` whose tensors are slices of one buffer per (device, dtype)."""
    leaves: list[torch.Tensor] = []

    def marker(tensor: torch.Tensor) -> tuple[str, int]:
        leaves.append(tensor.detach())
        return (_TENSOR, len(leaves) - 1)

    tree = _map(state, lambda value: isinstance(value, torch.Tensor), marker)
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for index, leaf in enumerate(leaves):
        groups.setdefault((leaf.device, leaf.dtype), []).append(index)
    buffers: list[torch.Tensor] = []
    layout: list[list[Any] | None] = [None] * len(leaves)
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
    tensors = [
        buffers[group][offset : offset + math.prod(shape)].view(shape).clone() for group, offset, shape in json.loads(packed["layout"])
    ]
    return _map(packed["tree"], _is_marker, lambda marker: tensors[marker[1]])
