"""One level above the loop: set up a run, track it, and leave it FINISHED, FAILED or KILLED.

Data is loaded and the pipeline built *before* the MLflow run is created, so input that
cannot be run logs nothing.
"""

from __future__ import annotations

import json
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import torch

from runner import datafiles, determinism, provenance
from runner.build import build
from runner.data import prepare
from runner.progress import progress_for
from runner.spec.schema import Spec
from runner.tracking import MlflowTracker, NullTracker, Tracker, flatten, tracking_uri
from runner.train import RunResult, train_one

CHECKPOINT_DIR = Path(".specrun") / "checkpoints"


@dataclass
class RunOptions:
    """Command-line choices that are not part of the experiment itself."""

    tracking_uri: Optional[str] = None
    experiment: Optional[str] = None
    device: Optional[str] = None
    track: bool = True
    quiet: bool = False
    spec_file: Optional[Path] = None
    extra_tags: dict[str, str] = field(default_factory=dict)
    #: Nest the run under this MLflow run (folds, seeds and search trials are child runs).
    parent_run_id: Optional[str] = None
    run_name: Optional[str] = None
    #: More receivers of each epoch's metrics, e.g. a search's pruning callback; one that
    #: raises stops the run (it is then marked FAILED, or KILLED for KeyboardInterrupt).
    reporters: list[Any] = field(default_factory=list)


@dataclass
class RunOutcome:
    run_id: Optional[str]
    result: RunResult
    metrics: dict[str, float]


class _Fanout:
    """Sends each epoch's metrics to several reporters."""

    def __init__(self, *reporters: Any) -> None:
        self.reporters = reporters

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        for reporter in self.reporters:
            reporter.epoch_end(epoch, metrics)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so the run is marked KILLED."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated()


def final_metrics(result: RunResult) -> dict[str, float]:
    """What ``metrics.json`` and ``--metrics-out`` hold: the test metrics, and the train/val
    metrics of the epoch whose weights were tested (the best one under early stopping)."""
    chosen = result.history[result.weights_epoch - 1] if result.history else {}
    metrics = {k: v for k, v in chosen.items() if k != "lr"}
    metrics |= result.test
    metrics["epochs"] = float(result.epochs_run)
    if result.best_epoch is not None:
        metrics["best_epoch"] = float(result.best_epoch)
    return metrics


def run(spec: Spec, options: RunOptions) -> RunOutcome:
    """Train and evaluate ``spec`` once, tracked in MLflow unless ``options.track`` is off."""
    # 1) Determinism first: cuBLAS settings must precede any CUDA work.
    determinism.set_reproducibility(spec.reproducibility)
    determinism.seed_everything(spec.seed)
    device = determinism.resolve_device(options.device or spec.device)

    # 2) Everything that can reject the input happens before a run exists.
    data = prepare(spec)
    data_files = datafiles.records(data.table, spec.data.dataset)
    determinism.seed_everything(spec.seed)
    pipeline = build(spec, data, device)

    resolved = spec.to_data()
    resolved_text = provenance.spec_yaml(resolved)
    tags = {
        "specrun.spec_name": spec.name,
        "specrun.spec_sha256": provenance.sha256_text(resolved_text),
        "specrun.data_sha256": data.fingerprint,
        **datafiles.tags(data_files),
        "specrun.device": determinism.device_name(device),
        "specrun.reproducibility": spec.reproducibility,
        **provenance.environment_tags(),
        **spec.tracking.tags,
        **options.extra_tags,
    }
    if options.spec_file is not None:
        tags["specrun.spec_file"] = str(options.spec_file)
    git = provenance.git_state(Path.cwd())
    if git is not None:
        tags["mlflow.source.git.commit"], dirty = git[0], git[1]
        tags["specrun.git_dirty"] = str(dirty).lower()

    tracker: Tracker = NullTracker()
    if options.track:
        tracker = MlflowTracker(
            tracking_uri(options.tracking_uri, spec.tracking.uri),
            options.experiment or spec.tracking.experiment or spec.name,
            run_name=options.run_name or spec.tracking.run_name,
            tags=tags,
            parent_run_id=options.parent_run_id,
        )
        tracker.log_params(flatten(resolved))

    with tempfile.TemporaryDirectory(prefix="specrun-") as scratch:
        workdir = Path(scratch)
        (workdir / "spec.resolved.yaml").write_text(resolved_text)
        tracker.log_artifact(workdir / "spec.resolved.yaml")
        if data_files:
            (workdir / datafiles.ARTIFACT).write_text(datafiles.to_json(data_files))
            tracker.log_artifact(workdir / datafiles.ARTIFACT)
        checkpoint = CHECKPOINT_DIR / (tracker.run_id or "untracked") / "last.pt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)

        def save_checkpoint(epoch: int) -> None:
            state = {
                "epoch": epoch,
                "model": pipeline.model.state_dict(),
                "optimizer": pipeline.optimizer.state_dict(),
                "scheduler": None if pipeline.scheduler is None else pipeline.scheduler.state_dict(),  # type: ignore[attr-defined]
            }
            torch.save(state, checkpoint)

        focus = f"val/{spec.metric_names()[0]}" if spec.metric_names() and pipeline.val is not None else "val/loss"
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            with progress_for(spec.name, spec.train.epochs, focus, options.quiet) as progress:
                reporter = _Fanout(tracker, progress, *options.reporters)
                result = train_one(pipeline, spec.train, spec.seed, reporter, save_checkpoint)
            metrics = final_metrics(result)
            tracker.log_metrics(result.test, step=result.epochs_run)
            (workdir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
            torch.save(pipeline.model.state_dict(), workdir / "weights.pt")
            tracker.log_artifact(workdir / "metrics.json")
            tracker.log_artifact(workdir / "weights.pt", "model")
        except BaseException as error:
            _keep_checkpoint(tracker, checkpoint)
            status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
            if not isinstance(error, KeyboardInterrupt):
                tracker.set_tags({"specrun.error": f"{type(error).__name__}: {error}"[:5000]})
            tracker.end(status)
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        tracker.end("FINISHED")
    return RunOutcome(tracker.run_id, result, metrics)


def _keep_checkpoint(tracker: Tracker, checkpoint: Path) -> None:
    """Log the last good checkpoint of a failed or interrupted run, if one was written."""
    if checkpoint.exists():
        try:
            tracker.log_artifact(checkpoint, "checkpoints")
        except Exception:  # the run is failing already; the local copy stays
            pass


def iter_metric_lines(metrics: dict[str, float]) -> Iterator[str]:
    for key in sorted(metrics):
        yield f"{key:>24}  {metrics[key]:.6g}"
