"""``expect:`` entries that compare with other published specs' results (a pattern, not a number)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from runner.results.expect import MISS, MISSING, PASS, check_spec, describe
from runner.spec import load_spec
from runner.spec.schema import ExpectedValue
from tests.conftest import TINY_SPEC


def spec_with(directory: Path, name: str, expect: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(TINY_SPEC + "expect:\n  source: a sweep\n  metrics:\n" + expect)
    return path


def results(directory: Path, name: str, **metrics: float) -> None:
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps({k.replace("_", "/"): v for k, v in metrics.items()}))


def test_below_and_above_other_specs(tmp_path: Path) -> None:
    out = tmp_path / "results"
    results(out, "small", test_loss=1.0, train_loss=2.0)
    results(out, "big", test_loss=500.0, train_loss=0.5)
    big = spec_with(tmp_path, "big", "    test/loss: {above: [{spec: small, factor: 100}]}\n    train/loss: {below: [small]}\n")
    verdicts = [row.verdict for row in check_spec(big, load_spec(big), out).rows]  # type: ignore[union-attr]
    assert verdicts == [PASS, PASS]
    results(out, "big", test_loss=50.0, train_loss=2.5)  # only 50x, and not below
    verdicts = [row.verdict for row in check_spec(big, load_spec(big), out).rows]  # type: ignore[union-attr]
    assert verdicts == [MISS, MISS]


def test_a_comparison_with_another_metric_and_a_missing_reference(tmp_path: Path) -> None:
    out = tmp_path / "results"
    results(out, "a", test_loss=1.0, train_loss=3.0)
    spec = spec_with(tmp_path, "a", "    test/loss: {below: [{spec: a, metric: train/loss}, b]}\n")
    (row,) = check_spec(spec, load_spec(spec), out).rows  # type: ignore[union-attr]
    assert row.verdict == MISSING  # b has no results yet
    results(out, "b", test_loss=2.0)
    (row,) = check_spec(spec, load_spec(spec), out).rows  # type: ignore[union-attr]
    assert row.verdict == PASS and row.tolerance == "< a train/loss, < b"


def test_bounds_still_apply_with_comparisons() -> None:
    expected = ExpectedValue(max=0.5, below=["x"])  # type: ignore[list-item]
    assert describe(expected) == ("—", "≤ 0.5, < x")
    with pytest.raises(ValidationError, match="below"):
        ExpectedValue()
    with pytest.raises(ValidationError, match="greater than 0"):
        ExpectedValue(above=[{"spec": "x", "factor": 0}])  # type: ignore[list-item]
