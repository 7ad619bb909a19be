"""Load a spec's dataset, split it, fit its transforms on the training part, and fingerprint it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import registry
from registry import Table, Task, reconstruction
from runner.data import splits
from runner.spec.checks import class_index
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
    val: Part | None
    test: Part
    task: Task
    fingerprint: str
    table: Table
    #: The spec's transforms, fitted on the training rows, in order: a model logged for use
    #: applies them to raw inputs as training did (``runner/results/logged_model.py``).
    transforms: list[Any] = field(default_factory=list)


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


@dataclass
class Loaded:
    """A spec's dataset as loaded, before any split: what every fold shares."""

    table: Table
    task: Task
    fingerprint: str

    @property
    def labels(self) -> np.ndarray | None:
        """Class labels for stratification; None for regression."""
        return self.table.y if self.task.is_classification else None


def check_same_data(run_id: str, recorded: str | None, fingerprint: str) -> None:
    """A resumed run must read the data it started with (``recorded``: its data hash)."""
    if recorded not in (None, fingerprint):
        raise DataError(f"the data must be the data run {run_id} started with (sha256 {recorded}), but it is now {fingerprint}")


def _check_class_indices(spec: Spec, task: Task) -> None:
    """A per-class value to watch (``val/recall/7``) must name a class the data have."""
    watched = [spec.train.early_stopping.monitor] if spec.train.early_stopping is not None else []
    if spec.search is not None:
        watched += spec.search.metric if isinstance(spec.search.metric, list) else [spec.search.metric]
    for name in watched:
        index = class_index(name)[1]
        if index is not None and task.n_classes > 0 and index >= task.n_classes:
            raise DataError(
                f"{name!r} is the value of class {index}, but the data have {task.n_classes} classes (0 to {task.n_classes - 1})"
            )


def load(spec: Spec) -> Loaded:
    """Load the spec's dataset and check that its targets suit the loss."""
    entry = registry.DATASETS.get(spec.data.dataset.type)
    try:
        table = entry.builder(spec.data.dataset)
    except (FileNotFoundError, ValueError) as error:
        raise DataError(str(error)) from error
    if spec.data.target == "input":
        table = reconstruction.relabel(table)
    _check_task(table.task, spec.loss.type)
    _check_class_indices(spec, table.task)
    return Loaded(table, task_for_loss(table.task, spec.loss.type), fingerprint(table))


def prepare_rows(
    spec: Spec, loaded: Loaded, train_rows: np.ndarray, val_rows: np.ndarray | None, test_rows: np.ndarray | None
) -> PreparedData:
    """The parts for these row indices (``test_rows`` None: the official test part), with every
    transform fitted on ``train_rows`` only, so nothing of the other parts leaks into it."""
    table = loaded.table
    train = Part(table.x[train_rows], table.y[train_rows])
    val = None if val_rows is None else Part(table.x[val_rows], table.y[val_rows])
    if test_rows is None:
        assert table.test is not None
        test = Part(*table.test)
    else:
        test = Part(table.x[test_rows], table.y[test_rows])

    # Fit each transform on the training rows only, then apply it to every part.
    fitted = []
    for transform_spec in spec.data.transforms:
        transform = registry.TRANSFORMS.get(transform_spec.type).builder(transform_spec)
        train.x = np.asarray(transform.fit_transform(train.x), dtype=np.float32)
        for part in (val, test):
            if part is not None:
                part.x = np.asarray(transform.transform(part.x), dtype=np.float32)
        fitted.append(transform)
    if spec.data.target == "input":
        reconstruction.targets_from_inputs((train, val, test))
    return PreparedData(train, val, test, loaded.task, loaded.fingerprint, table, fitted)


def split_error(n: int, split: object, error: ValueError) -> DataError:
    dump = split.model_dump(exclude_none=True) if hasattr(split, "model_dump") else split
    return DataError(f"cannot split {n} rows as {dump}: {error}")


def prepare(spec: Spec) -> PreparedData:
    """Load, split (seeded), transform (fitted on train only) the spec's data."""
    split = spec.data.split
    if split.folds is not None:
        raise DataError(
            "the spec cross-validates (data.split.folds): it runs as folds under a parent run (`runner run`), not as one holdout run"
        )
    loaded = load(spec)
    table = loaded.table
    official = split.test == "official"
    if official and table.test is None:
        raise DataError(f"dataset {spec.data.dataset.type!r} has no official test part; give data.split.test a fraction")
    try:
        parts = splits.holdout(len(table.y), loaded.labels, split, spec.seed, official)
    except ValueError as error:
        raise split_error(len(table.y), split, error) from error
    return prepare_rows(spec, loaded, parts.train, parts.val, parts.test)


def folds_of(spec: Spec, loaded: Loaded) -> list[splits.Fold]:
    """The row indices of every cross-validation fold of a ``folds:`` spec; each fold's parts
    come from :func:`prepare_rows` when it is trained, so only one fold's copy is held at a time."""
    n = len(loaded.table.y)
    try:
        return splits.cv_folds(n, loaded.labels, loaded.table.groups, spec.data.split, spec.seed)
    except ValueError as error:
        raise split_error(n, spec.data.split, error) from error
