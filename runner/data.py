"""Load a spec's dataset, split it, fit its transforms on the training part, and fingerprint it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

import numpy as np

import registry
from registry import Table, Task, reconstruction
from runner import splits
from runner.spec.schema import Spec


class DataError(ValueError):
    """The data cannot serve the spec (wrong task, missing file, too few rows)."""


@dataclass
class Part:
    """One split part as arrays: features float32 (n, d), targets int64 or float32."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class PreparedData:
    """Everything the pipeline needs from the data, plus its provenance."""

    train: Part
    val: Optional[Part]
    test: Part
    task: Task
    fingerprint: str
    table: Table


def fingerprint(table: Table) -> str:
    """sha256 of the features and targets as loaded: the data version of a run."""
    digest = hashlib.sha256()
    for array in (table.x, table.y, *(table.test or ())):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _check_task(task: Task, loss: str) -> None:
    wanted = registry.LOSSES.get(loss).meta.get("task", "any")
    if wanted == "any" or wanted == task.kind:
        return
    if wanted == "multiclass" and task.kind == "binary":
        return
    raise DataError(f"loss {loss!r} needs {wanted} targets, but the data pose a {task.kind} task")


def task_for_loss(task: Task, loss: str) -> Task:
    """Two classes under cross-entropy are treated as a two-class multiclass task."""
    if task.kind == "binary" and registry.LOSSES.get(loss).meta.get("task") == "multiclass":
        return Task("multiclass", n_classes=max(task.n_classes, 2))
    return task


def prepare(spec: Spec) -> PreparedData:
    """Load, split (seeded), transform (fitted on train only) the spec's data."""
    entry = registry.DATASETS.get(spec.data.dataset.type)
    try:
        table = entry.builder(spec.data.dataset)
    except (FileNotFoundError, ValueError) as error:
        raise DataError(str(error)) from error
    if spec.data.target == "input":
        table = reconstruction.relabel(table)
    _check_task(table.task, spec.loss.type)
    task = task_for_loss(table.task, spec.loss.type)
    split = spec.data.split
    official = split.test == "official"
    if official and table.test is None:
        raise DataError(f"dataset {spec.data.dataset.type!r} has no official test part; give data.split.test a fraction")
    labels = table.y if task.is_classification else None
    try:
        parts = splits.holdout(len(table.y), labels, split, spec.seed, official)
    except ValueError as error:
        raise DataError(f"cannot split {len(table.y)} rows as {split.model_dump()}: {error}") from error

    train = Part(table.x[parts.train], table.y[parts.train])
    val = None if parts.val is None else Part(table.x[parts.val], table.y[parts.val])
    if official:
        assert table.test is not None
        test = Part(*table.test)
    else:
        assert parts.test is not None
        test = Part(table.x[parts.test], table.y[parts.test])

    # Fit each transform on the training rows only, then apply it to every part.
    for transform_spec in spec.data.transforms:
        transform = registry.TRANSFORMS.get(transform_spec.type).builder(transform_spec)
        train.x = np.asarray(transform.fit_transform(train.x), dtype=np.float32)
        for part in (val, test):
            if part is not None:
                part.x = np.asarray(transform.transform(part.x), dtype=np.float32)
    if spec.data.target == "input":
        reconstruction.targets_from_inputs((train, val, test))
    return PreparedData(train, val, test, task, fingerprint(table), table)
