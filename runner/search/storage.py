"""Where a study lives, from a URL, and the lock its workers share.

- no ``--storage``: a journal file (Optuna's ``JournalStorage``), ``studies/<spec>.journal``;
  appends are locked, so ``--workers N`` processes on one machine share it safely.
- ``journal:PATH`` or a path ending in ``.journal``/``.log``: a journal file there.
- ``sqlite:///FILE``: one writer only (SQLite locks up under parallel writers).
- ``postgresql://...`` (or any SQLAlchemy URL): ``RDBStorage``.

Both kinds beat heartbeats (the journal through ``runner/search/journal.py``), so that a
trial whose worker died is marked failed and retried with the same parameters.
"""

from __future__ import annotations

import contextlib
import fcntl
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runner.tracking import db_lock

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

#: Told about each trial whose worker stopped beating, before it is re-queued.
StaleCallback = Callable[["FrozenTrial"], None]

#: Seconds between a running trial's heartbeats; a trial silent for GRACE_PERIOD is stale.
HEARTBEAT_INTERVAL = 2
GRACE_PERIOD = 10
#: How often a stale trial is retried before it stays failed.
MAX_RETRY = 3
_JOURNAL_SUFFIXES = (".journal", ".log")


class StorageError(ValueError):
    """A storage URL that cannot be used as asked."""


@dataclass(frozen=True)
class StorageUrl:
    """A parsed ``--storage``: a journal file path, or an RDB URL."""

    kind: str  # "journal" or "rdb"
    target: str

    def __str__(self) -> str:
        return f"journal:{self.target}" if self.kind == "journal" else self.target

    @property
    def public(self) -> str:
        """The URL with any password hidden, for logs, tags and the dashboard command."""
        if self.kind == "journal":
            return str(self)
        from sqlalchemy.engine import make_url

        return make_url(self.target).render_as_string(hide_password=True)


def default_url(spec_file: Path) -> StorageUrl:
    return StorageUrl("journal", str(Path("studies") / f"{spec_file.stem}.journal"))


def parse(url: str | None, spec_file: Path, workers: int = 1) -> StorageUrl:
    """Read ``--storage``; refuse SQLite under parallel workers."""
    if not url:
        return default_url(spec_file)
    if url.startswith("journal:"):
        return StorageUrl("journal", url.removeprefix("journal:").removeprefix("//"))
    if "://" not in url:
        if url.endswith(_JOURNAL_SUFFIXES):
            return StorageUrl("journal", url)
        raise StorageError(
            f"the storage must be a URL (sqlite:///FILE, postgresql://...) or a journal file (journal:PATH, *.journal), but got {url!r}"
        )
    if url.startswith("sqlite") and workers > 1:
        raise StorageError(
            "SQLite locks up under parallel writers, but --workers is "
            f"{workers}; use the default journal file, journal:PATH, or postgresql://..."
        )
    return StorageUrl("rdb", url)


def open_storage(url: StorageUrl, on_stale: StaleCallback | None = None) -> optuna.storages.BaseStorage:
    """The Optuna storage behind ``url``, beating heartbeats: a stale trial is failed and
    retried (after calling ``on_stale`` with it)."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    from runner.search.journal import BeatingJournalStorage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats are, since 2.9
        retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)

    def stale(study: optuna.Study, trial: FrozenTrial) -> None:
        if on_stale is not None:
            on_stale(trial)
        retry(study, trial)

    if url.kind == "journal":
        Path(url.target).parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(url.target, JournalFileOpenLock(url.target))
        return BeatingJournalStorage(backend, HEARTBEAT_INTERVAL, GRACE_PERIOD, stale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(
            url.target,
            engine_kwargs={"pool_pre_ping": True},
            heartbeat_interval=HEARTBEAT_INTERVAL,
            grace_period=GRACE_PERIOD,
            # `failed_trial_callback`/`RetryFailedTrialCallback` are the pre-4.9 names of these.
            heartbeat_stale_trial_callback=stale,
        )


@contextlib.contextmanager
def lock(url: StorageUrl, name: str) -> Iterator[None]:
    """A lock all workers of a storage share, held while one sets up the study (tables,
    MLflow parent run) or counts its trials and starts one, so that together they start
    exactly ``n_trials``: a file lock beside a journal, the database's own lock in
    PostgreSQL and MySQL (``runner/tracking/db_lock.py``). Other databases get none (workers may
    then overshoot by one trial each)."""
    if url.kind == "journal":
        Path(url.target).parent.mkdir(parents=True, exist_ok=True)
        # Not `<journal>.lock`: that name is the journal backend's own lock file.
        with open(f"{url.target}.specrun-lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if not db_lock.supports(url.target):
        yield
        return
    with db_lock.holding(url.target, name):
        yield


__all__ = ["HEARTBEAT_INTERVAL", "GRACE_PERIOD", "StorageError", "StorageUrl", "lock", "open_storage", "parse"]
