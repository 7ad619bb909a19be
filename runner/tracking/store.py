"""MLflow's side of a tracked run, spoken in plain data (strings, numbers, tuples).

Plain data so that the same calls can be made in this process or, unchanged, in the
tracking process (``runner/tracking/process.py``): MLflow's own entities would need MLflow
imported on both sides. ``MlflowTracker`` holds metrics and chunks batches; this only writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from runner.runtime.warning_lines import warn
from runner.tracking import db_lock, record

#: ``(key, value, timestamp in ms, step)``, as ``mlflow.entities.Metric`` takes them.
MetricRow = tuple[str, float, int, int]
#: ``(key, value)`` of a param or a tag.
Pair = tuple[str, str]


def import_mlflow() -> None:
    """Import what writing a run needs (~1.5 s) without opening any store: the tracking
    process does this while the runner loads torch and the data."""
    from mlflow.entities import Metric, Param, RunTag  # noqa: F401
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository  # noqa: F401
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore  # noqa: F401
    from mlflow.tracking import MlflowClient  # noqa: F401


#: Stores this process has opened (and so created, when new).
_opened: set[str] = set()


def _client(uri: str) -> Any:
    # Alembic's schema migrations log at INFO on a new SQLite store; users need none of it.
    for name in ("alembic", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    if uri in _opened:
        return MlflowClient(tracking_uri=uri)
    with _creating(uri):
        client = MlflowClient(tracking_uri=uri)  # opens the store: creates and migrates a new one's tables
    _opened.add(uri)
    return client


@contextlib.contextmanager
def _creating(uri: str) -> Iterator[None]:
    """Runs started together on a new store would each create and migrate its tables, and
    all but one fail ("duplicate column name" on SQLite and MySQL, a duplicate key in
    ``pg_type`` on PostgreSQL): the first opening in each process holds a lock the others
    wait for: on the SQLite file, or the database's own (``runner/tracking/db_lock.py``)."""
    if uri.startswith("sqlite:///"):
        with _file_lock(uri.removeprefix("sqlite:///").split("?")[0]):
            yield
        return
    with contextlib.ExitStack() as held:
        if db_lock.supports(uri):
            try:
                held.enter_context(db_lock.holding(uri, "mlflow-store"))
            except Exception:  # a missing driver, an unreachable server: MLflow says so better
                pass
        yield


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """An exclusive lock on the database file (flock: SQLite's own locks are fcntl's, apart)."""
    try:
        handle = open(path, "ab")
    except OSError:  # no such directory, say: MLflow says so better
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


#: Tries at logging a dataset input (see ``MlflowStore.log_dataset``).
_DATASET_ATTEMPTS = 3


class DeletedExperiment(ValueError):
    """The experiment a run belongs in is in MLflow's trash."""


def _experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None and found.lifecycle_stage == "deleted":
        raise DeletedExperiment(
            f"the MLflow experiment {name!r} (id {found.experiment_id}) is deleted: restore it "
            f"(`mlflow experiments restore --experiment-id {found.experiment_id}`), remove it for good "
            "(`mlflow gc`), or log elsewhere (--experiment NAME)"
        )
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name))
    except Exception:  # another worker created it between our two calls
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


class MlflowStore:
    """Creates, writes and ends MLflow runs; remembers the runs it opened and has not ended."""

    #: Each write is a database transaction in the caller's thread.
    writes_in_background = False

    def __init__(self) -> None:
        self._runs: dict[str, tuple[Any, Any]] = {}  # run id -> (client, artifact repository)
        self.open_runs: set[str] = set()
        #: Each run's parent, if any: a member is resumed through it.
        self._parents: dict[str, str | None] = {}
        #: (uri, experiment name) -> id: looking an experiment up by name cost more than
        #: creating the run (MLflow loads its tags), for every fold, seed and trial.
        self._experiments: dict[tuple[str, str], str] = {}
        self._queried: set[str] = set()

    def limits(self) -> tuple[int, int]:
        """MLflow's longest param value and most params (or tags) in one batch."""
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

        return MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

    def open_store(self, uri: str) -> None:
        """Open (and on first use create and migrate) the store at ``uri`` ahead of the run;
        once per store (a query that would only delay the next run's creation)."""
        if uri not in self._queried:
            _client(uri).search_experiments(max_results=1)  # the first query connects
            self._queried.add(uri)

    def create_run(self, uri: str, experiment: str, run_name: str | None, tags: dict[str, str]) -> str:
        """A new RUNNING run in ``experiment`` (created if missing); its id."""
        client = _client(uri)
        known = self._experiments.get((uri, experiment))
        try:
            run = client.create_run(known or self._experiment(client, uri, experiment), run_name=run_name, tags=tags)
        except Exception:
            if known is None:
                raise
            # Deleted since (e.g. by another user): look the name up again, as if never seen.
            run = client.create_run(self._experiment(client, uri, experiment), run_name=run_name, tags=tags)
        self._attach(uri, client, run)
        return str(run.info.run_id)

    def _experiment(self, client: Any, uri: str, name: str) -> str:
        self._experiments[uri, name] = found = _experiment_id(client, name)
        return found

    def run_exists(self, uri: str, run_id: str) -> bool:
        """Whether the store holds the run, not deleted (a study outlives the store it was run with)."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

        try:
            return _client(uri).get_run(run_id).info.lifecycle_stage == "active"
        except MlflowException as error:
            if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                raise
            return False

    def reopen_run(self, uri: str, run_id: str) -> None:
        """Set an existing run back to RUNNING, without the ``specrun.error`` of an earlier attempt."""
        client = _client(uri)
        run = client.get_run(run_id)
        self._attach(uri, client, run)
        client.update_run(run_id, status="RUNNING")
        if record.ERROR in run.data.tags:
            client.delete_tag(run_id, record.ERROR)

    def _attach(self, uri: str, client: Any, run: Any) -> None:
        # The run's artifact store from the run's own record: MlflowClient.log_artifact would
        # look the run up again (a query) for its first artifact. A Databricks URI carries the
        # tracking URI's profile, as MlflowClient builds it.
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
        from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri

        artifact_uri = add_databricks_profile_info_to_artifact_uri(run.info.artifact_uri, uri)
        self._runs[run.info.run_id] = (client, get_artifact_repository(artifact_uri, tracking_uri=uri))
        self.open_runs.add(run.info.run_id)
        self._parents[run.info.run_id] = run.data.tags.get(record.PARENT_RUN_ID)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricRow] = (),
        params: Sequence[Pair] = (),
        tags: Sequence[Pair] = (),
    ) -> None:
        """One write (one database transaction on a SQL store)."""
        from mlflow.entities import Metric, Param, RunTag

        self._runs[run_id][0].log_batch(
            run_id,
            metrics=[Metric(*row) for row in metrics],
            params=[Param(*pair) for pair in params],
            tags=[RunTag(*pair) for pair in tags],
        )

    def log_dataset(self, run_id: str, row: dict[str, Any]) -> None:
        """The run's dataset input, from ``runner/tracking/dataset_input.py``'s plain data."""
        import json

        import numpy as np
        from mlflow.data.schema import TensorDatasetSchema
        from mlflow.entities import Dataset, DatasetInput, InputTag
        from mlflow.types.schema import Schema, TensorSpec

        def tensors(spec: dict[str, Any]) -> Schema:
            return Schema([TensorSpec(np.dtype(spec["dtype"]), tuple(spec["shape"]))])

        schema = TensorDatasetSchema(tensors(row["features"]), tensors(row["targets"]))
        dataset = Dataset(
            name=row["name"],
            digest=row["digest"],
            source_type=row["source_type"],
            source=row["source"],
            schema=json.dumps(schema.to_dict()),
            profile=row["profile"],
        )
        inputs = [DatasetInput(dataset, tags=[InputTag(key, value) for key, value in row["tags"].items()])]
        for attempt in range(_DATASET_ATTEMPTS):
            try:
                self._runs[run_id][0].log_inputs(run_id, inputs)
                return
            except Exception as error:
                # MLflow looks the dataset (name, digest) up, then inserts it: runs started
                # together on the same data race between the two (a unique constraint fails),
                # and the dataset is there for the next attempt.
                if attempt + 1 == _DATASET_ATTEMPTS:
                    # Metadata the run can do without (an old tracking server lacks the call).
                    warn(f"run {run_id}: its dataset input was not logged ({type(error).__name__}: {error})")
                    return
                time.sleep(0.05 * (attempt + 1))

    def tag_run(self, uri: str, run_id: str, tags: Sequence[Pair]) -> None:
        """Set tags on any run of the store, in one write, whatever its status."""
        from mlflow.entities import RunTag

        _client(uri).log_batch(run_id, tags=[RunTag(*pair) for pair in tags])

    def resolve(self, run_id: str) -> str:
        """A run id here is always the run's own (see ``TrackingProcess.create_run``)."""
        return run_id

    def log_artifact(self, run_id: str, path: str, artifact_path: str | None, kept: bool = False) -> None:
        """Stored when this returns (``kept``: that the caller keeps the file until the run ends,
        unused here). A directory is stored with its contents under ``artifact_path``."""
        repository = self._runs[run_id][1]
        if os.path.isdir(path):
            repository.log_artifacts(path, artifact_path)
        else:
            repository.log_artifact(path, artifact_path)

    def wait(self) -> None:
        """Every write here is done when its call returns."""

    def end_run(self, run_id: str, status: str) -> None:
        self._runs[run_id][0].set_terminated(run_id, status)
        self.open_runs.discard(run_id)

    def disown(self, run_id: str) -> None:
        """This process will not end the run (a search's parent run: the study's end does), so
        it is no run to end when the process dies."""
        self.open_runs.discard(run_id)

    def end_open_runs(self, reason: str) -> None:
        """KILLED, tagged ``specrun.error: reason``: the runs nobody will end any more.
        ``{run_id}`` in ``reason`` names the run to resume: its parent, else the run itself."""
        for run_id in sorted(self.open_runs):
            said = reason.replace("{run_id}", self._parents.get(run_id) or run_id)
            try:
                self.log_batch(run_id, tags=[(record.ERROR, said)])
                self.end_run(run_id, "KILLED")
            except Exception as error:  # one run's trouble must not keep the others RUNNING
                logging.getLogger(__name__).warning("could not end run %s: %s", run_id, error)
