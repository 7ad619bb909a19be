"""The read side of the run record: what MLflow holds about a past run, for ``--resume``
and ``runner reproduce``. Reads go straight to MLflow's client, not through the tracking
process: they happen before a run starts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from runner.tracking import record


@dataclass(frozen=True)
class RunRecord:
    """What ``--resume`` needs to know about an existing run."""

    run_id: str
    status: str
    tags: dict[str, str]
    #: The highest epoch step of ``train/loss`` logged so far (0 for none).
    last_epoch: int


def fetch_run(uri: str, run_id: str) -> RunRecord:
    """Status, tags and logged progress of a run; ``LookupError`` when the store has no such run."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        raise LookupError(f"no run {run_id!r} in the tracking store {uri}") from error
    steps = [m.step for m in client.get_metric_history(run_id, record.TRAIN_LOSS)]
    return RunRecord(run_id, run.info.status, dict(run.data.tags), max(steps, default=0))


def child_runs(uri: str, parent_id: str) -> dict[str, tuple[str, str]]:
    """The child runs of a run, by run name: (run id, status)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(parent_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'", max_results=50000)
    return {str(r.info.run_name): (r.info.run_id, r.info.status) for r in children}


def download_artifact(uri: str, run_id: str, path: str, destination: Path) -> Path | None:
    """Copy one artifact of a run into ``destination``; None when the run has no such artifact."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    folder = path.rpartition("/")[0] or None
    if path not in {a.path for a in client.list_artifacts(run_id, folder)}:
        return None
    destination.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(destination)))


@dataclass
class RecordedRun:
    """What MLflow holds about a past run, as ``runner reproduce`` needs it."""

    run_id: str
    experiment: str
    status: str
    tags: dict[str, str]
    metrics: dict[str, float]
    #: The text of each small artifact asked for that the run has.
    artifacts: dict[str, str] = field(default_factory=dict)


def read_run(uri: str, run_id: str, artifacts: tuple[str, ...] = ()) -> RecordedRun:
    """Tags, latest metrics and the named top-level text artifacts of run ``run_id``.

    Raises LookupError when the store has no such run.
    """
    for name in ("alembic", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import tempfile

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        raise LookupError(f"no run {run_id!r} in {uri}: {error.message}") from error
    experiment = client.get_experiment(run.info.experiment_id).name
    present = {a.path for a in client.list_artifacts(run_id)}
    texts = {}
    # MLflow draws a progress bar per download; for a few small text files it is only noise.
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        with tempfile.TemporaryDirectory(prefix="specrun-") as scratch:
            for name in artifacts:
                if name in present:
                    texts[name] = Path(client.download_artifacts(run_id, name, scratch)).read_text()
    finally:
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar
    return RecordedRun(run_id, experiment, run.info.status, dict(run.data.tags), dict(run.data.metrics), texts)
