"""The train block's engineering options validate like every other field: typed, located."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runner.spec import SpecError, load_spec
from tests.conftest import TINY_SPEC


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return [str(p) for p in caught.value.problems]


def test_defaults_keep_the_plain_fast_path(write_spec: Callable[..., Path]) -> None:
    train = load_spec(write_spec()).train
    assert (train.accumulate, train.precision, train.compile, train.loader, train.workers, train.checkpoint_every) == (
        1,
        "fp32",
        False,
        "auto",
        0,
        1,
    )


def test_bad_values_are_located(write_spec: Callable[..., Path]) -> None:
    text = TINY_SPEC.replace(
        "train: {epochs: 3, batch_size: 64}",
        "train: {epochs: 3, batch_size: 64, accumulate: 0, precision: fp16, loader: gpu, workers: -1}",
    )
    path = write_spec(text)
    found = problems(path)
    assert len(found) == 4, found
    assert any(p.startswith(f"{path}:11:") and "train.accumulate" in p for p in found)
    assert any("train.precision" in p and "'fp32' or 'bf16'" in p for p in found)
    assert any("train.loader" in p for p in found) and any("train.workers" in p for p in found)


def test_cross_field_rules(write_spec: Callable[..., Path]) -> None:
    path = write_spec(
        TINY_SPEC.replace(
            "train: {epochs: 3, batch_size: 64}",
            "train: {epochs: 3, batch_size: full, accumulate: 2, loader: device, workers: 2}",
        )
    )
    found = problems(path)
    assert any("train.accumulate" in p and "batch_size is 'full'" in p for p in found), found
    assert any("train.workers" in p and "loader is 'device'" in p for p in found), found


def test_a_per_class_metric_is_watched_and_expected_by_class_index(write_spec: Callable[..., Path]) -> None:
    per_class = TINY_SPEC.replace("metrics: [accuracy, roc_auc]", "metrics: [{type: recall, average: none}]")
    good = per_class + "expect:\n  source: x\n  metrics: {test/recall/1: {min: 0.5}}\n"
    spec = load_spec(write_spec(good), ["train.early_stopping={monitor: val/recall/1}"])
    assert spec.train.early_stopping is not None and spec.train.early_stopping.monitor == "val/recall/1"
    bad = good.replace("train: {epochs: 3, batch_size: 64}", "train: {epochs: 3, batch_size: 64, early_stopping: {monitor: val/recall}}")
    found = problems(write_spec(bad))
    assert len(found) == 1 and "'val/recall' is not logged per epoch. Did you mean 'val/recall/<class>'?" in found[0]
