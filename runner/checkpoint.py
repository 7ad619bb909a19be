"""The training state after an epoch: everything a killed run needs to continue bit-identically.

A checkpoint holds the model, optimizer and scheduler states, every random generator
(torch CPU and CUDA, NumPy, Python, and the shuffle generator that decides the data order),
the epoch, the last epoch's order, the early-stopping state with the best weights so far,
and the history of per-epoch metrics. It is a plain dict of tensors and Python values, so
``torch.load(weights_only=True)`` reads it: a checkpoint fetched from MLflow is data, not code.

:class:`CheckpointWriter` saves it atomically (a temporary file, then ``os.replace``: a kill
at any instant leaves the previous checkpoint or the new one, never a torn file) and
mirrors it to the run's artifacts, both from a background thread, so the loop never waits for it.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import torch

if TYPE_CHECKING:
    from runner.build import Pipeline
    from runner.tracking import Tracker

FORMAT = 1
#: A run's checkpoint lives in LOCAL_DIR/<run_id>/FILE and in its artifacts as ARTIFACT_DIR/FILE.
LOCAL_DIR = Path(".specrun") / "checkpoints"
ARTIFACT_DIR = "checkpoints"
FILE = "last.pt"


def rng_state(order_rng: torch.Generator) -> dict[str, Any]:
    """Every generator a training step may draw from."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss, "gauss": gauss},
        "python": random.getstate(),
        "order": order_rng.get_state(),
    }


def set_rng_state(state: dict[str, Any], order_rng: torch.Generator) -> None:
    """Put back what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(state["python"])
    order_rng.set_state(state["order"])


def capture(
    pipeline: Pipeline,
    *,
    epoch: int,
    order_rng: torch.Generator,
    order: torch.Tensor,
    stopping: Any,
    best_state: Optional[dict[str, torch.Tensor]],
    history: list[dict[str, float]],
) -> dict[str, Any]:
    """The training state after ``epoch`` (references, not copies: save it before training on)."""
    scheduler = pipeline.scheduler
    return {
        "format": FORMAT,
        "epoch": epoch,
        "model": pipeline.model.state_dict(),
        "optimizer": pipeline.optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),  # type: ignore[attr-defined]
        "rng": rng_state(order_rng),
        "order": order.cpu(),
        "early_stopping": None if stopping is None else {
            "best": stopping.best, "best_epoch": stopping.best_epoch, "waited": stopping.waited,
        },
        "best_model": best_state,
        "history": history,
    }


def restore(
    state: dict[str, Any], pipeline: Pipeline, order_rng: torch.Generator, stopping: Any
) -> tuple[int, list[dict[str, float]], Optional[dict[str, torch.Tensor]]]:
    """Load ``state`` into the live objects; returns (epoch, history, best weights so far)."""
    if state.get("format") != FORMAT:
        raise ValueError(f"checkpoint format must be {FORMAT}, but got {state.get('format')!r}")
    pipeline.model.load_state_dict(state["model"])
    pipeline.optimizer.load_state_dict(state["optimizer"])
    if pipeline.scheduler is not None and state["scheduler"] is not None:
        pipeline.scheduler.load_state_dict(state["scheduler"])  # type: ignore[attr-defined]
    if stopping is not None and state["early_stopping"] is not None:
        es = state["early_stopping"]
        stopping.best, stopping.best_epoch, stopping.waited = es["best"], es["best_epoch"], es["waited"]
    set_rng_state(state["rng"], order_rng)
    return state["epoch"], list(state["history"]), state["best_model"]


def save(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same directory, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: Path, device: Optional[torch.device] = None) -> dict[str, Any]:
    """Read a checkpoint; tensors land on ``device`` (the RNG states stay on the CPU)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if device is not None and device.type != "cpu":
        for key in ("model", "best_model"):
            if state.get(key) is not None:
                state[key] = {k: v.to(device) for k, v in state[key].items()}
    return state


def _snapshot(state: Any) -> Any:
    """A copy whose tensors training will not change (the state holds live references)."""
    from torch.utils._pytree import tree_map

    return tree_map(lambda leaf: leaf.detach().clone() if isinstance(leaf, torch.Tensor) else leaf, state)


class CheckpointWriter:
    """Saves each checkpoint to ``directory/last.pt`` and logs it as the run's artifact
    ``checkpoints/last.pt``, both from a background thread: the loop only copies the state
    (a snapshot) and trains on. A newer checkpoint supersedes one not yet written.

    An upload reads a hard link to the file it was given (a new ``last.pt`` is a new
    inode), so it never sees a half-replaced file. ``close`` waits for the newest checkpoint
    to be saved and logged.
    """

    def __init__(self, directory: Path, tracker: Tracker, extra: Optional[dict[str, Any]] = None) -> None:
        self.directory, self.tracker, self.extra = directory, tracker, dict(extra or {})
        self.path = directory / FILE
        self._staging = directory / "upload"
        shutil.rmtree(self._staging, ignore_errors=True)  # left over by a killed process
        self._pending: Optional[dict[str, Any]] = None
        self._closing = False
        self._error: Optional[BaseException] = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._write_loop, name="specrun-checkpoint-writer", daemon=True)
        self._thread.start()

    def __call__(self, state: dict[str, Any]) -> None:
        snapshot = _snapshot({**state, **self.extra})
        with self._cond:
            self._pending = snapshot  # replaces one the thread has not taken yet
            self._cond.notify()

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                if self._pending is None:
                    return
                state, self._pending = self._pending, None
            save(state, self.path)
            stage = self._staging / f"epoch-{state['epoch']}" / FILE
            stage.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(self.path, stage)
            except OSError:  # a file system without hard links
                shutil.copyfile(self.path, stage)
            try:
                self.tracker.log_artifact(stage, ARTIFACT_DIR)
            except Exception as error:  # tracking trouble must not stop training
                self._error = error
            finally:
                shutil.rmtree(stage.parent, ignore_errors=True)

    def close(self) -> None:
        """Wait until the newest checkpoint is saved and logged; warn (once) if an upload failed."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        if self._error is not None:
            print(
                f"specrun: warning: could not log the checkpoint to MLflow ({self._error}); "
                f"the local copy is {self.path}", file=sys.stderr,
            )
