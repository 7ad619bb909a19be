"""``module:attr`` components: refused with a message that says how, imported with --allow-imports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.cli import main
from runner.spec.imports import references
from tests.conftest import ROOT, subprocess_env

SPEC = """\
name: imported
data: {dataset: iris, split: {test: 0.3}}
model: {type: "tests.imported_components:tiny", width: WIDTH}
loss: cross_entropy
optimizer: {type: adam, lr: 0.05}
train: {epochs: 3, batch_size: full}
metrics: [accuracy]
"""


def test_a_reference_without_the_flag_is_an_error_that_says_so(
    write_spec: Callable[..., Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "tests.imported_components", raising=False)  # as an earlier test may have left it
    assert main(["validate", str(write_spec(SPEC.replace("WIDTH", "3")))]) == 2
    err = capsys.readouterr().err
    assert "model.type: 'tests.imported_components:tiny' is a Python import reference" in err
    assert "--allow-imports" in err
    assert "tests.imported_components" not in sys.modules  # nothing was imported


def test_references_are_found_where_components_are_named() -> None:
    data = {
        "model": {"type": "a.b:c"},
        "loss": "mse",
        "metrics": ["accuracy", {"type": "m:n"}],
        "data": {"dataset": "x.y:z", "transforms": ["standardize"]},
    }
    assert sorted(references(data)) == sorted(
        [
            (("model", "type"), "models", "a.b:c"),
            (("metrics", 1, "type"), "metrics", "m:n"),
            (("data", "dataset"), "datasets", "x.y:z"),
        ]
    )


def _runner(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = subprocess_env() | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_allow_imports_builds_validates_and_runs_the_imported_component(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    bad = write_spec(SPEC.replace("WIDTH", "0"), "bad.yaml")
    refused = _runner("run", str(bad), "--no-track", "--allow-imports", cwd=tmp_path)
    assert refused.returncode == 2 and "model.width" in refused.stderr  # its own Params validate it
    good = write_spec(SPEC.replace("WIDTH", "5"), "good.yaml")
    done = _runner("run", str(good), "--no-track", "--allow-imports", "--metrics-out", "m.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "m.json").read_text())["test/accuracy"] > 0
    missing = write_spec(SPEC.replace("tiny", "nothing").replace("WIDTH", "5"), "missing.yaml")
    failed = _runner("run", str(missing), "--no-track", "--allow-imports", cwd=tmp_path)
    assert failed.returncode == 2 and "cannot import 'tests.imported_components:nothing'" in failed.stderr
