"""Search fixtures: a small searchable spec, and a fresh PostgreSQL schema per test."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import ROOT, subprocess_env

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
#: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the project ships psycopg2.
PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"

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
        [sys.executable, "-m", "runner", *args], cwd=cwd, env=subprocess_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


@pytest.fixture
def pg_urls() -> Iterator[tuple[str, str]]:
    """Two PostgreSQL URLs, for Optuna and for MLflow, each in a fresh schema dropped
    afterwards (the two must not share one: both keep an ``alembic_version`` table).
    Skipped when the server is absent, unless SPECRUN_REQUIRE_PG=1 (then it fails)."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        connection = psycopg2.connect(PG_DSN, connect_timeout=3)
    except psycopg2.OperationalError as error:
        if os.environ.get("SPECRUN_REQUIRE_PG") == "1":
            pytest.fail(f"SPECRUN_REQUIRE_PG=1 but PostgreSQL at 127.0.0.1:5432 (db test) is unreachable: {error}")
        pytest.skip(f"needs PostgreSQL at 127.0.0.1:5432, db test (unreachable: {str(error).strip()})")
    connection.autocommit = True
    schemas = [f"specrun_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    with connection.cursor() as cursor:
        for schema in schemas:
            cursor.execute(f"CREATE SCHEMA {schema}")
    try:
        optuna_url, mlflow_url = (f"{PG_URL}?options=-csearch_path%3D{schema}" for schema in schemas)
        yield optuna_url, mlflow_url
    finally:
        with connection.cursor() as cursor:
            for schema in schemas:
                cursor.execute(f"DROP SCHEMA {schema} CASCADE")
        connection.close()


__all__ = ["ROOT", "pg_urls", "popen_runner", "runner", "search_spec"]
