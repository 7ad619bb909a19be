"""One measurement in a fresh process, printed as JSON (``bench/run.py`` calls this).

python bench/timing.py epochs SPEC URI [K=V]...          # per-epoch wall times of a tracked run
python bench/timing.py paired SPEC URI WORKLOAD R [DATA] # per-epoch specrun / hand, R rounds
python bench/timing.py cv SPEC K R                       # fold-parallel and sequential k-fold, best of R each
python bench/timing.py mlflow SPEC URI R                 # share of R runs spent in MLflow calls
python bench/timing.py process SPEC URI                  # a whole `runner run`: seconds in MLflow calls
"""

from __future__ import annotations

import functools
import json
import statistics
import sys
import threading
import time
from typing import Any


class EpochClock:
    """A reporter that notes when each epoch ends (after tracking and checkpointing)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.times.append(time.perf_counter())


def _options(uri: str | None, **extra: Any) -> Any:
    from runner.runs.experiment import RunOptions

    return RunOptions(tracking_uri=uri, track=uri is not None, quiet=True, experiment="bench", **extra)


def epochs(spec_file: str, uri: str, sets: list[str]) -> dict[str, Any]:
    from runner.runs.experiment import run
    from runner.spec import load_spec

    clock = EpochClock()
    start = time.perf_counter()
    run(load_spec(spec_file, sets), _options(uri, reporters=[clock]))
    ticks = [start, *clock.times]
    return {"epoch_times": [b - a for a, b in zip(ticks, ticks[1:])]}


def paired_epochs(spec_file: str, uri: str, workload: str, rounds: int, data: str | None) -> dict[str, Any]:
    """Per-epoch cost of a tracked ``runner run`` over the hand loop's, both in this process,
    alternating for ``rounds`` rounds: each round's ratio compares the two sides' fastest
    epochs after the first, measured seconds apart; the result is the median ratio. (Between
    processes minutes apart, this machine's speed drifted by up to 1.8x.)"""
    from hand import train

    from runner.runtime import determinism
    from runner.spec import load_spec

    n_epochs = load_spec(spec_file, []).train.epochs
    ratios = []
    for _ in range(rounds + 1):  # the first round warms both up
        determinism.set_reproducibility("off")  # the hand loop as written: torch's defaults
        hand = min(train(workload, n_epochs, data)["epoch_times"][1:])
        ours = min(epochs(spec_file, uri, [])["epoch_times"][1:])
        ratios.append(ours / hand)
    return {"ratios": ratios[1:], "ratio": statistics.median(ratios[1:])}


def cv(spec_file: str, k: int, repeats: int) -> dict[str, Any]:
    """Fold-parallel and sequential k-fold, untracked, alternating in this process for
    ``repeats`` rounds after a warm-up of each (imports, first calls): the fastest wall and
    CPU seconds of each side. Alternating, because the speed of shared cores drifts between
    runs minutes apart; the fastest, because it is the run least disturbed by others."""
    from runner.runs.cv import run_cv
    from runner.spec import load_spec

    spec = load_spec(spec_file, [f"data.split.folds.k={k}"])
    warm = load_spec(spec_file, ["data.split.folds.k=2", "train.epochs=1"])
    sides: dict[str, dict[str, list[float]]] = {side: {"wall": [], "cpu": []} for side in ("parallel", "sequential")}
    for side in sides:
        run_cv(warm, _options(None), parallel=side == "parallel")
    outcome = None
    for _ in range(repeats):
        for side, times in sides.items():
            wall, cpu = time.perf_counter(), time.process_time()
            result = run_cv(spec, _options(None), parallel=side == "parallel")
            times["wall"].append(time.perf_counter() - wall)
            times["cpu"].append(time.process_time() - cpu)
            outcome = result if side == "parallel" else outcome
    assert outcome is not None
    best = {side: {what: min(values) for what, values in times.items()} for side, times in sides.items()}
    return {**best, "mode": outcome.mode, "reason": outcome.mode_reason}


def _time_mlflow_calls() -> list[float]:
    """Count the seconds the main thread spends inside the tracker's MLflow calls (and in
    closing the tracking process, which waits for its last writes); returns the counter."""
    from runner.tracking import tracker as tracking
    from runner.tracking.process import TrackingProcess

    main_thread = threading.get_ident()
    spent, depth = [0.0], [0]

    def timed(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != main_thread:
                return method(*args, **kwargs)
            depth[0] += 1  # epoch_end -> log_metrics -> flush: count the outermost call only
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[0] += time.perf_counter() - start

        return wrapper

    for name in ("__init__", "epoch_end", "log_metrics", "log_params", "set_tags", "log_dataset", "log_artifact", "end", "flush"):
        setattr(tracking.MlflowTracker, name, timed(getattr(tracking.MlflowTracker, name)))
    TrackingProcess.close = timed(TrackingProcess.close)  # type: ignore[method-assign]
    return spent


def process_mlflow(spec_file: str, uri: str) -> None:
    """A whole ``runner run`` in this process, as the command runs it (tracking process,
    quick exit); prints, at exit, the seconds the main thread spent in MLflow calls and in
    waiting for the tracking process's last writes. The caller times the process."""
    import atexit

    spent = _time_mlflow_calls()
    atexit.register(lambda: print(json.dumps({"mlflow_seconds": spent[0]})))  # runs last
    sys.argv = ["runner", "run", spec_file, "--tracking-uri", uri, "--experiment", "bench"]
    from runner.cli import entry

    entry()


def mlflow_share(spec_file: str, uri: str, repeats: int) -> dict[str, Any]:
    """The share of a tracked run's wall time that the training thread spends inside MLflow
    calls (creating the run, params, metrics, artifacts, ending it): the median over
    ``repeats`` runs after a warm one. Calls from the checkpoint writer's thread are not
    counted: they do not hold the loop up (what they cost it shows in the per-epoch ratio).
    Measured directly: the difference between tracked and untracked runs of a few seconds
    is smaller than this machine's run-to-run noise. MLflow runs in a tracking process, as
    under ``runner run`` (``SPECRUN_TRACKING_PROCESS=0``: in this one)."""
    from runner.runs.experiment import run
    from runner.spec import load_spec
    from runner.tracking import tracker as tracking

    tracking.start_tracking_process()
    spent = _time_mlflow_calls()
    spec = load_spec(spec_file, [])
    run(spec, _options(uri))  # warm: imports, the store's schema
    shares, seconds = [], []
    for _ in range(repeats):
        spent[0] = 0.0
        start = time.perf_counter()
        run(spec, _options(uri))
        shares.append(spent[0] / (time.perf_counter() - start))
        seconds.append(spent[0])
    return {"shares": shares, "share": statistics.median(shares), "mlflow_seconds": statistics.median(seconds)}


def main(argv: list[str]) -> None:
    what, spec_file, *rest = argv
    if what != "process":  # as in a `runner` process: no collections over the start-up heap
        from runner.runtime import gc_policy as heap

        heap.start_up()
    if what == "epochs":
        result = epochs(spec_file, rest[0], rest[1:])
    elif what == "paired":
        result = paired_epochs(spec_file, rest[0], rest[1], int(rest[2]), rest[3] if len(rest) > 3 else None)
    elif what == "cv":
        result = cv(spec_file, int(rest[0]), int(rest[1]))
    elif what == "process":
        return process_mlflow(spec_file, rest[0])  # prints at exit
    else:
        result = mlflow_share(spec_file, rest[0], int(rest[1]))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
