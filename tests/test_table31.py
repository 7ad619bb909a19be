"""The book's linear classifiers (Tables 2.1 and 3.1) on a Fashion-MNIST subset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from runner.cli import main

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.exists(), reason=f"{FASHION} missing: apt-get install dataset-fashion-mnist")
def test_least_squares_one_vs_one_on_images_has_finite_weights(workdir: Path) -> None:
    # Border pixels are never on: their all-zero columns must get zero weights, not inf/NaN.
    spec = ROOT / "specs" / "published" / "table31_fashion_ls_ovo.yaml"
    out = workdir / "ls_ovo.json"
    sets = ["--set", "data.dataset.limit=3000", "--set", "data.dataset.test_limit=500"]
    assert main(["run", str(spec), "--no-track", *sets, "--metrics-out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert math.isfinite(metrics["test/loss"]) and math.isfinite(metrics["train/loss"])
    assert metrics["test/accuracy"] > 0.3  # 10 classes: well above chance even interpolating
