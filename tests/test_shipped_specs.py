"""``specs/`` tests itself: every shipped spec validates and runs; the headline ones hit their marks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import registry
from runner.cli import main
from runner.spec import load_spec
from tests.conftest import ROOT

SPECS = sorted(p for p in (ROOT / "specs").rglob("*.yaml") if not p.name.endswith(".best.yaml"))


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: str(p.relative_to(ROOT)))
def test_spec_validates_and_has_a_header(spec: Path) -> None:
    load_spec(spec)
    header = spec.read_text().splitlines()[0]
    assert header.startswith("# "), "every shipped spec starts with a comment saying what it shows"
    assert f"runner run {spec.relative_to(ROOT)}" in spec.read_text()


def write_pipeline_data(spec: Path) -> None:
    """Published specs read data/<dataset>.npz, which dvc.yaml's `data` stage writes; write it here."""
    from runner.data.dvc_files import materialize

    dataset = load_spec(spec).data.dataset
    if dataset.type == "dvc" and dataset.path.parent == Path("data") and dataset.path.stem in registry.DATASETS:
        materialize(dataset.path.stem, Path("data"))


#: Published specs too heavy for CI in full run in this reduced form (each spec's header shows it).
REDUCED = {
    "fashion_mlp.yaml": ["data.dataset.limit=2000", "data.dataset.test_limit=1000"],
    "fashion_convnet.yaml": ["data.dataset.limit=500", "data.dataset.test_limit=500"],
    "fashion_early_stopping.yaml": ["data.dataset.test_limit=1000"],
    **{
        f"table31_{data}_{model}.yaml": ["data.dataset.limit=2000", "data.dataset.test_limit=500"]
        for data in ("fashion", "mnist")
        for model in ("ls_ovr", "ls_ovo", "logistic_ovr", "logistic_ovo", "multinomial")
    },
}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: str(p.relative_to(ROOT)))
def test_spec_runs_an_epoch_and_logs_its_model(
    spec: Path, workdir: Path, migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = load_spec(spec).data.dataset
    if dataset.type == "fashion_mnist" and not dataset.directory.exists():
        pytest.skip(f"{dataset.directory} missing: apt-get install dataset-fashion-mnist")
    if dataset.type == "mnist" and not dataset.directory.exists():
        pytest.skip(f"{dataset.directory} missing: copy MNIST's four IDX files there (no Debian package ships them)")
    write_pipeline_data(spec)
    overrides = [arg for value in REDUCED.get(spec.name, []) for arg in ("--set", value)]
    assert main(["run", str(spec), "--tracking-uri", migrated_tracking_uri, "--set", "train.epochs=1", *overrides]) == 0
    # Tracked, a run (not folds) logs its model for use: every component a shipped spec names
    # can be saved (one that cannot would only warn).
    out, err = capsys.readouterr()
    assert "could not be logged for use" not in err
    assert ("MLflow model: runs:/" in out) == (not load_spec(spec).data.split.is_cv)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,metric,bound",
    [
        ("breast_cancer_logistic", "test/roc_auc", 0.97),
        ("digits_mlp", "test/accuracy", 0.95),
    ],
)
def test_headline_specs_reach_their_marks(name: str, metric: str, bound: float, workdir: Path) -> None:
    out = workdir / "metrics.json"
    assert main(["run", str(ROOT / "specs" / f"{name}.yaml"), "--no-track", "--metrics-out", str(out)]) == 0
    assert json.loads(out.read_text())[metric] >= bound
