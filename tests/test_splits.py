"""Split schemes: the indices are scikit-learn's own for the same seed; bad combinations are
spec errors located at their line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import model_selection

from runner.data import splits
from runner.spec import SpecError, load_spec
from runner.spec.schema import SplitSpec

N = 40
LABELS = np.array([0] * 24 + [1] * 16)
GROUPS = np.arange(N) // 4


def split_of(folds: Any, **extra: Any) -> SplitSpec:
    return SplitSpec.model_validate({"folds": folds, **extra})


@pytest.mark.parametrize(
    ("folds", "reference"),
    [
        ({"type": "kfold", "k": 5}, model_selection.KFold(5, shuffle=True, random_state=7)),
        (4, model_selection.KFold(4, shuffle=True, random_state=7)),
        ({"type": "kfold", "k": 3, "shuffle": False}, model_selection.KFold(3)),
        ({"type": "stratified_kfold", "k": 4}, model_selection.StratifiedKFold(4, shuffle=True, random_state=7)),
        ({"type": "repeated_kfold", "k": 3, "repeats": 2}, model_selection.RepeatedKFold(n_splits=3, n_repeats=2, random_state=7)),
        (
            {"type": "repeated_stratified_kfold", "k": 2, "repeats": 3},
            model_selection.RepeatedStratifiedKFold(n_splits=2, n_repeats=3, random_state=7),
        ),
        ("leave_one_out", model_selection.LeaveOneOut()),
        ({"type": "group_kfold", "k": 5}, model_selection.GroupKFold(5, shuffle=True, random_state=7)),
        ({"type": "time_series", "k": 3, "gap": 2}, model_selection.TimeSeriesSplit(3, gap=2)),
    ],
)
def test_fold_indices_equal_scikit_learns(folds: Any, reference: Any) -> None:
    split = split_of(folds)
    ours = splits.cv_folds(N, LABELS, GROUPS, split, seed=7)
    groups = GROUPS if isinstance(reference, model_selection.GroupKFold) else None
    theirs = list(reference.split(np.zeros((N, 1)), LABELS, groups))
    assert len(ours) == len(theirs)
    for fold, (train, test) in zip(ours, theirs):
        assert np.array_equal(fold.train, np.sort(train)) and np.array_equal(fold.test, np.sort(test))
        assert fold.val is None


def test_seed_changes_the_folds() -> None:
    split = split_of(5)
    a = splits.cv_folds(N, LABELS, None, split, seed=1)
    b = splits.cv_folds(N, LABELS, None, split, seed=2)
    assert any(not np.array_equal(x.test, y.test) for x, y in zip(a, b))


def test_val_is_carved_from_each_folds_training_rows() -> None:
    split = split_of({"type": "stratified_kfold", "k": 4}, val=0.2, stratify=True)
    for fold in splits.cv_folds(N, LABELS, None, split, seed=0):
        assert fold.val is not None and len(fold.val) == 8  # 0.2 of all 40 rows
        parts = [set(fold.train), set(fold.val), set(fold.test)]
        assert sum(map(len, parts)) == N and set.union(*parts) == set(range(N))
        expected_train, _ = model_selection.train_test_split(
            np.setdiff1d(np.arange(N), fold.test),
            test_size=8 / 30,
            random_state=1,
            stratify=LABELS[np.setdiff1d(np.arange(N), fold.test)],
        )
        assert np.array_equal(fold.train, np.sort(expected_train))


def test_group_kfold_keeps_groups_whole() -> None:
    for fold in splits.cv_folds(N, None, GROUPS, split_of({"type": "group_kfold", "k": 5}), seed=0):
        assert not set(GROUPS[fold.train]) & set(GROUPS[fold.test])


def test_holdout_unchanged_by_the_refactor() -> None:
    split = SplitSpec(test=0.25, val=0.25, stratify=True)
    parts = splits.holdout(N, LABELS, split, 3, official_test=False)
    rest, test = model_selection.train_test_split(np.arange(N), test_size=0.25, random_state=3, stratify=LABELS)
    train, val = model_selection.train_test_split(rest, test_size=10 / 30, random_state=4, stratify=LABELS[rest])
    assert np.array_equal(parts.test, np.sort(test)) and np.array_equal(parts.val, np.sort(val))
    assert np.array_equal(parts.train, np.sort(train))


def test_folds_default_the_test_part_to_the_held_out_fold() -> None:
    assert split_of(5).test == "folds"
    assert SplitSpec().test == 0.2 and not SplitSpec().is_cv


SPEC = """\
name: cv
data:
  dataset: {dataset}
  split:
{split}
model: {{type: mlp, hidden: [4]}}
loss: {loss}
optimizer: {{type: adam, lr: 0.01}}
train: {{epochs: 1{train}}}
"""


def problems(write_spec: Callable[..., Path], split: str, dataset: str = "iris", loss: str = "cross_entropy", train: str = "") -> list[str]:
    path = write_spec(SPEC.format(dataset=dataset, split=split, loss=loss, train=train))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return [str(p) for p in caught.value.problems]


def test_stratified_folds_on_regression_is_located(write_spec: Callable[..., Path]) -> None:
    found = problems(write_spec, "    folds: {type: stratified_kfold, k: 5}", dataset="diabetes", loss="mse")
    assert len(found) == 1, found
    assert found[0].endswith("data.split.folds.type: stratified_kfold needs class labels, but the loss 'mse' poses regression; use kfold")
    assert ":5:" in found[0]


def test_test_fraction_with_folds_and_folds_test_without_folds(write_spec: Callable[..., Path]) -> None:
    found = problems(write_spec, "    test: 0.2\n    folds: 5")
    assert len(found) == 1 and "data.split.test" in found[0] and ":5:" in found[0] and "remove data.split.test" in found[0]
    found = problems(write_spec, "    test: folds")
    assert len(found) == 1 and "data.split.folds is not set" in found[0]


def test_group_kfold_needs_a_group_column(write_spec: Callable[..., Path]) -> None:
    found = problems(write_spec, "    folds: {type: group_kfold}")
    assert len(found) == 1 and "groups: COL" in found[0]


def test_inner_folds_need_outer_folds_early_stopping_and_no_val(write_spec: Callable[..., Path]) -> None:
    found = problems(write_spec, "    val: 0.2\n    inner: 3")
    assert any("set data.split.folds too" in p for p in found)
    assert any("not both" in p for p in found)
    assert any("set train.early_stopping" in p for p in found)


def test_unknown_fold_type_suggests(write_spec: Callable[..., Path]) -> None:
    found = problems(write_spec, "    folds: {type: kfolds}")
    assert len(found) == 1 and "kfold" in found[0] and "data.split.folds" in found[0]


def test_valid_cv_specs_load(write_spec: Callable[..., Path]) -> None:
    spec = load_spec(write_spec(SPEC.format(dataset="iris", split="    folds: leave_one_out", loss="cross_entropy", train="")))
    assert spec.data.split.folds is not None and spec.data.split.folds.type == "leave_one_out"
    nested = SPEC.format(
        dataset="iris",
        split="    folds: {type: stratified_kfold, k: 3}\n    inner: {type: kfold, k: 2}",
        loss="cross_entropy",
        train=", early_stopping: {monitor: val/loss, patience: 2}",
    )
    assert load_spec(write_spec(nested)).data.split.inner.k == 2  # type: ignore[union-attr]
