"""The command line as a user meets it: exit codes, lazy imports, schema and listing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from runner.cli import main
from tests.conftest import ROOT, subprocess_env


def runner(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args], cwd=cwd, env=subprocess_env(), capture_output=True, text=True
    )


def test_validate_exit_codes_and_messages(write_spec: Callable[..., Path]) -> None:
    good = write_spec()
    bad = write_spec("name: x\ndata: {dataset: iris}\nmodel: softmax\nloss: cross_entropy\noptimizer: {type: adma}\n", name="bad.yaml")
    ok = runner("validate", str(good))
    assert ok.returncode == 0 and "valid" in ok.stdout
    failed = runner("validate", str(good), str(bad))
    assert failed.returncode == 2
    assert f"{bad}:5:19: optimizer.type: unknown optimizer 'adma'. Did you mean 'adam'?" in failed.stderr


def test_validate_imports_neither_torch_nor_mlflow(write_spec: Callable[..., Path]) -> None:
    code = (
        "import sys; from runner.cli import main; rc = main(['validate', sys.argv[1]]);"
        "heavy = [m for m in ('torch', 'mlflow', 'sklearn', 'optuna') if m in sys.modules];"
        "print('HEAVY', heavy); raise SystemExit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(write_spec())], env=subprocess_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


def test_validate_answers_quickly(write_spec: Callable[..., Path]) -> None:
    # Not a timed assertion of performance, a guard against an eager torch import (~2 s here).
    start = time.perf_counter()
    done = runner("validate", str(write_spec()))
    assert done.returncode == 0
    assert time.perf_counter() - start < 5


def test_schema_is_json_schema_of_the_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Spec"
    assert {"data", "model", "loss", "optimizer"} <= set(schema["required"])
    text = json.dumps(schema)
    for name in ("adamw", "cross_entropy", "kaiming_normal", "onecycle", "breast_cancer"):
        assert name in text


def test_list_shows_components_with_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "optimizers"]) == 0
    out = capsys.readouterr().out
    assert "adam" in out and "sgd" in out and "nesterov" in out and "0.9" in out
    assert main(["list", "optimisers"]) == 2
    assert "Did you mean 'optimizers'?" in capsys.readouterr().err


def test_list_all_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    import registry

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind, reg in registry.REGISTRIES.items():
        assert kind in out
        for name in reg.names():
            assert name in out
