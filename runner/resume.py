"""``runner run --resume RUN_ID``: continue a run that was killed, failed or interrupted.

The run's own record is the source of truth: its resolved spec (the ``spec.resolved.yaml``
artifact), its data hash, how far its metrics got, and its last checkpoint — the local
copy when this machine wrote it (always the newest), else the ``checkpoints/last.pt``
artifact. A run with no checkpoint yet (killed during its first epoch) starts again from
epoch 1, in the same MLflow run.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from runner import checkpoint, provenance, tracking
from runner.spec.load import validate_data
from runner.spec.schema import Spec
from runner.spec.yaml_source import Source


class ResumeError(RuntimeError):
    """The run cannot be resumed (finished already, or its spec is missing)."""


@dataclass(frozen=True)
class Resume:
    """Where a resumed run picks up."""

    run_id: str
    uri: str
    #: The checkpoint to continue from; None when no epoch was checkpointed.
    checkpoint: Optional[Path]
    #: Epochs whose metrics the run holds already (they are not logged twice).
    logged_epochs: int
    #: The data hash the run started with; resuming on other data is refused.
    data_sha256: Optional[str]
    #: Versions (torch, its CPU thread count, ...) the run started with that differ here:
    #: the resumed run may then differ from an uninterrupted one in the last bits.
    differences: list[str]


def local_checkpoint(run_id: str) -> Path:
    """Where a run on this machine keeps its newest checkpoint."""
    return checkpoint.LOCAL_DIR / run_id / checkpoint.FILE


def prepare(run_id: str, uri: str) -> tuple[Spec, Resume]:
    """The run's spec and where to resume it; :class:`ResumeError` when it cannot be."""
    try:
        record = tracking.fetch_run(uri, run_id)
    except LookupError as error:
        raise ResumeError(str(error)) from error
    if record.status == "FINISHED":
        raise ResumeError(f"run {run_id} is FINISHED already; only an unfinished run can be resumed")
    with tempfile.TemporaryDirectory(prefix="specrun-resume-") as scratch:
        fetched = tracking.download_artifact(uri, run_id, "spec.resolved.yaml", Path(scratch))
        if fetched is None:
            raise ResumeError(f"run {run_id} has no spec.resolved.yaml artifact; was it started by `runner run`?")
        spec = validate_data(Source(data=yaml.safe_load(fetched.read_text())))

    return spec, Resume(
        run_id, uri, _find_checkpoint(uri, run_id), record.last_epoch, record.tags.get("specrun.data_sha256"),
        provenance.environment_differences(record.tags),
    )


def _find_checkpoint(uri: str, run_id: str) -> Optional[Path]:
    """The local checkpoint; else one fetched before (by the launcher of ``--nproc`` ranks,
    or by an attempt that died before its first epoch); else the MLflow artifact."""
    local = local_checkpoint(run_id)
    fetched_dir = local.parent / "fetched"
    fetched = fetched_dir / checkpoint.ARTIFACT_DIR / checkpoint.FILE
    for candidate in (local, fetched):
        if candidate.exists():
            return candidate
    return tracking.download_artifact(uri, run_id, f"{checkpoint.ARTIFACT_DIR}/{checkpoint.FILE}", fetched_dir)
