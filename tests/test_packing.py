"""Packing a nested training state into a few buffers: the round trip is exact."""

from __future__ import annotations

import torch

from runner.training import packing


def test_pack_round_trips_every_kind_of_leaf_and_copies_the_tensors() -> None:
    weights = torch.randn(3, 4)
    state = {
        "model": {"w": weights, "b": torch.zeros(4), "step": torch.tensor(7.0)},
        "rng": torch.randint(0, 255, (16,), dtype=torch.uint8),
        "order": torch.arange(5, 0, -1),
        "columns": weights[:, 1],  # a non-contiguous view
        "empty": torch.empty(0, 2),
        "groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1]}],
        "none": None,
        "text": "[1, 2]",
    }
    original = weights.clone()
    packed = packing.pack(state)
    assert packing.is_packed(packed) and not packing.is_packed(state)
    assert len(packed["buffers"]) == 3  # float32, uint8, int64
    weights.add_(1.0)  # training goes on: the packed copy must not change
    restored = packing.unpack(packed)
    assert torch.equal(restored["model"]["w"], original)
    assert restored["model"]["step"].shape == () and restored["model"]["step"].item() == 7.0
    for key in ("rng", "order", "empty"):
        assert torch.equal(restored[key], state[key]) and restored[key].dtype == state[key].dtype
    assert torch.equal(restored["columns"], original[:, 1])
    assert restored["groups"] == state["groups"] and isinstance(restored["groups"][0]["betas"], tuple)
    assert restored["none"] is None and restored["text"] == "[1, 2]"


def test_a_state_without_tensors_packs_to_no_buffers() -> None:
    packed = packing.pack({"epoch": 3, "history": "[]"})
    assert packed["buffers"] == [] and packing.unpack(packed) == {"epoch": 3, "history": "[]"}
