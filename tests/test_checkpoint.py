"""Checkpoints: atomic writes, a complete RNG round trip, and the background MLflow mirror."""

from __future__ import annotations

import json
import pickle
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from runner.tracking.tracker import MlflowTracker
from runner.training import checkpoint


def _draws(order_rng: torch.Generator) -> list[float]:
    return [
        float(torch.rand(())),
        float(np.random.rand()),
        float(np.random.randn()),  # exercises NumPy's cached Gaussian too
        random.random(),
        float(torch.randperm(10, generator=order_rng)[0]),
    ]


def test_rng_state_round_trips_every_generator(tmp_path: Path) -> None:
    order_rng = torch.Generator().manual_seed(7)
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.randn()
    state = checkpoint.rng_state(order_rng)
    # Through a file and a weights-only load, as a resumed run reads it.
    checkpoint.save({"rng": state}, tmp_path / "rng.pt")
    first = _draws(order_rng)
    restored = torch.Generator()
    checkpoint.set_rng_state(checkpoint.load(tmp_path / "rng.pt")["rng"], restored)
    assert _draws(restored) == first


def test_save_replaces_atomically_and_a_failed_save_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "run" / "last.pt"
    checkpoint.save({"epoch": 1, "w": torch.ones(3)}, path)
    checkpoint.save({"epoch": 2, "w": torch.full((3,), 2.0)}, path)
    assert checkpoint.load(path)["epoch"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary left behind
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        checkpoint.save({"epoch": 3, "bad": lambda: None}, path)  # cannot be pickled
    assert checkpoint.load(path)["epoch"] == 2


def test_a_checkpoint_holding_code_is_refused(tmp_path: Path) -> None:
    # A checkpoint fetched from MLflow is data; loading must not run what it contains.
    torch.save({"epoch": 1, "hook": print}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="[Ww]eights only"):
        checkpoint.load(tmp_path / "evil.pt")


def test_writer_mirrors_the_newest_checkpoint_to_mlflow(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(uri, "ckpt")
    writer = checkpoint.CheckpointWriter(tmp_path / "ckpt" / "run", tracker, {"run_id": tracker.run_id})
    for epoch in range(1, 6):
        writer({"epoch": epoch, "w": torch.full((1000,), float(epoch))})
    writer.close()
    assert checkpoint.load(writer.path)["epoch"] == 5
    assert not (writer.directory / "upload").exists() or not any((writer.directory / "upload").iterdir())
    client = MlflowClient(uri)
    assert tracker.run_id is not None
    local = client.download_artifacts(tracker.run_id, "checkpoints/last.pt", str(tmp_path))
    logged = checkpoint.load(Path(local))
    assert logged["epoch"] == 5 and logged["run_id"] == tracker.run_id


def _poll(read: Callable[[], Any], want: Any, seconds: float = 30.0) -> Any:
    """``read()`` until it returns ``want`` or ``seconds`` pass; the last value read."""
    deadline = time.monotonic() + seconds
    while (value := read()) != want and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def test_the_mlflow_copy_follows_the_local_one_within_mirror_seconds(tmp_path: Path) -> None:
    # Every checkpoint is saved locally; MLflow gets the first at once, then the newest at most
    # every mirror_seconds, on its own (no further epoch or close needed).
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(uri, "ckpt")
    assert tracker.run_id is not None
    client = MlflowClient(uri)

    def logged_epoch() -> Any:
        if not client.list_artifacts(tracker.run_id, "checkpoints"):
            return None
        fetched = client.download_artifacts(tracker.run_id, "checkpoints/last.pt", str(tmp_path / f"dl-{time.monotonic_ns()}"))
        return checkpoint.load(Path(fetched))["epoch"]

    writer = checkpoint.CheckpointWriter(tmp_path / "ckpt" / "run", tracker, mirror_seconds=3.0)
    writer({"epoch": 1, "w": torch.ones(10)})
    assert _poll(logged_epoch, 1) == 1
    writer({"epoch": 2, "w": torch.full((10,), 2.0)})
    assert _poll(lambda: checkpoint.load(writer.path)["epoch"] if writer.path.exists() else None, 2) == 2
    assert logged_epoch() == 1  # saved locally at once, not yet mirrored
    assert _poll(logged_epoch, 2) == 2  # mirrored after mirror_seconds, while the run goes on
    writer.close()


def test_the_history_text_is_the_json_of_the_history_as_it_grows() -> None:
    text, history = checkpoint.HistoryText(), []
    for epoch in range(1, 5):
        history.append({"train/loss": 1.0 / epoch, "lr": 0.1})
        assert text(history) == json.dumps(history) and json.loads(text(history)) == history
