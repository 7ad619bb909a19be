"""Train/validation/test indices from scikit-learn's splitters, driven by the spec's seed.

Holdout parts come from ``train_test_split``; cross-validation folds from the splitter a
``folds:`` block names (``KFold``, ``StratifiedKFold``, ``RepeatedKFold``, ...), built with
``random_state=seed`` so that, for the same seed, the indices are scikit-learn's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import model_selection
from sklearn.model_selection import train_test_split

from runner.spec.schema import SplitSpec


@dataclass(frozen=True)
class Holdout:
    """Row indices of each part; ``test`` is None when the dataset's official test part is used."""

    train: np.ndarray
    val: np.ndarray | None
    test: np.ndarray | None


def carve_val(rows: np.ndarray, n: int, labels: np.ndarray | None, split: SplitSpec, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Split ``rows`` into (train, val) as ``split.val`` asks; a fraction is of all ``n`` rows."""
    if not split.val:
        return np.sort(rows), None
    # A fraction of all rows becomes a fraction of what the test part left.
    size = split.val / (len(rows) / n) if isinstance(split.val, float) else split.val
    if isinstance(size, float) and size >= 1:
        raise ValueError(f"val={split.val} leaves no training rows")
    part_labels = None if labels is None or not split.stratify else labels[rows]
    rows, val = train_test_split(rows, test_size=size, random_state=seed + 1, shuffle=True, stratify=part_labels)
    return np.sort(rows), np.sort(val)


def holdout(n: int, labels: np.ndarray | None, split: SplitSpec, seed: int, official_test: bool) -> Holdout:
    """Split ``n`` rows into train/val/test.

    Fractions are of all ``n`` rows, so ``test: 0.2, val: 0.16`` gives 0.64/0.16/0.20 (003).
    With ``stratify`` every part keeps the class proportions of ``labels``.
    """
    rows = np.arange(n)
    stratify = labels if split.stratify else None
    test = None
    if not official_test:
        rows, test = train_test_split(rows, test_size=split.test, random_state=seed, shuffle=True, stratify=stratify)
        test = np.sort(test)
    train, val = carve_val(rows, n, labels, split, seed)
    return Holdout(train, val, test)


def splitter(folds: Any, seed: int) -> Any:
    """The scikit-learn splitter a ``folds:`` block names, seeded by ``seed`` where it shuffles."""
    kind = folds.type
    if kind == "kfold":
        return model_selection.KFold(folds.k, shuffle=folds.shuffle, random_state=seed if folds.shuffle else None)
    if kind == "stratified_kfold":
        return model_selection.StratifiedKFold(folds.k, shuffle=folds.shuffle, random_state=seed if folds.shuffle else None)
    if kind == "repeated_kfold":
        return model_selection.RepeatedKFold(n_splits=folds.k, n_repeats=folds.repeats, random_state=seed)
    if kind == "repeated_stratified_kfold":
        return model_selection.RepeatedStratifiedKFold(n_splits=folds.k, n_repeats=folds.repeats, random_state=seed)
    if kind == "leave_one_out":
        return model_selection.LeaveOneOut()
    if kind == "group_kfold":
        return model_selection.GroupKFold(folds.k, shuffle=folds.shuffle, random_state=seed if folds.shuffle else None)
    if kind == "time_series":
        return model_selection.TimeSeriesSplit(folds.k, gap=folds.gap, max_train_size=folds.max_train_size, test_size=folds.test_size)
    raise ValueError(f"unknown folds type {kind!r}")


def fold_indices(
    rows: np.ndarray, labels: np.ndarray | None, groups: np.ndarray | None, folds: Any, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) row indices of every fold of ``rows``, in the splitter's order."""
    y = None if labels is None else labels[rows]
    g = None if groups is None or folds.type != "group_kfold" else groups[rows]
    if folds.type in ("stratified_kfold", "repeated_stratified_kfold") and y is None:
        raise ValueError(f"{folds.type} needs class labels")
    if folds.type == "group_kfold" and g is None:
        raise ValueError("group_kfold needs a group column: give the dataset `groups: COLUMN`")
    x = np.zeros((len(rows), 1))
    return [(rows[train], rows[held]) for train, held in splitter(folds, seed).split(x, y, g)]


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold: held-out ``test`` rows; ``train``/``val`` from the rest."""

    index: int
    train: np.ndarray
    val: np.ndarray | None
    test: np.ndarray


def cv_folds(n: int, labels: np.ndarray | None, groups: np.ndarray | None, split: SplitSpec, seed: int) -> list[Fold]:
    """The folds of a ``folds:`` split over all ``n`` rows; ``val`` carved from each fold's
    training rows as in :func:`holdout`."""
    assert split.folds is not None
    out = []
    for i, (train, held) in enumerate(fold_indices(np.arange(n), labels, groups, split.folds, seed)):
        train, val = carve_val(train, n, labels, split, seed)
        out.append(Fold(i, train, val, np.sort(held)))
    return out
