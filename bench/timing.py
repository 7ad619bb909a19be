"""One measurement in a fresh process, printed as JSON (``bench/run.py`` calls this).

    python bench/timing.py epochs SPEC [--set K=V]...   # per-epoch wall times of a tracked run
    python bench/timing.py cv SPEC K parallel|sequential  # wall time of an untracked k-fold run
    python bench/timing.py mlflow SPEC                    # share of a tracked run spent in MLflow calls
"""

from __future__ import annotations

import functools
import json
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
    from runner.experiment import RunOptions

    return RunOptions(tracking_uri=uri, track=uri is not None, quiet=True, experiment="bench", **extra)


def epochs(spec_file: str, uri: str, sets: list[str]) -> dict[str, Any]:
    from runner.experiment import run
    from runner.spec import load_spec

    clock = EpochClock()
    start = time.perf_counter()
    run(load_spec(spec_file, sets), _options(uri, reporters=[clock]))
    ticks = [start, *clock.times]
    return {"epoch_times": [b - a for a, b in zip(ticks, ticks[1:])]}


def cv(spec_file: str, k: int, mode: str, sets: list[str]) -> dict[str, Any]:
    from runner.cv import run_cv
    from runner.spec import load_spec

    spec = load_spec(spec_file, [*sets, f"data.split.folds.k={k}"])
    start = time.perf_counter()
    outcome = run_cv(spec, _options(None), parallel=mode == "parallel")
    return {"seconds": time.perf_counter() - start, "mode": outcome.mode, "reason": outcome.mode_reason,
            "accuracy": outcome.summary["test/accuracy"].mean}


def mlflow_share(spec_file: str, uri: str, sets: list[str]) -> dict[str, Any]:
    from runner import tracking
    from runner.experiment import run
    from runner.spec import load_spec

    main_thread = threading.get_ident()
    spent = [0.0]

    def timed(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != main_thread:  # background mirrors do not hold the loop up
                return method(*args, **kwargs)
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start
        return wrapper

    for name in ("__init__", "log_metrics", "log_params", "set_tags", "log_artifact", "end", "flush"):
        if hasattr(tracking.MlflowTracker, name):
            setattr(tracking.MlflowTracker, name, timed(getattr(tracking.MlflowTracker, name)))
    spec = load_spec(spec_file, sets)
    start = time.perf_counter()
    run(spec, _options(uri))
    total = time.perf_counter() - start
    return {"mlflow_seconds": spent[0], "run_seconds": total, "share": spent[0] / total}


def main(argv: list[str]) -> None:
    what, spec_file, *rest = argv
    sets = [a.split("=", 1)[1] for a in rest if a.startswith("--set=")]
    rest = [a for a in rest if not a.startswith("--set=")]
    if what == "epochs":
        result = epochs(spec_file, rest[0], sets)
    elif what == "cv":
        result = cv(spec_file, int(rest[0]), rest[1], sets)
    else:
        result = mlflow_share(spec_file, rest[0], sets)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
