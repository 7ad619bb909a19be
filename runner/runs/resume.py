"""``runner run --resume RUN_ID``: continue a run that was killed, failed or interrupted.

The run's own record is the source of truth: its resolved spec (the ``spec.resolved.yaml``
artifact), its data hash, how far its metrics got, and its last checkpoint — the local
copy when this machine wrote it (always the newest), else the ``checkpoints/last.pt``
artifact. A run with no checkpoint yet (killed during its first epoch) starts again from
epoch 1, in the same MLflow run.

The parent run of a cross-validation or of ``--seeds`` resumes as a whole: its finished
child runs are kept, an unfinished one is resumed like a run of its own, and the members
without a child run yet are trained.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from runner.spec.load import validate_data
from runner.spec.schema import Spec
from runner.spec.yaml_source import Source
from runner.tracking import past_runs, provenance, record
from runner.training import checkpoint


class ResumeError(RuntimeError):
    """The run cannot be resumed (finished already, or its spec is missing)."""


@dataclass(frozen=True)
class Resume:
    """Where a resumed run picks up."""

    run_id: str
    uri: str
    #: The checkpoint to continue from; None when no epoch was checkpointed.
    checkpoint: Path | None
    #: Epochs whose metrics the run holds already (they are not logged twice).
    logged_epochs: int
    #: The data hash the run started with; resuming on other data is refused.
    data_sha256: str | None
    #: Versions (torch, its CPU thread count, ...) the run started with that differ here:
    #: the resumed run may then differ from an uninterrupted one in the last bits.
    differences: list[str]


@dataclass(frozen=True)
class MembersResume:
    """Where a resumed parent run (cross-validation folds, or ``--seeds``) picks up."""

    run_id: str
    uri: str
    #: The ``--seeds`` count it was started with; 1 for a cross-validation.
    seeds: int
    #: False when its members were trained one by one on purpose (``--sequential``).
    parallel: bool
    #: Its child runs so far: member name (``fold-2``, ``seed-7``) -> (run id, status).
    children: dict[str, tuple[str, str]]
    #: The checkpoint of its members' batch, when they trained at once.
    checkpoint: Path | None
    data_sha256: str | None
    differences: list[str]


def local_checkpoint(run_id: str) -> Path:
    """Where a run on this machine keeps its newest checkpoint."""
    return checkpoint.LOCAL_DIR / run_id / checkpoint.FILE


def prepare(run_id: str, uri: str, *, member: bool = False, restart: bool = False) -> tuple[Spec, Resume | MembersResume]:
    """The run's spec and where to resume it; :class:`ResumeError` when it cannot be. A
    fold's or seed's run resumes with its parent (``member``: as part of it). A run that
    logged epochs but left no checkpoint starts again at epoch 1 only when ``restart`` says so."""
    try:
        found = past_runs.fetch_run(uri, run_id)
    except LookupError as error:
        raise ResumeError(str(error)) from error
    if found.status == "FINISHED":
        raise ResumeError(f"run {run_id} is FINISHED already; only an unfinished run can be resumed")
    if not member and record.is_member(found.tags):
        parent = found.tags.get(record.PARENT_RUN_ID, "")
        raise ResumeError(f"run {run_id} is a member of run {parent}; resume that: runner run --resume {parent}")
    of_members = record.is_parent(found.tags)
    with tempfile.TemporaryDirectory(prefix="specrun-resume-") as scratch:
        fetched = past_runs.download_artifact(uri, run_id, record.SPEC_ARTIFACT, Path(scratch))
        if fetched is None and of_members:
            raise ResumeError(f"run {run_id} was started by a specrun that could not resume its members; run its spec again")
        if fetched is None:
            raise ResumeError(f"run {run_id} has no spec.resolved.yaml artifact; was it started by `runner run`?")
        spec = validate_data(Source(data=yaml.safe_load(fetched.read_text())))

    differences = provenance.environment_differences(found.tags)
    if of_members:
        seeds, parallel = record.recorded_members(found.tags)
        children = past_runs.child_runs(uri, run_id)
        return spec, MembersResume(
            run_id,
            uri,
            seeds,
            parallel,
            children,
            _find_checkpoint(uri, run_id),
            found.tags.get(record.DATA_SHA256),
            differences,
        )
    checkpoint_file = _find_checkpoint(uri, run_id)
    if checkpoint_file is None and found.last_epoch > 0 and not member and not restart:
        raise ResumeError(
            f"run {run_id} logged {found.last_epoch} epochs but left no checkpoint to continue from (checkpoint_every: 0, "
            f"or none could be written); `runner run --resume {run_id} --restart` trains it again from epoch 1, in the same run"
        )
    return spec, Resume(
        run_id,
        uri,
        checkpoint_file,
        found.last_epoch,
        found.tags.get(record.DATA_SHA256),
        differences,
    )


def prepare_member(run_id: str, uri: str) -> Resume:
    """Where an unfinished child run of a resumed parent picks up (its spec is the member's)."""
    spec_and_resume = prepare(run_id, uri, member=True)
    assert isinstance(spec_and_resume[1], Resume)
    return spec_and_resume[1]


def _find_checkpoint(uri: str, run_id: str) -> Path | None:
    """The local checkpoint; else one fetched before (by the launcher of ``--nproc`` ranks,
    or by an attempt that died before its first epoch); else the MLflow artifact."""
    local = local_checkpoint(run_id)
    fetched_dir = local.parent / "fetched"
    fetched = fetched_dir / checkpoint.FILE  # where MLflow puts the one artifact it downloads
    for candidate in (local, fetched):
        if candidate.exists():
            return candidate
    return past_runs.download_artifact(uri, run_id, f"{record.CHECKPOINT_DIR}/{checkpoint.FILE}", fetched_dir)
