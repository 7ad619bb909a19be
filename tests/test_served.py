"""The MLflow model a run logs for use: raw features in, the run's own predictions out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mlflow.pyfunc
import mlflow.pytorch
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from sklearn.preprocessing import StandardScaler

from runner.cli import main
from runner.data import splits
from runner.data.prepare import load
from runner.spec import load_spec

SPEC = """\
name: served
seed: 3
data:
  dataset: digits
  transforms: [standardize]
  split: {test: 0.25, val: 0.1}
model: {type: mlp, hidden: [16]}
loss: cross_entropy
optimizer: {type: adam, lr: 0.01}
train: {epochs: 3, batch_size: 64}
metrics: [accuracy]
"""


#: Hide the editable install of specrun (its import hook), then load a model from a folder
#: and print where ``runner`` came from and a file with the predictions.
WITHOUT_SPECRUN = """
import sys
sys.meta_path = [f for f in sys.meta_path if "specrun" not in getattr(f, "__module__", "") and "specrun" not in repr(f)]
sys.path = [p for p in sys.path if p not in ("", ".")]
assert "runner" not in sys.modules
import mlflow.pyfunc, numpy as np
model = mlflow.pyfunc.load_model(sys.argv[1])
np.save("answer.npy", model.predict(np.load(sys.argv[2])))
import runner
print(runner.__file__, "answer.npy")
"""


@pytest.fixture(autouse=True)
def _own_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a model puts its ``code/`` directory first on sys.path; not for later tests."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _only_run_id(uri: str) -> str:
    client = MlflowClient(uri)
    (run,) = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    return str(run.info.run_id)


def test_the_logged_model_predicts_from_raw_features_what_the_run_tested(
    workdir: Path, write_spec: Callable[..., Path], migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_file = write_spec(SPEC)
    out = workdir / "metrics.json"
    assert main(["run", str(spec_file), "--tracking-uri", migrated_tracking_uri, "--metrics-out", str(out)]) == 0
    run_id = _only_run_id(migrated_tracking_uri)
    assert f"MLflow model: runs:/{run_id}/model" in capsys.readouterr().out
    client = MlflowClient(migrated_tracking_uri)
    assert {"model/MLmodel", "model/weights.pt"} <= {a.path for a in client.list_artifacts(run_id, "model")}

    # The run's own test rows, raw, as the dataset gives them.
    spec = load_spec(spec_file, [])
    loaded = load(spec)
    parts = splits.holdout(len(loaded.table.y), loaded.labels, spec.data.split, spec.seed, False)
    raw, labels = loaded.table.x[parts.test], loaded.table.y[parts.test]

    mlflow.set_tracking_uri(migrated_tracking_uri)
    model = mlflow.pytorch.load_model(f"runs:/{run_id}/model")
    with torch.no_grad():
        probabilities = model(torch.from_numpy(raw)).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)  # the softmax is in the model
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    assert accuracy == pytest.approx(json.loads(out.read_text())["test/accuracy"], abs=1e-6)

    # Exactly the logged weights behind the scaler fitted on the run's training rows.
    network = model.network
    network.load_state_dict(torch.load(client.download_artifacts(run_id, "model/weights.pt", str(workdir))))
    scaler = StandardScaler().fit(loaded.table.x[parts.train])
    with torch.no_grad():
        by_hand = torch.softmax(network(torch.from_numpy(scaler.transform(raw).astype(np.float32))), dim=-1).numpy()
    np.testing.assert_array_equal(probabilities, by_hand)

    # The pyfunc flavor answers arrays the same way, and states its input in the signature.
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    np.testing.assert_array_equal(pyfunc.predict(raw), probabilities)
    assert pyfunc.metadata.get_input_schema().inputs[0].shape == (-1, 64)

    # It loads where specrun is not installed: from the code it carries.
    local = client.download_artifacts(run_id, "model", str(workdir / "download"))
    np.save(workdir / "raw.npy", raw)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SPECRUN, local, str(workdir / "raw.npy")],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    origin, answer = done.stdout.split()
    assert Path(origin).is_relative_to(local) and np.array_equal(np.load(answer), probabilities)


def test_log_model_false_logs_the_weights_only(
    write_spec: Callable[..., Path], migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(SPEC)
    assert main(["run", str(spec), "--tracking-uri", migrated_tracking_uri, "--set", "tracking.log_model=false"]) == 0
    run_id = _only_run_id(migrated_tracking_uri)
    assert "MLflow model" not in capsys.readouterr().out
    assert [a.path for a in MlflowClient(migrated_tracking_uri).list_artifacts(run_id, "model")] == ["model/weights.pt"]


def test_an_image_model_takes_images_and_a_regression_model_answers_values(
    workdir: Path, write_spec: Callable[..., Path], migrated_tracking_uri: str
) -> None:
    """No transforms and a 4-d input (a ConvNet on images from an NPZ); the identity link (diabetes)."""
    rng = np.random.default_rng(0)
    np.savez(workdir / "images.npz", x=rng.random((48, 1, 8, 8), dtype=np.float32), y=np.arange(48) % 3)
    images = (
        SPEC.replace("dataset: digits", f"dataset: {{type: npz, path: {workdir / 'images.npz'}}}")
        .replace("transforms: [standardize]", "transforms: []")
        .replace("{type: mlp, hidden: [16]}", "cnn")
    )
    regression = SPEC.replace("digits", "diabetes").replace("cross_entropy", "mse").replace("metrics: [accuracy]", "metrics: [mae]")
    mlflow.set_tracking_uri(migrated_tracking_uri)
    for text, name, shape, answer in [(images, "images", (-1, 1, 8, 8), (2, 3)), (regression, "diabetes", (-1, 10), (2,))]:
        assert (
            main(
                [
                    "run",
                    str(write_spec(text, f"{name}.yaml")),
                    "--tracking-uri",
                    migrated_tracking_uri,
                    "--experiment",
                    name,
                    "--set",
                    "train.epochs=1",
                ]
            )
            == 0
        )
        (run,) = MlflowClient(migrated_tracking_uri).search_runs([mlflow.get_experiment_by_name(name).experiment_id])
        model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
        assert model.metadata.get_input_schema().inputs[0].shape == shape
        assert model.predict(np.zeros((2, *shape[1:]), dtype=np.float32)).shape == answer


def test_a_model_that_cannot_be_saved_costs_the_run_its_model_not_its_status(
    write_spec: Callable[..., Path], migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SPEC.replace("transforms: [standardize]", 'transforms: [standardize, "tests.imported_components:unpicklable"]')
    assert main(["run", str(write_spec(text)), "--tracking-uri", migrated_tracking_uri, "--allow-imports"]) == 0
    out, err = capsys.readouterr()
    assert "runner: warning: the model could not be logged for use (TypeError: cannot pickle '_thread.lock' object" in " ".join(err.split())
    assert "MLflow model" not in out
    client = MlflowClient(migrated_tracking_uri)
    run = client.get_run(_only_run_id(migrated_tracking_uri))
    assert run.info.status == "FINISHED" and "_thread.lock" in run.data.tags["specrun.model_error"]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model")] == ["model/weights.pt"]
