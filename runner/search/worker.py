"""One worker's loop: claim a trial, run it with a heartbeat, tell the study; until the study
has its ``n_trials`` or the time is up.

Workers on one machine (``--workers N``) or many (``--storage postgresql://...``) run this
same loop against one study. Counting the trials and starting one happen under the
storage's claim lock, so together they start exactly ``n_trials``: finished ones (complete,
pruned, or failed by an error) plus running ones. A trial whose worker died stops beating;
after the grace period any worker fails it and Optuna re-queues it with the same
parameters, so a worker that finds only running trials left waits for them rather than
leaving a dead one behind.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages import fail_stale_trials
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.trial import TrialState

from runner.search import storage as storages
from runner.search.objective import Context, objective

log = logging.getLogger("runner.search")
#: A user attribute set on trials that failed by an error (counted), unlike dead workers' (retried).
ERROR_ATTR = "specrun.error"


@dataclass
class Counts:
    finished: int
    running: int


def count(study: optuna.Study) -> Counts:
    """Trials that use up the budget: complete, pruned, failed by an error; and running ones."""
    finished = running = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            finished += 1
        elif trial.state == TrialState.FAIL and ERROR_ATTR in trial.user_attrs:
            finished += 1
        elif trial.state == TrialState.RUNNING:
            running += 1
    return Counts(finished, running)


def claim(study: optuna.Study, url: storages.StorageUrl, n_trials: int) -> optuna.Trial | bool:
    """A new trial, ``True`` to wait for running ones, or ``False`` when the study is done."""
    with storages.lock(url, f"study:{study.study_name}"), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats are, since 2.9
        # This loop beats the heartbeat itself (run_trial), as Study.optimize would.
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
        fail_stale_trials(study)
        counts = count(study)
        if counts.finished >= n_trials:
            return False
        if counts.finished + counts.running < n_trials:
            return study.ask()
        # Only running trials are left: wait when a dead worker's trial can still be retried.
        return counts.running > 0 and is_heartbeat_enabled(study._storage)


def run_trial(study: optuna.Study, trial: optuna.Trial, context: Context) -> TrialState:
    """Run ``trial`` while beating its heartbeat; tell the study how it ended."""
    with get_heartbeat_thread(trial._trial_id, study._storage):
        try:
            values = objective(trial, context)
        except optuna.TrialPruned:
            tell(study, trial, state=TrialState.PRUNED)
            return TrialState.PRUNED
        except Exception as error:
            trial.set_user_attr(ERROR_ATTR, f"{type(error).__name__}: {error}"[:2000])
            tell(study, trial, state=TrialState.FAIL)
            log.warning("trial %d failed: %s: %s", trial.number, type(error).__name__, error)
            return TrialState.FAIL
        except BaseException:
            tell(study, trial, state=TrialState.FAIL)
            raise
    tell(study, trial, values)
    return TrialState.COMPLETE


def tell(study: optuna.Study, trial: optuna.Trial, values: Any = None, state: TrialState | None = None) -> None:
    """``study.tell``, which stores the trial's end first; the grid sampler then calls
    ``study.stop()`` when its grid is used up, which only ``study.optimize`` accepts. This
    loop stops by counting trials (a grid's budget is its size), so that call is moot."""
    try:
        study.tell(trial, values, state)
    except RuntimeError as error:
        if "Study.stop" not in str(error):
            raise


def work(
    study: optuna.Study,
    url: storages.StorageUrl,
    context: Context,
    *,
    n_trials: int,
    timeout: float | None = None,
    on_trial_end: Callable[[optuna.Study], None] = lambda study: None,
) -> int:
    """Run trials until the study has ``n_trials`` or ``timeout`` seconds have passed (no
    trial starts after that); return how many this worker ran."""
    deadline = None if timeout is None else time.monotonic() + timeout
    ran = 0
    while deadline is None or time.monotonic() < deadline:
        claimed = claim(study, url, n_trials)
        if claimed is False:
            break
        if claimed is True:
            time.sleep(storages.HEARTBEAT_INTERVAL)
            continue
        assert isinstance(claimed, optuna.Trial)
        run_trial(study, claimed, context)
        ran += 1
        on_trial_end(study)
    return ran
