"""Search fixtures: a small searchable spec, and runner in a child process (``pg_urls``, the
fresh PostgreSQL schemas, is in tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, subprocess_env

#: A spec whose trials take about a second: breast cancer, a tiny MLP, a few epochs.
SEARCH_SPEC = """\
name: tinysearch
seed: 3
data:
  dataset: breast_cancer
  transforms: [standardize]
  split: {test: 0.2, val: 0.2, stratify: true}
model: {type: mlp, hidden: [8]}
loss: bce
optimizer: {type: adam, lr: 0.01}
train: {epochs: EPOCHS, batch_size: 64, checkpoint_every: 0}
metrics: [accuracy]
search:
  metric: val/loss
  direction: minimize
  n_trials: 4
  sampler: SAMPLER
  pruner: PRUNER
  space:
    optimizer.lr: {type: float, low: 1.0e-4, high: 3.0e-1, log: true}
    model.hidden: {type: categorical, choices: [[4], [16, 8]]}
"""


def search_spec(epochs: int = 3, sampler: str = "tpe", pruner: str = "{type: none}") -> str:
    return SEARCH_SPEC.replace("EPOCHS", str(epochs)).replace("SAMPLER", sampler).replace("PRUNER", pruner)


def runner(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``runner ARGS`` in a child process, as a user would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "runner", *args], cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=600
    )
    if check and done.returncode != 0:
        raise AssertionError(f"runner {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def popen_runner(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


__all__ = ["ROOT", "popen_runner", "runner", "search_spec"]
