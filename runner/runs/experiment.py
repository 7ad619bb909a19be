"""One level above the loop: set up a run, track it, and leave it FINISHED, FAILED or KILLED.

Data is loaded and the pipeline built *before* the MLflow run is created, so input that
cannot be run logs nothing.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from runner.data import file_records
from runner.data.prepare import PreparedData, check_same_data, prepare
from runner.results import figures, logged_model
from runner.runtime import determinism, distributed, gc_policy
from runner.runtime.interrupts import Interrupts
from runner.runtime.progress import progress_for
from runner.runtime.warning_lines import warn
from runner.spec.schema import Spec
from runner.tracking import provenance, record
from runner.tracking.dataset_input import dataset_row
from runner.tracking.tracker import MlflowTracker, NullTracker, Tracker, flatten, open_store_early, tracking_uri
from runner.training import checkpoint
from runner.training.checkpoint import CheckpointWriter
from runner.training.loop import RunResult, train_one
from runner.training.pipeline import Pipeline, build

if TYPE_CHECKING:
    from runner.runs.resume import Resume

CHECKPOINT_DIR = checkpoint.LOCAL_DIR


@dataclass
class RunOptions:
    """Command-line choices that are not part of the experiment itself."""

    tracking_uri: str | None = None
    experiment: str | None = None
    device: str | None = None
    track: bool = True
    quiet: bool = False
    spec_file: Path | None = None
    extra_tags: dict[str, str] = field(default_factory=dict)
    #: Nest the run under this MLflow run (folds, seeds and search trials are child runs).
    parent_run_id: str | None = None
    run_name: str | None = None
    #: More receivers of each epoch's metrics, e.g. a search's pruning callback; one that
    #: raises stops the run (it is then marked FAILED, or KILLED for KeyboardInterrupt).
    reporters: list[Any] = field(default_factory=list)
    #: Continue this unfinished run (``runner run --resume``) instead of starting a new one.
    resume: Resume | None = None
    #: Use these prepared parts instead of preparing the spec's data (a fold of a CV run).
    data: PreparedData | None = None
    #: Train with this instead of ``train_one``: ``trainer(pipeline, reporter) -> RunResult``
    #: (fold-parallel training hands in each fold's result, computed for all folds at once).
    trainer: Callable[[Pipeline, Any], RunResult] | None = None
    #: Log the trained model as an MLflow model (``runner/results/logged_model.py``): a run the user keeps,
    #: not a fold, seed or trial, each of which would pay seconds for a model nobody serves.
    log_model: bool = False


@dataclass
class RunOutcome:
    run_id: str | None
    result: RunResult
    metrics: dict[str, float]
    #: Trainable parameters of the model (logged as the metric ``model/params``).
    parameters: int = 0
    #: ``runs:/<id>/model`` when the run logged its model for use (``RunOptions.log_model``).
    model_uri: str | None = None


class RunStopped(Exception):
    """Raised by a reporter to stop a run on purpose (a pruned search trial): the run is
    marked KILLED and tagged ``specrun.stopped`` with the message, not FAILED."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM ended the run KILLED with its last checkpoint; ``run_id`` (None when
    untracked) is what ``runner run --resume`` continues."""

    def __init__(self, run_id: str | None) -> None:
        super().__init__(run_id)
        self.run_id = run_id


def interrupted_as(error: BaseException, run_id: str | None) -> BaseException:
    """What to raise after ``error`` ended a run: an interrupt names the run it killed."""
    if isinstance(error, KeyboardInterrupt) and not isinstance(error, RunInterrupted):
        return RunInterrupted(run_id)
    return error


def known_run_id(tracker: Tracker) -> str | None:
    """The run's id to name in a message; None rather than another error (a run never created)."""
    try:
        return tracker.run_id
    except Exception:
        return None


def end_after_error(tracker: Tracker, error: BaseException) -> None:
    """End a run that did not finish: KILLED when stopped on purpose (``RunStopped``, tagged
    ``specrun.stopped``) or interrupted; FAILED, tagged ``specrun.error``, otherwise."""
    if isinstance(error, RunStopped):
        tracker.set_tags({record.STOPPED: str(error)[:5000]})
    elif not isinstance(error, KeyboardInterrupt):
        tracker.set_tags({record.ERROR: f"{type(error).__name__}: {error}"[:5000]})
    tracker.end("KILLED" if isinstance(error, (KeyboardInterrupt, RunStopped)) else "FAILED")


class _Fanout:
    """Sends each epoch's metrics to several reporters."""

    def __init__(self, *reporters: Any) -> None:
        self.reporters = reporters

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        for reporter in self.reporters:
            reporter.epoch_end(epoch, metrics)


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
    """Train and evaluate ``spec`` once, tracked in MLflow unless ``options.track`` is off.

    With ``options.resume`` it continues that run instead: the same MLflow run, from its
    last checkpoint, logging from the next epoch on.
    """
    resume = options.resume
    # 1) Determinism first: cuBLAS settings must precede any CUDA work.
    determinism.set_reproducibility(spec.reproducibility)
    determinism.seed_everything(spec.seed)
    device = distributed.setup(determinism.resolve_device(options.device or spec.device))
    main = distributed.is_main()

    # 2) Everything that can reject the input happens before a run exists (or is reopened).
    data = options.data if options.data is not None else prepare(spec)
    data_files = file_records.records(data.table, spec.data.dataset)
    if resume is not None:
        check_same_data(resume.run_id, resume.data_sha256, data.fingerprint)
    uri = resume.uri if resume is not None else tracking_uri(options.tracking_uri, spec.tracking.uri)
    if options.track and main:
        open_store_early(uri)  # the data can serve the spec: the store may now exist
    determinism.seed_everything(spec.seed)
    pipeline = build(spec, data, device)
    state = None if resume is None or resume.checkpoint is None else checkpoint.load(resume.checkpoint, device)

    # 3) Only rank 0 tracks. A resumed run reopens its MLflow run and fills in the epochs
    #    its checkpoint holds but its metrics lack (a kill between the two). The resolved
    #    spec is written out only for a tracked run (a fold of an untracked CV need not).
    tracker: Tracker = NullTracker()
    logged_epochs = 0
    tracked = options.track and main
    resolved = provenance.recorded_spec(spec) if tracked else {}
    resolved_text = provenance.spec_yaml(resolved) if tracked else ""
    spec_sha256 = provenance.sha256_text(resolved_text)
    if tracked and resume is not None:
        start = 0 if state is None else state["epoch"]
        if not options.quiet:  # with the progress lines: what is being continued
            print(f"runner: continuing run {resume.run_id} from epoch {start + 1} ({resume.logged_epochs} logged)", file=sys.stderr)
        tracker = MlflowTracker.reopen(uri, resume.run_id, {record.RESUMED_FROM_EPOCH: str(start)})
        for epoch, metrics in enumerate([] if state is None else state["history"], start=1):
            if epoch > resume.logged_epochs:
                tracker.log_metrics(metrics, step=epoch)
        logged_epochs = max(resume.logged_epochs, start)
    elif tracked:
        tracker = MlflowTracker(
            uri,
            options.experiment or spec.tracking.experiment or spec.name,
            run_name=options.run_name or spec.tracking.run_name,
            tags=_run_tags(spec, spec_sha256, data, data_files=data_files, device=device, loader=pipeline.loader, options=options),
            parent_run_id=options.parent_run_id,
        )
    parameters = sum(p.numel() for p in pipeline.model.parameters() if p.requires_grad)
    if resume is None and tracked:
        tracker.log_metrics({record.MODEL_PARAMS: float(parameters)}, step=0)
        tracker.log_params(flatten(resolved))  # with the held metric: one write
        parts = {"train_rows": len(data.train), "val_rows": 0 if data.val is None else len(data.val), "test_rows": len(data.test)}
        tracker.log_dataset(dataset_row(spec.data.dataset, data.table, data.fingerprint, parts))

    # 4) Checkpoints belong to a run (they are resumed through it): none when untracked.
    writer = _RunCheckpoints(tracker, spec_sha256) if tracked and spec.train.checkpoint_every > 0 else None

    model_uri: str | None = None
    with tempfile.TemporaryDirectory(prefix="specrun-") as scratch:
        workdir = Path(scratch)
        if resume is None and tracked:
            (workdir / record.SPEC_ARTIFACT).write_text(resolved_text)
            tracker.log_artifact(workdir / record.SPEC_ARTIFACT, kept=True)  # workdir outlives the run
            if data_files:
                (workdir / record.DATA_FILES_ARTIFACT).write_text(file_records.to_json(data_files))
                tracker.log_artifact(workdir / record.DATA_FILES_ARTIFACT, kept=True)

        focus = f"val/{spec.metric_names()[0]}" if spec.metric_names() and pipeline.val is not None else "val/loss"
        with Interrupts() as interrupts:
            try:
                gc_policy.settle()
                with progress_for(spec.name, spec.train.epochs, focus, options.quiet or not main) as progress:
                    shown = [progress] if main else []  # one progress display, not one per rank
                    reporter = _Fanout(interrupts, _After(tracker, logged_epochs), *shown, *options.reporters)
                    if options.trainer is not None:
                        result = options.trainer(pipeline, reporter)
                    else:
                        result = train_one(pipeline, spec.train, seed=spec.seed, reporter=reporter, save_checkpoint=writer, resume=state)
                if writer is not None:
                    writer.close()
                metrics = final_metrics(result)
                if tracked:
                    tracker.log_metrics(result.test, step=result.epochs_run)
                    (workdir / record.METRICS_ARTIFACT).write_text(json.dumps(metrics, indent=2, sort_keys=True))
                    torch.save(pipeline.model.state_dict(), workdir / record.WEIGHTS_FILE)
                    tracker.log_artifact(workdir / record.METRICS_ARTIFACT, kept=True)
                    tracker.log_artifact(workdir / record.WEIGHTS_FILE, record.MODEL_DIR, kept=True)
                    if options.log_model:
                        model_uri = _log_model_for_use(spec, pipeline, data, workdir, tracker)
                    figures.log_figures(pipeline, workdir, tracker)
                tracker.end("FINISHED")
            except BaseException as error:
                # The last good checkpoint is on disk; closing the writer lands it in MLflow too.
                if writer is not None:
                    writer.close()
                end_after_error(tracker, error)
                raised = interrupted_as(error, known_run_id(tracker) if tracked else None)
                if raised is error:
                    raise
                raise raised from error
    # 5) A finished run's last checkpoint stays in MLflow; the local copy has served its purpose.
    if writer is not None:
        shutil.rmtree(writer.directory(), ignore_errors=True)
    return RunOutcome(tracker.run_id, result, metrics, parameters, model_uri)


def _log_model_for_use(spec: Spec, pipeline: Pipeline, data: PreparedData, workdir: Path, tracker: Tracker) -> str | None:
    """Log the MLflow model for use (``runner/results/logged_model.py``); its ``runs:/`` URI, or None when
    it cannot be saved (a component whose objects do not pickle): that costs the finished
    run its model, not its status, so it is a warning and the tag ``specrun.model_error``."""
    directory = workdir / "mlflow-model"
    try:
        logged_model.save(logged_model.served_model(spec, pipeline, data), np.ascontiguousarray(data.table.x[:5]), directory)
    except Exception as error:
        reason = f"the model could not be logged for use ({type(error).__name__}: {error})"[:1000]
        warn(f"{reason}; its weights are in model/weights.pt")
        tracker.set_tags({record.MODEL_ERROR: reason})
        return None
    tracker.log_artifact(directory, record.MODEL_DIR, kept=True)
    return f"runs:/{tracker.run_id}/{record.MODEL_DIR}"


def _run_tags(
    spec: Spec,
    spec_sha256: str,
    data: PreparedData,
    *,
    data_files: list[file_records.DataFile],
    device: torch.device,
    loader: str,
    options: RunOptions,
) -> dict[str, str]:
    """What a new run records about its origin (``provenance.origin_tags``), and what only a
    trained run knows: its data files, device, reproducibility level and batches."""
    own = {
        **file_records.tags(data_files),
        record.DEVICE: determinism.device_name(device),
        record.REPRODUCIBILITY: spec.reproducibility,
        record.LOADER: loader,
    }
    if distributed.world_size() > 1:
        own[record.WORLD_SIZE] = str(distributed.world_size())
    return provenance.origin_tags(
        spec, spec_sha256=spec_sha256, data_sha256=data.fingerprint, spec_file=options.spec_file, extra=options.extra_tags, own=own
    )


class _RunCheckpoints:
    """The run's ``CheckpointWriter``, started with the first checkpoint: until then the run's
    id, which names the checkpoints' directory, may be on its way from the tracking process."""

    def __init__(self, tracker: Tracker, spec_sha256: str) -> None:
        self.tracker, self.spec_sha256 = tracker, spec_sha256
        self.writer: CheckpointWriter | None = None

    def directory(self) -> Path:
        return CHECKPOINT_DIR / str(self.tracker.run_id)

    def __call__(self, state: dict[str, Any]) -> None:
        if self.writer is None:
            extra = {"run_id": self.tracker.run_id, "spec_sha256": self.spec_sha256}
            self.writer = CheckpointWriter(self.directory(), self.tracker, extra)
        self.writer(state)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _After:
    """Forwards to the tracker only epochs after ``logged``: a resumed run may replay
    epochs it logged before its last checkpoint (with ``checkpoint_every`` > 1)."""

    def __init__(self, tracker: Tracker, logged: int) -> None:
        self.tracker, self.logged = tracker, logged

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        if epoch > self.logged:
            self.tracker.epoch_end(epoch, metrics)


def iter_metric_lines(metrics: dict[str, float]) -> Iterator[str]:
    for key in sorted(metrics):
        yield f"{key:>24}  {metrics[key]:.6g}"
