"""Optuna's journal-file storage with heartbeats, as its database storage has them.

Optuna's ``JournalStorage`` has none, so a trial whose worker died (killed, out of memory)
stayed RUNNING in the journal and was never retried. Here each running trial's worker
records the time in the trial's system attributes every ``interval`` seconds (a line in
the journal); a trial silent for ``grace`` seconds is stale, and Optuna's
``fail_stale_trials`` fails it and hands it to ``on_stale`` (which re-queues it), as with
``RDBStorage``. The clocks compared are those of the machines sharing the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna
from optuna.storages import JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import BaseJournalBackend
from optuna.trial import FrozenTrial, TrialState

#: The system attribute that holds a running trial's last heartbeat (seconds since the epoch).
HEARTBEAT_ATTR = "specrun:heartbeat"

StaleTrialCallback = Callable[["optuna.Study", FrozenTrial], None]


class BeatingJournalStorage(JournalStorage, BaseHeartbeat):
    """A journal file whose running trials beat a heartbeat; stale ones are failed and retried."""

    def __init__(self, backend: BaseJournalBackend, interval: int, grace: int, on_stale: StaleTrialCallback | None) -> None:
        super().__init__(backend)
        self._interval, self._grace, self._on_stale = interval, grace, on_stale

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        return [trial._trial_id for trial in running if now - _last_beat(trial, now) > self._grace]

    def get_heartbeat_interval(self) -> int:
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> StaleTrialCallback | None:
        return self._on_stale


def _last_beat(trial: FrozenTrial, now: float) -> float:
    """The trial's last heartbeat; its start before the first one is recorded."""
    beat = trial.system_attrs.get(HEARTBEAT_ATTR)
    if beat is not None:
        return float(beat)
    return trial.datetime_start.timestamp() if trial.datetime_start is not None else now
