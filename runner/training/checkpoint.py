"""The training state after an epoch: everything a killed run needs to continue bit-identically.

A checkpoint holds the model, optimizer and scheduler states, every random generator
(torch CPU and CUDA, NumPy, Python, and the shuffle generator that decides the data order),
the epoch, the last epoch's order, the early-stopping state with the best weights so far,
and the history of per-epoch metrics. It is a plain dict of tensors and Python values, so
``torch.load(weights_only=True)`` reads it: a checkpoint fetched from MLflow is data, not code.
Python's RNG state is stored as one tensor and the history as one JSON text: pickling them
object by object (625 ints, a dict per epoch) was most of the cost of a small model's
checkpoint, paid every epoch.

:class:`CheckpointWriter` saves it atomically (a temporary file, then ``os.replace``: a kill
at any instant leaves the previous checkpoint or the new one, never a torn file) and
mirrors it to the run's artifacts, both from a background thread, so the loop never waits for it.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from runner.runtime.warning_lines import warn
from runner.tracking import record
from runner.training import packing

if TYPE_CHECKING:
    from runner.tracking.tracker import Tracker
    from runner.training.pipeline import Pipeline

FORMAT = 2
#: A run's checkpoint lives in LOCAL_DIR/<run_id>/FILE and in its artifacts as record.CHECKPOINT_DIR/FILE.
LOCAL_DIR = Path(".specrun") / "checkpoints"
FILE = "last.pt"
#: The MLflow copy of the checkpoint is refreshed at most this often (and when the run ends).
MIRROR_SECONDS = 5.0


def rng_state(order_rng: torch.Generator) -> dict[str, Any]:
    """Every generator a training step may draw from."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": pos, "has_gauss": has_gauss, "gauss": gauss},
        "python": {"version": version, "state": torch.from_numpy(np.array(internal, dtype=np.int64)), "gauss": python_gauss},
        "order": order_rng.get_state(),
    }


def set_rng_state(state: dict[str, Any], order_rng: torch.Generator) -> None:
    """Put back what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"].tolist()), p["gauss"]))
    order_rng.set_state(state["order"])


class HistoryText:
    """Per-epoch metrics as the JSON text a checkpoint holds, each epoch encoded once: encoding
    the whole history every epoch grew with the run (3 ms an epoch by epoch 3000, 14 ms for a
    batch of four members). The history must only grow."""

    def __init__(self) -> None:
        self._encoded: list[str] = []

    def __call__(self, history: list[Any]) -> str:
        self._encoded += [json.dumps(entry) for entry in history[len(self._encoded) :]]
        return "[" + ", ".join(self._encoded) + "]"  # as json.dumps(history) writes it


def capture(
    pipeline: Pipeline,
    *,
    epoch: int,
    order_rng: torch.Generator,
    order: torch.Tensor,
    stopping: Any,
    best_state: dict[str, torch.Tensor] | None,
    history: str,
) -> dict[str, Any]:
    """The training state after ``epoch`` (references, not copies: save it before training on);
    ``history``: the per-epoch metrics as JSON (:class:`HistoryText`)."""
    scheduler = pipeline.scheduler
    return {
        "format": FORMAT,
        "epoch": epoch,
        "model": pipeline.model.state_dict(),
        "optimizer": pipeline.optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": rng_state(order_rng),
        "order": order.cpu(),
        "early_stopping": None
        if stopping is None
        else {
            "best": stopping.best,
            "best_epoch": stopping.best_epoch,
            "waited": stopping.waited,
        },
        "best_model": best_state,
        "history": history,
    }


def restore(
    state: dict[str, Any], pipeline: Pipeline, order_rng: torch.Generator, stopping: Any
) -> tuple[int, list[dict[str, float]], dict[str, torch.Tensor] | None]:
    """Load ``state`` into the live objects; returns (epoch, history, best weights so far)."""
    if state.get("format") != FORMAT:
        raise ValueError(f"checkpoint format must be {FORMAT}, but got {state.get('format')!r}")
    pipeline.model.load_state_dict(state["model"])
    pipeline.optimizer.load_state_dict(state["optimizer"])
    if pipeline.scheduler is not None and state["scheduler"] is not None:
        pipeline.scheduler.load_state_dict(state["scheduler"])
    if stopping is not None and state["early_stopping"] is not None:
        es = state["early_stopping"]
        stopping.best, stopping.best_epoch, stopping.waited = es["best"], es["best_epoch"], es["waited"]
    set_rng_state(state["rng"], order_rng)
    return state["epoch"], _history(state), state["best_model"]


def _history(state: dict[str, Any]) -> list[dict[str, float]]:
    """The per-epoch metrics of a checkpoint as written (JSON text) or as loaded (a list)."""
    history = state["history"]
    return json.loads(history) if isinstance(history, str) else list(history)


def save(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` (plain or already packed) to ``path`` packed (:mod:`runner.training.packing`)
    and atomically: a temporary file in the same directory, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state if packing.is_packed(state) else packing.pack(state), tmp)
    os.replace(tmp, path)


def load(path: Path, device: torch.device | None = None) -> dict[str, Any]:
    """Read a checkpoint; tensors land on ``device`` (the RNG states stay on the CPU)."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    state = packing.unpack(raw) if packing.is_packed(raw) else raw  # format 1 was not packed
    if "history" in state:
        state["history"] = _history(state)
    if device is not None and device.type != "cpu":
        for key in ("model", "best_model"):
            if state.get(key) is not None:
                state[key] = {k: v.to(device) for k, v in state[key].items()}
    return state


class CheckpointWriter:
    """Saves each checkpoint to ``directory/last.pt`` and mirrors the newest one to the run's
    artifact ``checkpoints/last.pt``, both from a background thread: the loop only copies the
    state (a snapshot) and trains on. A newer checkpoint supersedes one not yet written.

    Every checkpoint is saved locally; the MLflow copy is refreshed at most every
    ``mirror_seconds`` (and on ``close``), like the held metrics: uploading each of a small
    model's 20-ms epochs cost more than the epochs. The MLflow copy is therefore at most
    ``mirror_seconds`` older than the local one, never torn, and ``--resume`` continues
    bit-identically from either.

    An upload reads a hard link to the file it was given (a new ``last.pt`` is a new
    inode), so it never sees a half-replaced file. ``close`` waits for the newest checkpoint
    to be saved and logged.
    """

    def __init__(
        self,
        directory: Path,
        tracker: Tracker,
        extra: dict[str, Any] | None = None,
        mirror_seconds: float = MIRROR_SECONDS,
    ) -> None:
        self.directory, self.tracker, self.extra = directory, tracker, dict(extra or {})
        self.path = directory / FILE
        self.mirror_seconds = mirror_seconds
        self._staging = directory / "upload"
        shutil.rmtree(self._staging, ignore_errors=True)  # left over by a killed process
        self._pending: tuple[int, dict[str, Any]] | None = None
        self._closing = False
        self._error: BaseException | None = None
        self._mirrored_at = -math.inf
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._write_loop, name="specrun-checkpoint-writer", daemon=True)
        self._thread.start()

    def __call__(self, state: dict[str, Any]) -> None:
        snapshot = packing.pack({**state, **self.extra})  # the copy training will not change
        with self._cond:
            self._pending = (state["epoch"], snapshot)  # replaces one the thread has not taken yet
            self._cond.notify()

    def _mirror_wait(self, unmirrored: int | None) -> float | None:
        """Seconds until the saved-but-unmirrored checkpoint is due in MLflow (None: nothing to mirror)."""
        if unmirrored is None:
            return None
        return max(0.0, self._mirrored_at + self.mirror_seconds - time.monotonic())

    def _write_loop(self) -> None:
        unmirrored: int | None = None  # epoch of the saved checkpoint MLflow lacks
        while True:
            with self._cond:
                while self._pending is None and not self._closing and self._mirror_wait(unmirrored) != 0.0:
                    self._cond.wait(self._mirror_wait(unmirrored))
                taken, self._pending = self._pending, None
                closing = self._closing
            if taken is not None:
                try:
                    save(taken[1], self.path)
                    unmirrored = taken[0]
                except Exception as error:  # a full disk must not stop training; close() warns
                    self._error = error
            if unmirrored is not None and (closing or self._mirror_wait(unmirrored) == 0.0):
                self._mirror(unmirrored)
                unmirrored = None
            if closing and taken is None:
                return

    def _mirror(self, epoch: int) -> None:
        stage = self._staging / f"epoch-{epoch}" / FILE
        try:
            stage.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(self.path, stage)
            except OSError:  # a file system without hard links
                shutil.copyfile(self.path, stage)
            self.tracker.log_artifact(stage, record.CHECKPOINT_DIR)
        except Exception as error:  # tracking trouble must not stop training; close() warns
            self._error = error
        finally:
            shutil.rmtree(stage.parent, ignore_errors=True)
            self._mirrored_at = time.monotonic()

    def close(self) -> None:
        """Wait until the newest checkpoint is saved and logged; warn (once) if an upload failed."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        if self._error is not None:
            warn(f"a checkpoint could not be saved or logged to MLflow ({self._error}); the newest local copy is {self.path}")
