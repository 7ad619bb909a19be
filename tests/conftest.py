"""Shared fixtures: tiny specs, an isolated working directory, a real SQLite MLflow store."""

from __future__ import annotations

import os
import signal
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]

TINY_SPEC = """\
name: tiny
seed: 3
data:
  dataset: breast_cancer
  transforms: [standardize]
  split: {test: 0.2, val: 0.2, stratify: true}
model: {type: mlp, hidden: [8], init: {weights: kaiming_normal, bias: zeros}, dropout: 0.1}
loss: bce
regularizer: {type: l2, strength: 1.0e-4}
optimizer: {type: adam, lr: 0.01}
train: {epochs: 3, batch_size: 64}
metrics: [accuracy, roc_auc]
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory, so mlflow.db, mlruns/ and .specrun/ land in tmp."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write YAML text (dedented) to a file in tmp and return its path."""

    def write(text: str = TINY_SPEC, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def subprocess_env() -> dict[str, str]:
    """The environment for running ``runner`` in a child process from the test's venv."""
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PYTHONPATH"] = str(ROOT)
    return env


T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, timeout: float = 120.0, interval: float = 0.1) -> T:
    """Poll ``condition`` until it returns something true, and return that; fail the test,
    saying ``what`` it waited for, after ``timeout`` seconds. Tests wait for what they need
    to see, never for a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(interval)


def descendants(pid: int) -> list[psutil.Process]:
    """The processes started by process ``pid`` (its tracking process, its workers), to be
    waited for with :func:`wait_gone` after it is killed."""
    return psutil.Process(pid).children(recursive=True)


def _gone(process: psutil.Process) -> bool:
    try:  # an orphan's exit may stay a zombie where nobody reaps it (a container's PID 1)
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(processes: list[psutil.Process], what: str, timeout: float = 60.0) -> None:
    """Wait until every one of ``processes`` has exited: what they do before exiting is done."""
    wait_until(lambda: all(_gone(p) for p in processes), f"{what} to exit", timeout=timeout)


@pytest.fixture(scope="session")
def _migrated_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store with its schema migrations done, made once per session."""
    import logging

    from mlflow.tracking import MlflowClient

    for name in ("alembic", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
    path = tmp_path_factory.mktemp("mlflow-store") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def migrated_tracking_uri(tmp_path: Path, _migrated_mlflow_store: Path) -> str:
    """Like ``tracking_uri``, a real SQLite store under tmp, but created by copying a migrated
    empty one: MLflow's schema migrations take seconds per new database."""
    import shutil

    copy = tmp_path / "mlflow.db"
    shutil.copyfile(_migrated_mlflow_store, copy)
    return f"sqlite:///{copy}"


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """This process's SIGINT as Python sets it up, whatever an earlier test left behind."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
#: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the project ships psycopg2.
PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


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


MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306"


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A URL of a fresh MySQL/MariaDB database, dropped afterwards. Skipped when the server
    or pymysql is absent, unless SPECRUN_REQUIRE_MYSQL=1 (then it fails)."""
    required = os.environ.get("SPECRUN_REQUIRE_MYSQL") == "1"
    try:
        import pymysql
    except ImportError:
        if required:
            pytest.fail("SPECRUN_REQUIRE_MYSQL=1 but pymysql is not installed (pip install -e '.[dev]')")
        pytest.skip("needs pymysql: pip install -e '.[dev]'")
    try:
        connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=3, autocommit=True)
    except pymysql.err.OperationalError as error:
        if required:
            pytest.fail(f"SPECRUN_REQUIRE_MYSQL=1 but MySQL/MariaDB at 127.0.0.1:3306 (root) is unreachable: {error}")
        pytest.skip(f"needs MySQL or MariaDB at 127.0.0.1:3306, user root without a password (unreachable: {error})")
    database = f"specrun_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {database}")
    try:
        yield f"{MYSQL_URL}/{database}"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE {database}")
        connection.close()
