"""``runner search``: open the study, make sure it has its MLflow parent run, run workers,
then write best.yaml and show the top trials."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from runner.results.report import write_metrics
from runner.runs.experiment import RunOptions
from runner.runtime.interrupts import Interrupts, Terminated
from runner.runtime.warning_lines import warn
from runner.search import best, view
from runner.search import storage as storages
from runner.search.objective import Context
from runner.search.study import directions_of, metrics_of, open_study, trial_budget
from runner.search.worker import work
from runner.spec.load import load_source
from runner.spec.schema import Spec
from runner.tracking import record
from runner.tracking.tracker import MlflowTracker, fail_running, flatten, run_exists, tracking_uri

PARENT_ATTR = "mlflow_parent_run_id"


@dataclass
class SearchArgs:
    spec_file: Path
    sets: list[str] = field(default_factory=list)
    n_trials: int | None = None
    timeout: float | None = None
    study: str | None = None
    storage: str | None = None
    workers: int = 1
    tracking_uri: str | None = None
    best_out: Path | None = None
    #: Set in the processes ``--workers`` starts: run trials only (no display, no best.yaml).
    worker_index: int | None = None
    #: Write the study's outcome (best value, the winner's numeric values, trial counts) as JSON.
    metrics_out: Path | None = None


@dataclass
class Prepared:
    spec: Spec
    url: storages.StorageUrl
    study: optuna.Study
    context: Context
    uri: str


def prepare(args: SearchArgs, spec: Spec) -> Prepared:
    """Open (or create) the study and its MLflow parent run."""
    assert spec.search is not None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storages.parse(args.storage, args.spec_file, args.workers)
    name = args.study or spec.name
    uri = tracking_uri(args.tracking_uri, spec.tracking.uri)
    experiment = spec.tracking.experiment or spec.name

    def end_dead_run(trial: FrozenTrial) -> None:
        reason = f"the worker of trial {trial.number} stopped beating; the trial is retried"
        fail_running(uri, experiment, {record.STUDY: name, record.TRIAL: str(trial.number)}, reason)

    # Workers must not draw the same numbers: `--workers` seeds each with spec.seed + its
    # index; workers on many machines (an explicit --storage) are not seeded.
    seed = spec.seed + args.worker_index if args.worker_index is not None else (None if args.storage else spec.seed)
    # One worker at a time creates the tables (Optuna's, and MLflow's when they share the
    # database), the study and its parent run; workers started together would race.
    with storages.lock(url, "setup"):
        storage = storages.open_storage(url, end_dead_run)
        study = open_study(spec, name, storage, seed)
        parent = study.user_attrs.get(PARENT_ATTR)
        if parent is not None and not run_exists(uri, parent):
            # The study outlived its runs: another tracking URI, or mlflow.db deleted.
            warn(
                f"study {name!r}'s parent run {parent} is not in {uri} (run with another tracking URI, or "
                "deleted); its trials from now on go under a new parent run"
            )
            parent = None
        if parent is None:
            tracker = MlflowTracker(uri, experiment, run_name=name, tags={record.STUDY: name, record.STORAGE: url.public})
            tracker.log_params(flatten({"search": spec.search.model_dump(mode="json", exclude_none=True)}))
            parent = tracker.run_id
            study.set_user_attr(PARENT_ATTR, parent)
        else:
            tracker = MlflowTracker.reopen(uri, parent)  # RUNNING again while the study runs
        tracker.disown()  # ended when the study ends, by whichever worker sees that
    options = RunOptions(tracking_uri=uri, experiment=experiment, spec_file=args.spec_file)
    written = load_source(args.spec_file, args.sets).data
    return Prepared(spec, url, study, Context(spec, name, options, parent, written), uri)


def _worker_argv(args: SearchArgs, index: int, url: storages.StorageUrl) -> list[str]:
    argv = [sys.executable, "-m", "runner", "search", str(args.spec_file), "--storage", str(url), "--worker-index", str(index)]
    for assignment in args.sets:
        argv += ["--set", assignment]
    argv += ["--study", args.study or "", "--tracking-uri", args.tracking_uri or ""]
    for flag, value in (("--n-trials", args.n_trials), ("--timeout", args.timeout)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def _run_workers(args: SearchArgs, prepared: Prepared, live: view.LiveTrials) -> int:
    """``--workers N``: N processes on this machine, this one only watches."""
    sub = SearchArgs(**{**args.__dict__, "study": prepared.study.study_name, "tracking_uri": prepared.uri})
    procs = [subprocess.Popen(_worker_argv(sub, i, prepared.url)) for i in range(args.workers)]
    try:
        while any(p.poll() is None for p in procs):
            live.refresh(prepared.study)
            time.sleep(1)
    except KeyboardInterrupt as interrupt:
        # Ctrl-C reached the workers too (one process group); SIGTERM came to this process alone.
        if isinstance(interrupt, Terminated):
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
        for proc in procs:
            proc.wait()
        raise
    live.refresh(prepared.study)
    return max(p.returncode for p in procs)


def search(args: SearchArgs, spec: Spec) -> int:
    """Run the study; exit status 0 when it finished, 1 when a worker failed."""
    assert spec.search is not None
    prepared = prepare(args, spec)
    # SIGTERM, like Ctrl-C, stops the study with its runs ended (its default would leave them RUNNING).
    with Interrupts():
        return _search(args, spec, prepared)


def _search(args: SearchArgs, spec: Spec, prepared: Prepared) -> int:
    assert spec.search is not None
    n_trials = trial_budget(spec.search, args.n_trials or spec.search.n_trials)
    timeout = args.timeout or spec.search.timeout
    if args.worker_index is not None:
        work(prepared.study, prepared.url, prepared.context, n_trials=n_trials, timeout=timeout)
        return 0
    metrics, directions = metrics_of(spec.search), directions_of(spec.search)
    steps = "folds" if spec.data.split.is_cv else "epochs"  # what a trial reports its progress by
    try:
        with view.LiveTrials(metrics, steps=steps) as live:
            if args.workers > 1:
                status = _run_workers(args, prepared, live)
            else:
                work(prepared.study, prepared.url, prepared.context, n_trials=n_trials, timeout=timeout, on_trial_end=live.refresh)
                status = 0
    except KeyboardInterrupt:
        # A study of this machine alone stops with it; a shared one goes on on other machines.
        if args.storage is None and prepared.context.parent_run_id:
            MlflowTracker.reopen(prepared.uri, prepared.context.parent_run_id).end("KILLED")
        raise
    console = live.console
    console.print(view.top_table(prepared.study, metrics, directions, steps=steps))
    winner = best.best_trial(prepared.study, spec)
    if winner is None:
        console.print("no trial completed; no best.yaml written")
        counts = best.summary_counts(prepared.study)
        reason = "no trial completed (" + ", ".join(f"{n:.0f} {state.removeprefix('trials/')}" for state, n in counts.items()) + ")"
        if prepared.context.parent_run_id is not None:
            MlflowTracker.reopen(prepared.uri, prepared.context.parent_run_id, {record.ERROR: reason}).end("FAILED")
        return 1
    previous = prepared.study.user_attrs.get("best_run_id")
    path = best.write_best(prepared.context, args.spec_file, winner, args.best_out)
    best.record_best(prepared.uri, prepared.context.parent_run_id, winner, path, previous)
    if winner.user_attrs.get("mlflow_run_id"):
        prepared.study.set_user_attr("best_run_id", winner.user_attrs["mlflow_run_id"])
    if args.metrics_out:
        write_metrics(args.metrics_out, best.summary(prepared.study, winner))
    console.print(f"best: trial {winner.number} {winner.values} -> {path}  (retrain: runner run {path})", soft_wrap=True)
    dashboard = prepared.url.target if prepared.url.kind == "journal" else prepared.url.public
    console.print(f"dashboard: optuna-dashboard {dashboard}", soft_wrap=True)
    return status
