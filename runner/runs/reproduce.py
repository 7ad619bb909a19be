"""``runner reproduce RUN_ID``: re-run a logged run from what MLflow recorded, and compare.

The resolved spec comes from the run's ``spec.resolved.yaml`` artifact, so nothing depends on
spec files that may have changed since. Before anything runs: different code or package
versions are warnings (the numbers may still agree), different data is a refusal (they
cannot). The rerun is a new MLflow run tagged ``specrun.reproduces=<RUN_ID>``.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from runner.data import file_records
from runner.spec import SpecError, validate_data
from runner.spec.schema import Spec
from runner.spec.yaml_source import Source
from runner.tracking import provenance, record
from runner.tracking.past_runs import RecordedRun, read_run

if TYPE_CHECKING:
    from runner.runs.cv import CVOutcome
    from runner.runs.experiment import RunOptions


class Refused(Exception):
    """The run cannot be reproduced here (exit status 2); nothing was run or logged."""


@dataclass
class Original:
    """A logged run and the spec it ran."""

    record: RecordedRun
    spec: Spec

    @property
    def members(self) -> bool:
        """Whether it is the parent run of cross-validation folds or of ``--seeds``."""
        return record.is_parent(self.record.tags)

    @property
    def metrics(self) -> dict[str, float]:
        """The final metrics as ``metrics.json`` recorded them (what a rerun returns); a
        parent's, the summary it logged (``<metric>_mean``, ...)."""
        text = self.record.artifacts.get(record.METRICS_ARTIFACT)
        return json.loads(text) if text is not None and not self.members else dict(self.record.metrics)

    @property
    def data_files(self) -> list[file_records.DataFile]:
        text = self.record.artifacts.get(record.DATA_FILES_ARTIFACT)
        return file_records.from_json(text) if text is not None else []


def load(uri: str, run_id: str) -> Original:
    """The run and its resolved spec, validated again as today's code reads it."""
    try:
        logged = read_run(uri, run_id, (record.SPEC_ARTIFACT, record.METRICS_ARTIFACT, record.DATA_FILES_ARTIFACT))
    except LookupError as error:
        raise Refused(str(error)) from error
    text = logged.artifacts.get(record.SPEC_ARTIFACT)
    if text is None:
        raise Refused(f"run {run_id} has no {record.SPEC_ARTIFACT} artifact, so its spec is unknown; was it logged by `runner run`?")
    try:
        spec = validate_data(Source(data=yaml.safe_load(text)))
    except SpecError as error:
        raise Refused(f"the spec run {run_id} recorded is not valid for this version of specrun:\n{error.render()}") from error
    return Original(logged, spec)


def compare_code(original: Original, device: str | None = None) -> list[str]:
    """Warnings for every recorded code/package/device version that differs from here."""
    from runner.runtime import determinism

    tags = original.record.tags
    warnings = provenance.environment_differences(tags)
    git = provenance.git_state(Path.cwd())
    commit = tags.get(record.GIT_COMMIT)
    if commit is not None:
        if git is None:
            warnings.append(f"the run was made at git commit {commit[:12]}; the working directory is not a git repository")
        elif git[0] != commit:
            warnings.append(f"code differs: the run was made at git commit {commit[:12]}, the working tree is at {git[0][:12]}")
    if tags.get(record.GIT_DIRTY) == "true":
        warnings.append("the run was made with uncommitted changes (specrun.git_dirty=true); they are not recorded")
    if git is not None and git[1]:
        warnings.append("the working tree has uncommitted changes")
    if record.DEVICE in tags:
        now = determinism.device_name(determinism.resolve_device(device or original.spec.device))
        if now != tags[record.DEVICE]:
            warnings.append(f"device differs: the run used {tags[record.DEVICE]}, this rerun uses {now}")
    return warnings


def compare_data(original: Original) -> list[str]:
    """Refusals for data that differ from what the run read (file md5s, then the arrays)."""
    from runner.data.prepare import DataError, load, prepare

    try:  # a cross-validation's parent recorded the data as loaded, before the folds' preparation
        data = load(original.spec) if original.spec.data.split.is_cv else prepare(original.spec)
    except DataError as error:
        return [f"the run's data cannot be loaded: {error}"]
    problems = []
    logged = {f.path: f for f in original.data_files}
    current = {f.path: f for f in file_records.records(data.table, original.spec.data.dataset)}
    for path, then in logged.items():
        now = current.get(path)
        if now is None:
            problems.append(f"{path}: the run read this file, the spec no longer does")
        elif now.md5 != then.md5:
            problems.append(f"{path}: expected md5 {then.md5} (as the run logged it), actual md5 {now.md5}")
    expected = original.record.tags.get(record.DATA_SHA256)
    if expected is not None and expected != data.fingerprint and not problems:
        problems.append(f"the data as loaded differ: expected specrun.data_sha256 {expected}, actual {data.fingerprint}")
    return problems


@dataclass(frozen=True)
class MetricDiff:
    metric: str
    original: float | None
    reproduced: float | None

    @property
    def identical(self) -> bool:
        # Bit-identical: equal floats (NaN equals NaN here, as the same bits do).
        if self.original is None or self.reproduced is None:
            return False
        both_nan = math.isnan(self.original) and math.isnan(self.reproduced)
        return both_nan or self.original == self.reproduced


def diff(original: dict[str, float], reproduced: dict[str, float]) -> list[MetricDiff]:
    return [MetricDiff(k, original.get(k), reproduced.get(k)) for k in sorted(set(original) | set(reproduced))]


def print_diff(diffs: list[MetricDiff], original_id: str, new_id: str | None) -> None:
    """A side-by-side table of the original and reproduced metrics."""
    from rich.console import Console
    from rich.table import Table

    def show(value: float | None) -> str:
        return "—" if value is None else repr(value)

    table = Table(title=f"reproduction of run {original_id}")
    table.add_column("metric")
    table.add_column("original", justify="right")
    table.add_column("reproduced", justify="right")
    table.add_column("diff", justify="right")
    for d in diffs:
        if d.identical:
            delta = "[green]identical"
        elif d.original is None or d.reproduced is None:
            delta = "[yellow]only in one"
        else:
            delta = f"[red]{d.reproduced - d.original:+.3g}"
        table.add_row(d.metric, show(d.original), show(d.reproduced), delta)
    console = Console()
    console.print(table)
    same = sum(d.identical for d in diffs)
    verdict = "bit-identical" if same == len(diffs) else f"{len(diffs) - same} of {len(diffs)} metrics differ"
    console.print(f"{verdict}; the rerun is MLflow run {new_id} ({record.REPRODUCES}={original_id})" if new_id else verdict, soft_wrap=True)


def rerun_members(original: Original, options: RunOptions) -> CVOutcome:
    """A parent run of folds or seeds, run again as it ran: members at once or one by one."""
    from runner.runs.cv import run_parent

    seeds, parallel = record.recorded_members(original.record.tags)
    return run_parent(original.spec, seeds, options, parallel)


def command(run_id: str, uri: str | None, device: str | None, exact: bool) -> int:
    """``runner reproduce``: 0 after a rerun (1 with ``exact`` if a metric differs), 2 when the
    run cannot be reproduced here (unknown run, unreadable spec, other data)."""
    from rich.console import Console

    from runner.data.prepare import DataError
    from runner.runs.experiment import RunOptions, run
    from runner.tracking.tracker import tracking_uri

    def error(message: str) -> None:
        print(f"runner: error: {message}", file=sys.stderr)

    uri = tracking_uri(uri, None)
    try:
        original = load(uri, run_id)
    except Refused as refused:
        error(str(refused))
        return 2
    console = Console(stderr=True)
    for warning in compare_code(original, device):
        console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
    refusals = compare_data(original)
    if refusals:
        error(f"run {run_id} read other data; reproducing it here would not mean anything:")
        for refusal in refusals:
            print(f"  {refusal}", file=sys.stderr)
        return 2
    options = RunOptions(
        tracking_uri=uri,
        experiment=original.record.experiment,
        device=device,
        extra_tags={record.REPRODUCES: run_id},
        log_model=original.spec.tracking.log_model,
    )
    try:
        outcome = rerun_members(original, options) if original.members else run(original.spec, options)
    except DataError as failed:
        error(str(failed))
        return 2
    except KeyboardInterrupt:
        error("interrupted; the rerun is marked KILLED")
        return 130
    diffs = diff(original.metrics, outcome.metrics)
    print_diff(diffs, run_id, outcome.run_id)
    return 1 if exact and not all(d.identical for d in diffs) else 0
