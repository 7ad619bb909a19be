"""Runs of one spec over several members: cross-validation folds or seeds.

One MLflow parent run holds, for every final metric, the mean, the standard deviation and a
95% t-interval over the members, plus a per-member table (``folds.csv``/``folds.json``);
each member is a child run made by :func:`runner.runs.experiment.run`. When the members share one
architecture they are trained at once as a batched ensemble (:mod:`runner.training.batched`), else
one after another; the parent's tags say which and why.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import Table
from runner.data.prepare import Loaded, PreparedData, check_same_data, folds_of, load, prepare, prepare_rows
from runner.data.splits import fold_indices
from runner.runs import experiment
from runner.runs.experiment import RunOptions
from runner.runtime import determinism
from runner.runtime.interrupts import Interrupts
from runner.runtime.progress import progress_for
from runner.spec.schema import Spec
from runner.tracking import provenance, record
from runner.tracking.dataset_input import dataset_row
from runner.tracking.past_runs import read_run
from runner.tracking.tracker import MlflowTracker, NullTracker, Tracker, flatten, tracking_uri
from runner.training import batched, checkpoint
from runner.training.checkpoint import CheckpointWriter
from runner.training.loop import RunResult

if TYPE_CHECKING:
    from runner.runs.resume import MembersResume, Resume

#: ``on_fold_end(fold_index, fold_metrics)``; raising stops the run (e.g. Optuna pruning).
FoldCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class Summary:
    """One metric over the members: mean, sample standard deviation, 95% t-interval."""

    mean: float
    std: float
    low: float
    high: float
    n: int


def summarize(values: list[float]) -> Summary:
    """Mean, std (ddof=1) and the 95% interval of the mean from Student's t with n-1 dof."""
    from scipy import stats

    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return Summary(mean, float("nan"), float("nan"), float("nan"), n)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return Summary(mean, std, mean - half, mean + half, n)


@dataclass
class MemberOutcome:
    """One fold's (or seed's) child run and its final metrics."""

    index: int
    name: str
    run_id: str | None
    metrics: dict[str, float]


@dataclass
class CVOutcome:
    """A parent run over members: per-member outcomes and the summary of every metric."""

    run_id: str | None
    members: list[MemberOutcome]
    summary: dict[str, Summary]
    #: "batched" (all members trained at once) or "sequential", and why.
    mode: str
    mode_reason: str

    @property
    def metrics(self) -> dict[str, float]:
        """The parent's metrics: ``<metric>_mean``, ``_std``, ``_ci95_low``, ``_ci95_high``."""
        out: dict[str, float] = {}
        for key, s in self.summary.items():
            out |= {f"{key}_mean": s.mean, f"{key}_std": s.std, f"{key}_ci95_low": s.low, f"{key}_ci95_high": s.high}
        return out


@dataclass
class Member:
    """One child run to make: its spec (own seed), data (prepared on demand) and tags."""

    index: int
    name: str
    spec: Spec
    data: Callable[[], PreparedData]
    tags: dict[str, str] = field(default_factory=dict)
    _prepared: PreparedData | None = field(default=None, repr=False)

    def prepared(self) -> PreparedData:
        """The member's data, prepared once: batched training and the member's own run
        share it (fitting each fold's preprocessing twice cost as much as a fold's epoch)."""
        if self._prepared is None:
            self._prepared = self.data()
        return self._prepared

    def release(self) -> None:
        """Drop the prepared data once the member's run is done (k folds need not all stay)."""
        self._prepared = None


def run_cv(
    spec: Spec,
    options: RunOptions,
    *,
    on_fold_end: FoldCallback | None = None,
    parallel: bool = True,
    resume: MembersResume | None = None,
) -> CVOutcome:
    """Cross-validate ``spec`` (its ``data.split.folds``): one child run per fold under a parent.

    Preprocessing is fitted inside each fold. With ``data.split.inner`` (nested CV) each outer
    fold first picks its epoch count by early stopping on the inner folds, then trains on all
    of its training rows for that many epochs and tests on its held-out fold.
    """
    folds = spec.data.split.folds
    assert folds is not None, "run_cv needs a spec with data.split.folds"
    determinism.set_reproducibility(spec.reproducibility)
    loaded = load(spec)
    members, fold_list = [], folds_of(spec, loaded)  # every split problem surfaces before a run exists
    for fold in fold_list:
        members.append(
            Member(
                fold.index,
                f"fold-{fold.index}",
                spec,
                functools.partial(prepare_rows, spec, loaded, fold.train, fold.val, fold.test),
                {record.FOLD: str(fold.index)},
            )
        )
    tags = {record.CV_SCHEME: folds.type, record.CV_FOLDS: str(len(members))}
    if spec.data.split.inner is not None:
        members = [_nested(spec, loaded, m, f.train, options) for m, f in zip(members, fold_list)]
        tags[record.CV_INNER] = spec.data.split.inner.type
        parallel = False
    dataset = _dataset_input(spec, loaded.table, loaded.fingerprint, {"folds": len(members)})
    return run_members(
        spec,
        members,
        options,
        data_sha256=loaded.fingerprint,
        tags=tags,
        on_member_end=on_fold_end,
        parallel=parallel,
        resume=resume,
        dataset=dataset,
    )


def run_seeds(spec: Spec, seeds: int, options: RunOptions, parallel: bool = True, resume: MembersResume | None = None) -> CVOutcome:
    """The same spec over ``seeds`` consecutive seeds (from ``spec.seed``): is a difference noise?"""
    determinism.set_reproducibility(spec.reproducibility)
    members = []
    for i in range(seeds):
        member_spec = spec.model_copy(update={"seed": spec.seed + i})
        members.append(
            Member(
                i,
                f"seed-{member_spec.seed}",
                member_spec,
                functools.partial(prepare, member_spec),
                {record.MEMBER_SEED: str(member_spec.seed)},
            )
        )
    first = members[0].prepared()  # also rejects bad data before a run exists
    dataset = _dataset_input(spec, first.table, first.fingerprint, {"seeds": seeds})
    return run_members(
        spec,
        members,
        options,
        data_sha256=first.fingerprint,
        tags={record.SEEDS: str(seeds)},
        on_member_end=None,
        parallel=parallel,
        resume=resume,
        dataset=dataset,
    )


def _dataset_input(spec: Spec, table: Table, fingerprint: str, usage: dict[str, int]) -> dict[str, Any]:
    """The parent run's dataset input: the data all its members split (``runner/tracking/dataset_input.py``)."""
    return dataset_row(spec.data.dataset, table, fingerprint, usage)


def run_parent(spec: Spec, seeds: int, options: RunOptions, parallel: bool = True, resume: MembersResume | None = None) -> CVOutcome:
    """``seeds`` > 1: the spec over that many seeds; else its cross-validation folds."""
    if seeds > 1:
        return run_seeds(spec, seeds, options, parallel=parallel, resume=resume)
    return run_cv(spec, options, parallel=parallel, resume=resume)


def _nested(spec: Spec, loaded: Loaded, member: Member, outer_train: Any, options: RunOptions) -> Member:
    """An outer fold whose epoch count is the median best epoch of early stopping on its
    inner folds (untracked runs), refitted on all of the fold's training rows."""
    inner = spec.data.split.inner
    assert inner is not None
    best = []
    for train, val in fold_indices(outer_train, loaded.labels, loaded.table.groups, inner, spec.seed):
        # The inner held-out rows serve as validation; the outer held-out fold is never seen.
        data = prepare_rows(spec, loaded, train, val, val)
        untracked = replace(options, track=False, quiet=True, data=data, parent_run_id=None, trainer=None)
        result = experiment.run(spec, untracked).result
        best.append(result.best_epoch or result.epochs_run)
    epochs = max(1, round(sorted(best)[len(best) // 2]))
    refit = spec.model_copy(update={"train": spec.train.model_copy(update={"epochs": epochs, "early_stopping": None})})
    return Member(member.index, member.name, refit, member.data, {**member.tags, record.CV_SELECTED_EPOCHS: str(epochs)})


def run_members(
    spec: Spec,
    members: list[Member],
    options: RunOptions,
    *,
    data_sha256: str,
    tags: dict[str, str],
    on_member_end: FoldCallback | None = None,
    parallel: bool = True,
    resume: MembersResume | None = None,
    dataset: dict[str, Any] | None = None,
) -> CVOutcome:
    """Train every member as a child run of one parent run and summarize their metrics.
    With ``resume`` the parent is that run: its finished members are kept, an unfinished
    one continues from its checkpoint, the rest are trained (one by one if it trained so)."""
    if resume is not None:
        parallel = parallel and resume.parallel
    if resume is not None:
        check_same_data(resume.run_id, resume.data_sha256, data_sha256)
    with tempfile.TemporaryDirectory(prefix="specrun-") as scratch:
        folder = Path(scratch)  # outlives the parent run: its files are logged without waiting
        parent = _parent_run(
            spec, options, data_sha256=data_sha256, tags={**tags, record.CV_PARALLEL: str(parallel).lower()}, folder=folder, resume=resume
        )
        if resume is None and dataset is not None:
            parent.log_dataset(dataset)
        # Ctrl-C or SIGTERM during batched training, or between members, ends the parent KILLED.
        with Interrupts() as interrupts:
            try:
                kept, continued = _earlier_members(members, resume)
                fresh = [m for m in members if m.index not in kept and m.index not in continued]
                mode, reason, results = "sequential", "fold-parallel training is off", None
                if parallel and len(fresh) > 1:
                    mode, reason, results = _train_batch(spec, fresh, options, parent=parent, resume=resume, interrupts=interrupts)
                parent.set_tags({record.CV_MODE: mode, record.CV_MODE_REASON: reason})
                outcomes = []
                for member in members:
                    outcome = kept.get(member.index) or _member_run(
                        member, options, parent_run_id=parent.run_id, mode=mode, results=results, resume=continued.get(member.index)
                    )
                    outcomes.append(outcome)
                    if not options.quiet:
                        _print_member(spec, member.name, outcome.metrics)
                    if on_member_end is not None:
                        on_member_end(member.index, outcome.metrics)
                keys = sorted(set.intersection(*(set(o.metrics) for o in outcomes)))
                summary = {key: summarize([o.metrics[key] for o in outcomes]) for key in keys}
                result = CVOutcome(parent.run_id, outcomes, summary, mode, reason)
                parent.log_metrics({k: v for k, v in result.metrics.items() if math.isfinite(v)})
                for path in _write_tables(folder, result):
                    parent.log_artifact(path, kept=True)
            except BaseException as error:
                experiment.end_after_error(parent, error)
                if isinstance(error, KeyboardInterrupt):  # the parent is what --resume continues
                    raise experiment.RunInterrupted(experiment.known_run_id(parent) if options.track else None) from error
                raise
        parent.end("FINISHED")  # waits for the files: the folder is still there
    if parent.run_id is not None:  # the batch's checkpoint has served its purpose here (MLflow keeps it)
        shutil.rmtree(checkpoint.LOCAL_DIR / str(parent.run_id), ignore_errors=True)
    return result


def _train_batch(
    spec: Spec,
    fresh: list[Member],
    options: RunOptions,
    *,
    parent: Tracker,
    resume: MembersResume | None,
    interrupts: Interrupts,
) -> tuple[str, str, batched.Trained | None]:
    """``batched.try_batched`` for the members without a run yet, with a progress display and
    the batch's checkpoints in the parent (continued from a resumed parent's)."""
    focus = f"val/{spec.metric_names()[0]}" if spec.metric_names() else "val/loss"
    writer = _batch_writer(spec, parent)
    saved = _batch_state(resume, fresh)
    if saved is not None:
        parent.set_tags({record.RESUMED_FROM_EPOCH: str(saved["epoch"])})
    checkpoints = None if writer is None else batched.BatchCheckpoints(writer, spec.train.checkpoint_every, saved)
    try:
        with progress_for(f"{spec.name} ({len(fresh)} at once)", spec.train.epochs, focus, options.quiet) as progress:
            return batched.try_batched(fresh, options.device, [interrupts, progress], checkpoints)
    finally:
        if writer is not None:
            writer.close()  # the last checkpoint lands in MLflow too, whatever happened


def _batch_writer(spec: Spec, parent: Tracker) -> CheckpointWriter | None:
    """Checkpoints of the batch, in the parent run (none when untracked or turned off)."""
    if parent.run_id is None or spec.train.checkpoint_every <= 0:
        return None
    return CheckpointWriter(checkpoint.LOCAL_DIR / str(parent.run_id), parent, {"run_id": str(parent.run_id)})


def _batch_state(resume: MembersResume | None, fresh: list[Member]) -> dict[str, Any] | None:
    """The checkpoint a resumed parent's batch continues from: its last, if it was of these members."""
    if resume is None or resume.checkpoint is None:
        return None
    state = checkpoint.load(resume.checkpoint)
    if state.get("format") != batched.BATCH_FORMAT or state.get("members") != [m.name for m in fresh]:
        return None
    return state


def _parent_run(
    spec: Spec, options: RunOptions, *, data_sha256: str, tags: dict[str, str], folder: Path, resume: MembersResume | None
) -> Tracker:
    """The parent run: created with the resolved spec (what ``--resume`` starts from), or reopened."""
    if not options.track:
        return NullTracker()
    if resume is not None:
        return MlflowTracker.reopen(resume.uri, resume.run_id)
    resolved = provenance.recorded_spec(spec)
    resolved_text = provenance.spec_yaml(resolved)
    parent = MlflowTracker(
        tracking_uri(options.tracking_uri, spec.tracking.uri),
        options.experiment or spec.tracking.experiment or spec.name,
        run_name=options.run_name or spec.tracking.run_name,
        tags=provenance.origin_tags(
            spec,
            spec_sha256=provenance.sha256_text(resolved_text),
            data_sha256=data_sha256,
            spec_file=options.spec_file,
            extra=options.extra_tags,
            own=tags,
        ),
        parent_run_id=options.parent_run_id,
    )
    parent.log_params(flatten(resolved))
    (folder / record.SPEC_ARTIFACT).write_text(resolved_text)
    parent.log_artifact(folder / record.SPEC_ARTIFACT, kept=True)
    _ = parent.run_id  # created, or TrackingError, before any member trains
    return parent


def _earlier_members(members: list[Member], resume: MembersResume | None) -> tuple[dict[int, MemberOutcome], dict[int, Resume]]:
    """Of a resumed parent's members: the finished ones (their outcomes), and where each
    unfinished one picks up; the others have no child run yet."""
    from runner.runs.resume import prepare_member

    kept: dict[int, MemberOutcome] = {}
    continued: dict[int, Resume] = {}
    if resume is None:
        return kept, continued
    for member in members:
        run_id, status = resume.children.get(member.name, (None, None))
        if run_id is None:
            continue
        if status == "FINISHED":
            finished = read_run(resume.uri, run_id, (record.METRICS_ARTIFACT,))
            kept[member.index] = MemberOutcome(member.index, member.name, run_id, json.loads(finished.artifacts[record.METRICS_ARTIFACT]))
        else:
            continued[member.index] = prepare_member(run_id, resume.uri)
    return kept, continued


def _member_run(
    member: Member,
    options: RunOptions,
    *,
    parent_run_id: str | None,
    mode: str,
    results: batched.Trained | None,
    resume: Resume | None,
) -> MemberOutcome:
    """The member's child run: trained, replayed from the batch, or resumed."""
    trainer = None if results is None or member.index not in results else _replay(results[member.index])
    child = replace(
        options,
        parent_run_id=parent_run_id,
        run_name=member.name,
        quiet=True,
        extra_tags={**options.extra_tags, **member.tags, record.CV_MODE: mode},
        data=member.prepared(),
        trainer=trainer,
        resume=resume,
    )
    outcome = experiment.run(member.spec, child)
    member.release()
    return MemberOutcome(member.index, member.name, outcome.run_id, outcome.metrics)


def _print_member(spec: Spec, name: str, metrics: dict[str, float]) -> None:
    # One line per member instead of every member's per-epoch progress.
    import sys

    keys = ["test/loss"] + [f"test/{m}" for m in spec.metric_names()]
    shown = "  ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics)
    print(f"[{spec.name}] {name}: {shown}", file=sys.stderr)


def _replay(trained: tuple[RunResult, dict[str, Any]]) -> Callable[[Any, Any], RunResult]:
    """A trainer for :func:`experiment.run` that hands in a result trained in the batch:
    the weights go into the run's model, the epochs to its reporters (MLflow, progress)."""

    result, state = trained

    def trainer(pipeline: Any, reporter: Any) -> RunResult:
        pipeline.model.load_state_dict(state)
        for epoch, metrics in enumerate(result.history, start=1):
            reporter.epoch_end(epoch, metrics)
        return result

    return trainer


def _write_tables(folder: Path, outcome: CVOutcome) -> list[Path]:
    """``folds.csv`` and ``folds.json`` (one row per member), ``metrics.json`` (the summary)."""
    keys = sorted({k for m in outcome.members for k in m.metrics})
    rows = [{"member": m.name, "index": m.index, "run_id": m.run_id or "", **m.metrics} for m in outcome.members]
    with open(folder / record.FOLDS_CSV, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["member", "index", "run_id", *keys])
        writer.writeheader()
        writer.writerows(rows)
    (folder / record.FOLDS_JSON).write_text(json.dumps(rows, indent=2))
    summary = {k: vars(s) for k, s in outcome.summary.items()}
    (folder / record.METRICS_ARTIFACT).write_text(json.dumps(summary, indent=2, sort_keys=True))
    return [folder / name for name in (record.FOLDS_CSV, record.FOLDS_JSON, record.METRICS_ARTIFACT)]
