"""Models logged by earlier versions of specrun still load: their pickles name old module paths."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import mlflow.pyfunc
import mlflow.pytorch
import numpy as np
import pytest
import torch

import runner
from runner.results.logged_model import ServedModel

LOGGED_BY_87F47DB = Path(__file__).parent / "assets" / "model_logged_by_87f47db"


@pytest.fixture
def old_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy outside the repository: MLflow refuses a model inside a folder on sys.path."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    return Path(shutil.copytree(LOGGED_BY_87F47DB, tmp_path / "model"))


def test_a_model_logged_before_the_regrouping_loads_and_answers_as_it_did(old_model: Path) -> None:
    expected = np.load(old_model / "expected.npz")
    model = mlflow.pytorch.load_model(str(old_model))
    assert type(model) is ServedModel  # the old path ``runner.served`` gave today's class
    with torch.no_grad():
        answer = model(torch.from_numpy(expected["x"])).numpy()
    np.testing.assert_array_equal(answer, expected["predictions"])
    np.testing.assert_array_equal(mlflow.pyfunc.load_model(str(old_model)).predict(expected["x"]), expected["predictions"])


def test_every_moved_module_is_its_new_module_under_the_old_name() -> None:
    import importlib

    for old, new in runner.MOVED_MODULES.items():
        assert importlib.import_module(old) is importlib.import_module(new)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("runner.no_such_module")
