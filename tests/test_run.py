"""``runner run`` end to end against a real SQLite MLflow store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.data.schema import TensorDatasetSchema
from mlflow.tracking import MlflowClient

from runner.cli import main
from tests.conftest import TINY_SPEC, subprocess_env


def only_run(uri: str):
    client = MlflowClient(tracking_uri=uri)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return client, runs[0]


def test_run_logs_params_metrics_artifacts_and_tags(workdir: Path, write_spec: Callable[..., Path], tracking_uri: str) -> None:
    out = workdir / "metrics.json"
    spec = write_spec()
    assert main(["run", str(spec), "--tracking-uri", tracking_uri, "--metrics-out", str(out)]) == 0
    client, run = only_run(tracking_uri)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "tiny"

    params = run.data.params
    assert params["optimizer.type"] == "adam" and params["optimizer.lr"] == "0.01"
    assert params["model.hidden"] == "[8]" and params["optimizer.betas"] == "[0.9, 0.999]"
    assert params["metrics.1.type"] == "roc_auc" and params["seed"] == "3"

    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert len(client.get_metric_history(run.info.run_id, "val/roc_auc")) == 3
    assert {"test/accuracy", "test/roc_auc", "test/loss"} <= set(run.data.metrics)

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"spec.resolved.yaml", "metrics.json", "model"} <= artifacts
    # The weights, and beside them the MLflow model for use (tests/test_served.py).
    assert {"model/weights.pt", "model/MLmodel", "model/data", "model/code"} <= {
        a.path for a in client.list_artifacts(run.info.run_id, "model")
    }

    tags = run.data.tags
    assert len(tags["specrun.spec_sha256"]) == 64 and len(tags["specrun.data_sha256"]) == 64

    # The data as MLflow's dataset input (the Datasets column of `mlflow ui`).
    (used,) = run.inputs.dataset_inputs
    assert (used.dataset.name, used.dataset.digest) == ("breast_cancer", tags["specrun.data_sha256"][:16])
    assert json.loads(used.dataset.profile) == {"num_rows": 569}
    rows = {t.key.removeprefix("specrun."): int(t.value) for t in used.tags}
    assert rows["train_rows"] + rows["val_rows"] + rows["test_rows"] == 569 and rows["test_rows"] == 114
    schema = TensorDatasetSchema.from_dict(json.loads(used.dataset.schema))
    assert schema.features.inputs[0].shape == (-1, 30) and schema.targets.inputs[0].shape == (-1,)
    assert used.dataset.source_type == "code"
    assert tags["specrun.torch"].startswith("2.") and tags["specrun.device"] == "cpu"
    assert tags["specrun.version"] and tags["specrun.python"]

    written = json.loads(out.read_text())
    assert written["test/accuracy"] == pytest.approx(run.data.metrics["test/accuracy"])


def test_two_runs_give_bit_identical_metrics(workdir: Path, write_spec: Callable[..., Path]) -> None:
    spec = write_spec()
    first, second = workdir / "a.json", workdir / "b.json"
    assert main(["run", str(spec), "--no-track", "--metrics-out", str(first)]) == 0
    assert main(["run", str(spec), "--no-track", "--metrics-out", str(second)]) == 0
    assert first.read_text() == second.read_text()
    changed = workdir / "c.json"
    assert main(["run", str(spec), "--no-track", "--set", "seed=4", "--metrics-out", str(changed)]) == 0
    assert changed.read_text() != first.read_text()


def test_invalid_spec_exits_2_and_logs_nothing(workdir: Path, write_spec: Callable[..., Path]) -> None:
    spec = write_spec(TINY_SPEC.replace("lr: 0.01", "lr: -1"))
    assert main(["run", str(spec)]) == 2
    assert not (workdir / "mlflow.db").exists() and not (workdir / "mlruns").exists()


def test_data_that_cannot_serve_the_spec_exits_2_and_logs_nothing(workdir: Path, write_spec: Callable[..., Path]) -> None:
    spec = write_spec(TINY_SPEC.replace("dataset: breast_cancer", "dataset: {path: missing.csv, target: y}"))
    assert main(["run", str(spec)]) == 2
    assert not (workdir / "mlflow.db").exists()


def test_git_commit_and_dirty_flag_are_tagged(workdir: Path, write_spec: Callable[..., Path], tracking_uri: str) -> None:
    spec = write_spec()
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run([*git, "add", "spec.yaml"], check=True)
    subprocess.run([*git, "commit", "-qm", "spec"], check=True)
    assert main(["run", str(spec), "--tracking-uri", tracking_uri]) == 0
    _, run = only_run(tracking_uri)
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert run.data.tags["mlflow.source.git.commit"] == head
    assert run.data.tags["specrun.git_dirty"] == "false"


def test_over_long_param_becomes_a_visible_hash_marker(workdir: Path, write_spec: Callable[..., Path], tracking_uri: str) -> None:
    long_description = "x" * 7000
    spec = write_spec(TINY_SPEC + f"description: {long_description}\n")
    assert main(["run", str(spec), "--tracking-uri", tracking_uri]) == 0
    _, run = only_run(tracking_uri)
    value = run.data.params["description"]
    assert value.startswith("sha256:") and value.endswith(", see spec.resolved.yaml")


def test_file_datasets_csv_and_parquet(workdir: Path, write_spec: Callable[..., Path]) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["label"] = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    frame.to_csv("table.csv", index=False)
    frame.to_parquet("table.parquet")
    for name in ("table.csv", "table.parquet"):
        spec = write_spec(TINY_SPEC.replace("dataset: breast_cancer", f"dataset: {{path: {name}, target: label}}"))
        out = workdir / f"{name}.json"
        assert main(["run", str(spec), "--no-track", "--set", "train.epochs=20", "--metrics-out", str(out)]) == 0
        assert json.loads(out.read_text())["test/accuracy"] > 0.9


def test_nan_loss_marks_the_run_failed_and_keeps_a_checkpoint(
    workdir: Path, write_spec: Callable[..., Path], tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = TINY_SPEC.replace("optimizer: {type: adam, lr: 0.01}", "optimizer: {type: sgd, lr: 1.0e+30}")
    text = text.replace("loss: bce", "loss: cross_entropy").replace("epochs: 3", "epochs: 8")
    spec = write_spec(text)
    assert main(["run", str(spec), "--tracking-uri", tracking_uri]) == 1
    err = capsys.readouterr().err
    assert "runner: error: " in err and "NaN or infinite at epoch" in err and "Traceback" not in err
    client, run = only_run(tracking_uri)
    assert run.info.status == "FAILED"
    assert "NonFiniteLoss" in run.data.tags["specrun.error"]


def _sigint_as_in_a_terminal() -> None:
    # A child inherits an ignored SIGINT, and some library may have left this process's
    # SIGINT ignored (CI saw it); a runner started from a terminal has the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_marks_the_run_killed_with_its_last_checkpoint(workdir: Path, write_spec: Callable[..., Path], tracking_uri: str) -> None:
    spec = write_spec(
        TINY_SPEC.replace("epochs: 3", "epochs: 100000")
        .replace("dataset: breast_cancer", "dataset: digits")
        .replace("loss: bce", "loss: cross_entropy")
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", str(spec), "--tracking-uri", tracking_uri],
        cwd=workdir,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_sigint_as_in_a_terminal,
    )
    # Wait until a few epochs are logged, then interrupt as a terminal's Ctrl-C would: the
    # whole process group (the runner and its tracking process) gets SIGINT.
    assert child.stderr is not None
    try:
        for line in child.stderr:
            if "epoch 3/" in line:
                break
        os.killpg(child.pid, signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:  # a failed test must not leave a runner training for the rest of the suite
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == 130, err
    client, run = only_run(tracking_uri)
    assert run.info.status == "KILLED"
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")] == ["checkpoints/last.pt"]
    assert (
        f"run {run.info.run_id} is marked KILLED and its last checkpoint kept: continue it with `runner run --resume {run.info.run_id}`"
        in err
    )


class _SwallowsAnInterrupt:
    """At epoch 2, Ctrl-C arrives while code that drops exceptions runs (as Python does for
    one raised inside a finalizer): the run must still stop, at the end of the next epoch."""

    def __init__(self) -> None:
        self.epochs = 0

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs = epoch
        if epoch == 2:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1.0)  # the handler runs here
            except KeyboardInterrupt:
                pass


@pytest.mark.usefixtures("default_sigint")
def test_an_interrupt_lost_in_a_finalizer_still_stops_the_run(workdir: Path, write_spec: Callable[..., Path], tracking_uri: str) -> None:
    from runner.runs.experiment import RunOptions, run
    from runner.spec import load_spec

    spec = load_spec(write_spec(TINY_SPEC.replace("epochs: 3", "epochs: 50")))
    swallower = _SwallowsAnInterrupt()
    with pytest.raises(KeyboardInterrupt):
        run(spec, RunOptions(tracking_uri=tracking_uri, quiet=True, reporters=[swallower]))
    assert swallower.epochs == 2  # stopped at the end of epoch 3, before the reporters heard of it
    assert only_run(tracking_uri)[1].info.status == "KILLED"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_runs_land_in_the_store_of_the_directory_they_ran_in(
    tmp_path: Path, write_spec: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default ``sqlite:///mlflow.db`` is the current directory's, also after a chdir in
    one process (MLflow caches stores by URI: a relative one kept naming the first)."""
    spec = write_spec(TINY_SPEC.replace("epochs: 3", "epochs: 1"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        assert main(["run", str(spec)]) == 0
    for name in ("a", "b"):
        client = MlflowClient(f"sqlite:///{tmp_path / name / 'mlflow.db'}")
        runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
        assert len(runs) == 1 and (tmp_path / name / "mlruns").is_dir()
