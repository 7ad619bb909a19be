"""How runs reach MLflow: a small ``Tracker`` protocol and its implementations.

Reading past runs back (``--resume``, ``runner reproduce``) is ``past_runs.py``; the names of
what a run writes are ``record.py``.

``MlflowTracker`` writes through a ``Store``: MLflow in this process (``store.py``,
imported on first use, so nothing else pays for it) or in the tracking process that
``runner run`` starts (``process.py``). Metrics are held and written in batches
(every ``FLUSH_SECONDS``, sooner early in a run with the tracking process, with the params,
and at the end).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from runner.runtime.warning_lines import warn
from runner.tracking import record
from runner.tracking.provenance import without_credentials

if TYPE_CHECKING:
    from runner.tracking.store import MetricRow, Pair

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
#: Per-epoch metrics are held and written in one batch at most this often (and at the end):
#: one database write per epoch cost a third of a small run. A killed run loses at most this
#: many seconds of held epochs, which ``--resume`` re-logs from its checkpoint's history.
FLUSH_SECONDS = 5.0
#: With the tracking process a write costs this process only a message, so a run's first
#: batch is due after this many seconds, and each next one after 1.5 times the last interval,
#: up to ``FLUSH_SECONDS``: the write that the end of a short run waits for then holds its
#: last few epochs, not all of them (100 rows took 20-30 ms, 5 rows 9-11 ms), and the
#: helper, on another core, writes a dozen more batches in a run's first seconds.
EARLY_FLUSH_SECONDS = 0.05
#: Where a too-long param value points the reader instead.
HASH_MARKER = "sha256:{digest}, see spec.resolved.yaml"


def tracking_uri(cli_uri: str | None, spec_uri: str | None) -> str:
    """``--tracking-uri`` beats the spec, which beats ``$MLFLOW_TRACKING_URI``, then the default.

    A relative SQLite path is made absolute, against the current directory: MLflow caches a
    store by its URI, so in a process that changes directory (a notebook, a test session)
    ``sqlite:///mlflow.db`` would go on naming the first directory's database.
    """
    uri = cli_uri or spec_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return uri
    path, _, query = uri[len(prefix) :].partition("?")
    if not path or path.startswith(":memory:") or os.path.isabs(path):
        return uri
    return prefix + os.path.abspath(path) + (f"?{query}" if query else "")


def unreachable_server(uri: str, timeout: float = 5.0) -> str | None:
    """Why the tracking server of an http(s) URI cannot be reached at all (connection refused,
    unknown host), or None: a check of seconds before anything runs, instead of minutes of
    MLflow's retries after the first epoch (a mistyped port). A URI reached through a proxy,
    or not a server's, is not checked."""
    import socket
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname):
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except (OSError, ValueError) as error:
        return f"the MLflow tracking server {without_credentials(uri)} cannot be reached ({error}); is it running, and is the URI right?"
    return None


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested spec data -> ``{"optimizer.lr": "0.001", "model.hidden": "[64, 32]"}``."""
    if isinstance(data, dict):
        items: dict[str, str] = {}
        for key, value in data.items():
            items |= flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return items
    if isinstance(data, list) and any(isinstance(v, (dict, list)) for v in data):
        items = {}
        for i, value in enumerate(data):
            items |= flatten(value, f"{prefix}.{i}")
        return items
    return {prefix: str(data)}


def fit_param_value(value: str, limit: int) -> str:
    """A value within MLflow's length limit; an over-long one becomes a visible hash marker."""
    if len(value) <= limit:
        return value
    return HASH_MARKER.format(digest=hashlib.sha256(value.encode()).hexdigest())


_METRICS_PER_BATCH = 1000  # MLflow's limit on metrics (and params and tags) in one log_batch


class Tracker(Protocol):
    """What a run reports to; the loop sees only ``epoch_end``."""

    @property
    def run_id(self) -> str | None: ...

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_params(self, params: dict[str, str]) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...
    def log_dataset(self, row: dict[str, Any]) -> None: ...
    def log_artifact(self, path: Path, artifact_path: str | None = None, *, kept: bool = False) -> None: ...
    def end(self, status: str) -> None: ...


class NullTracker:
    """Tracks nothing (``--no-track`` and tests of the loop)."""

    run_id: str | None = None

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_params(self, params: dict[str, str]) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...
    def log_dataset(self, row: dict[str, Any]) -> None: ...
    def log_artifact(self, path: Path, artifact_path: str | None = None, *, kept: bool = False) -> None: ...
    def end(self, status: str) -> None: ...


class Store(Protocol):
    """Where an ``MlflowTracker`` writes: ``MlflowStore`` in this process, or the same calls
    carried out by the tracking process (``TrackingProcess``). ``create_run`` may answer with
    a stand-in id, which the other calls accept and ``resolve`` turns into the run's own."""

    writes_in_background: bool

    def limits(self) -> tuple[int, int]: ...
    def open_store(self, uri: str) -> None: ...
    def create_run(self, uri: str, experiment: str, run_name: str | None, tags: dict[str, str]) -> str: ...
    def resolve(self, run_id: str) -> str: ...
    def run_exists(self, uri: str, run_id: str) -> bool: ...
    def reopen_run(self, uri: str, run_id: str) -> None: ...
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricRow] = (),
        params: Sequence[Pair] = (),
        tags: Sequence[Pair] = (),
    ) -> None: ...
    def log_artifact(self, run_id: str, path: str, artifact_path: str | None, kept: bool = False) -> None: ...
    def log_dataset(self, run_id: str, row: dict[str, Any]) -> None: ...
    def end_run(self, run_id: str, status: str) -> None: ...
    def tag_run(self, uri: str, run_id: str, tags: Sequence[Pair]) -> None: ...
    def disown(self, run_id: str) -> None: ...
    def wait(self) -> None: ...


_process: Store | None = None
_local: Store | None = None


def start_tracking_process(abandoned: str | None = None) -> None:
    """From now on, carry out this process's MLflow writes in a helper process (see
    ``runner/tracking/process.py``); ``runner run`` and ``runner search`` call this first
    thing, so that MLflow starts up on another core. ``abandoned``: the ``specrun.error`` of
    runs this process leaves open when it dies (a default that suits ``runner run``).
    ``SPECRUN_TRACKING_PROCESS=0`` keeps the writes in this process."""
    global _process
    if _process is not None or os.environ.get("SPECRUN_TRACKING_PROCESS", "1") == "0" or os.name != "posix":
        return
    import atexit

    from runner.tracking.process import TrackingProcess

    try:
        process = TrackingProcess() if abandoned is None else TrackingProcess(abandoned)
    except OSError as error:  # no process to be had (limits, a sandbox): MLflow stays here
        warn(f"no tracking process ({error}); MLflow runs in this process")
        return
    atexit.register(process.close)  # waits for the last writes
    _process = process


def store() -> Store:
    """The tracking process when one was started, else MLflow in this process."""
    global _local
    if _process is not None:
        return _process
    if _local is None:
        from runner.tracking.store import MlflowStore

        _local = MlflowStore()
    return _local


def open_store_early(uri: str) -> None:
    """Let the tracking process open (or create) the store at ``uri`` while this process goes
    on; without one, the store opens when the run is created, as before."""
    if _process is not None:
        _process.open_store(uri)


class MlflowTracker:
    """One MLflow run, created on construction; ``end`` marks it FINISHED, FAILED or KILLED.

    With the tracking process the run is created while the loop starts: ``run_id`` waits for
    it, and so does the end of the first epoch, so a store that cannot take the run stops the
    run after one epoch.
    """

    def __init__(
        self,
        uri: str,
        experiment: str,
        *,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> None:
        # Plain str: a str subclass (torch.__version__) would import its module to unpickle.
        run_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        if parent_run_id:
            run_tags[record.PARENT_RUN_ID] = parent_run_id
        self._start(uri)
        self._id = self._store.create_run(uri, experiment, run_name, run_tags)  # perhaps a stand-in
        self._flushed_at = time.monotonic()  # opening a cold store takes seconds

    def _start(self, uri: str) -> None:
        self.uri = uri
        self._store = store()
        self._limits: tuple[int, int] | None = None
        self.ended = False
        self._held: list[MetricRow] = []
        self._flushed_at = time.monotonic()
        self._interval = EARLY_FLUSH_SECONDS if self._store.writes_in_background else FLUSH_SECONDS

    @classmethod
    def reopen(cls, uri: str, run_id: str, tags: dict[str, str] | None = None) -> MlflowTracker:
        """Attach to an existing run (``--resume``) and set it back to RUNNING; a stale
        ``specrun.error`` from an earlier attempt is removed."""
        self = cls.__new__(cls)
        self._start(uri)
        self._store.reopen_run(uri, run_id)
        self._id = run_id
        self._flushed_at = time.monotonic()
        if tags:
            self.set_tags(tags)
        return self

    @property
    def run_id(self) -> str:
        """The run's MLflow id (with the tracking process: once the run is created; raises
        ``TrackingError`` if it could not be)."""
        return self._store.resolve(self._id)

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """Held, and written in batches (see ``log_metrics``). The run must exist by now: a
        store that could not create it stops the run here, at the end of its first epoch."""
        self._store.resolve(self._id)
        self.log_metrics(metrics, step=epoch)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Held like each epoch's metrics: written with the next params, the next batch due
        (``EARLY_FLUSH_SECONDS``, ``FLUSH_SECONDS``), or when the run ends (each write is a
        database transaction)."""
        now = int(time.time() * 1000)
        self._held += [(str(key), float(value), now, int(step or 0)) for key, value in metrics.items()]
        if time.monotonic() - self._flushed_at >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Write the held metrics now."""
        held, self._held = self._held, []
        for i in range(0, len(held), _METRICS_PER_BATCH):
            self._store.log_batch(self._id, metrics=held[i : i + _METRICS_PER_BATCH])
        self._flushed_at = time.monotonic()
        self._interval = min(FLUSH_SECONDS, self._interval * 1.5)

    def _batch_limits(self) -> tuple[int, int]:
        if self._limits is None:
            self._limits = self._store.limits()
        return self._limits

    def log_params(self, params: dict[str, str]) -> None:
        """Written at once, together with the metrics held so far (one transaction, not two)."""
        value_limit, batch_limit = self._batch_limits()
        items = [(str(k), fit_param_value(str(v), value_limit)) for k, v in params.items()]
        for i in range(0, len(items), batch_limit):
            chunk = items[i : i + batch_limit]
            room = _METRICS_PER_BATCH - len(chunk)  # MLflow's limit counts params and metrics together
            metrics, self._held = self._held[:room], self._held[room:]
            self._store.log_batch(self._id, metrics=metrics, params=chunk)

    def set_tags(self, tags: dict[str, str]) -> None:
        batch_limit = self._batch_limits()[1]
        items = [(str(k), str(v)) for k, v in tags.items()]
        for i in range(0, len(items), batch_limit):
            self._store.log_batch(self._id, tags=items[i : i + batch_limit])

    def log_dataset(self, row: dict[str, Any]) -> None:
        """The run's dataset input (``runner/tracking/dataset_input.py``)."""
        self._store.log_dataset(self._id, row)

    def log_artifact(self, path: Path, artifact_path: str | None = None, *, kept: bool = False) -> None:
        """Stored by the time this returns (a directory with its contents); ``kept``: the caller
        leaves it as it is until the run has ended, so the tracking process may store it
        meanwhile (``end`` waits)."""
        self._store.log_artifact(self._id, str(path), artifact_path, kept)

    def disown(self) -> None:
        """Leave the run to another process to end (a search's parent run, ended by the study's
        last worker): it is not marked KILLED when this process dies."""
        self._store.disown(self._id)

    def wait(self) -> None:
        """Return once what was written so far is in the store (the tracking process writes
        metrics and tags without being waited for; ending a run always waits)."""
        self._store.wait()

    def end(self, status: str) -> None:
        if not self.ended:
            self.flush()
            self._store.end_run(self._id, status)
            self.ended = True


def tag_run(uri: str, run_id: str, tags: dict[str, str]) -> None:
    """Set tags on an existing run without touching its status (a search's best trial),
    through the tracking process when there is one."""
    store().tag_run(uri, run_id, [(str(k), str(v)) for k, v in tags.items()])


def run_exists(uri: str, run_id: str) -> bool:
    """Whether the store at ``uri`` holds the run (not deleted)."""
    return store().run_exists(uri, run_id)


def fail_running(uri: str, experiment: str, tags: dict[str, str], reason: str) -> list[str]:
    """Mark the RUNNING runs that carry ``tags`` FAILED, with ``reason`` as ``specrun.error``
    (a search trial whose worker died: nobody else will end its run)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    query = " and ".join([*(f"tags.`{k}` = '{v}'" for k, v in tags.items()), "attributes.status = 'RUNNING'"])
    ended = []
    for run in client.search_runs([found.experiment_id], query):
        client.set_tag(run.info.run_id, record.ERROR, reason)
        client.set_terminated(run.info.run_id, "FAILED")
        ended.append(run.info.run_id)
    return ended
