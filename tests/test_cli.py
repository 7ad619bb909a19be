"""The command line as a user meets it: exit codes, lazy imports, schema and listing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.cli import main
from tests.conftest import ROOT, TINY_SPEC, subprocess_env


def runner(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, env=subprocess_env(), capture_output=True, text=True)


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


def test_the_command_ends_quickly_with_everything_written(
    write_spec: Callable[..., Path], migrated_tracking_uri: str, tmp_path: Path
) -> None:
    """``runner`` skips the interpreter's teardown; what a run writes is all there first."""
    from mlflow.tracking import MlflowClient

    out = tmp_path / "metrics.json"
    done = runner("run", str(write_spec()), "--tracking-uri", migrated_tracking_uri, "--metrics-out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "final metrics" in done.stdout and "MLflow run:" in done.stdout  # flushed before the exit
    run_id = done.stdout.split("MLflow run:")[1].split()[0]
    client = MlflowClient(migrated_tracking_uri)
    run = client.get_run(run_id)  # no waiting: ended before the exit
    assert run.info.status == "FINISHED" and json.loads(out.read_text())["test/accuracy"] == run.data.metrics["test/accuracy"]
    stored = {a.path for folder in (None, "model", "checkpoints") for a in client.list_artifacts(run_id, folder)}
    assert {"spec.resolved.yaml", "metrics.json", "model/weights.pt", "checkpoints/last.pt"} <= stored


def test_a_run_that_raises_exits_1_with_one_line_and_with_its_traceback_under_debug(
    write_spec: Callable[..., Path], migrated_tracking_uri: str, tmp_path: Path
) -> None:
    diverging = write_spec(
        "name: nan\ndata: {dataset: diabetes, transforms: [standardize], split: {test: 0.2}}\nmodel: linear\n"
        "loss: mse\noptimizer: {type: sgd, lr: 3.0}\ntrain: {epochs: 40, batch_size: full}\n",
        name="nan.yaml",
    )
    done = runner("run", str(diverging), "--tracking-uri", migrated_tracking_uri, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "runner: error: the training loss became NaN or infinite at epoch" in done.stderr
    debugged = runner("--debug", "run", str(diverging), "--tracking-uri", migrated_tracking_uri, cwd=tmp_path)
    assert debugged.returncode == 1 and "NonFiniteLoss" in debugged.stderr and "Traceback" in debugged.stderr


def test_a_store_that_cannot_take_the_run_stops_it_with_a_plain_message(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    # The run is created while the first epoch trains; the end of that epoch learns it failed.
    (tmp_path / "afile").write_text("")
    done = runner("run", str(write_spec()), "--tracking-uri", f"sqlite:///{tmp_path / 'afile' / 'mlflow.db'}", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "runner: error: the MLflow run could not be created: FileExistsError" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    "command",
    [["run"], ["run", "--seeds", "2"], ["run", "--set", "data.split={folds: 2}"], ["lr-find", "--steps", "3"], ["search"]],
    ids=["run", "seeds", "folds", "lr-find", "search"],
)
def test_a_device_this_machine_lacks_exits_2_before_anything_is_logged(
    command: list[str], write_spec: Callable[..., Path], migrated_tracking_uri: str, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    search = "search:\n  metric: val/loss\n  n_trials: 1\n  space: {optimizer.lr: {type: float, low: 0.001, high: 0.1}}\n"
    spec = write_spec(TINY_SPEC + "device: cuda:99\n" + (search if command == ["search"] else ""))
    done = runner(command[0], str(spec), *command[1:], "--tracking-uri", migrated_tracking_uri, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "runner: error: device 'cuda:99' was asked for, but" in done.stderr and "Traceback" not in done.stderr
    client = MlflowClient(migrated_tracking_uri)
    assert [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])] == []
    assert not (tmp_path / "studies").exists()


QUICK_EXIT = """\
import concurrent.futures, threading, time
import runner.cli as cli

pool = concurrent.futures.ThreadPoolExecutor(2)
pool.submit(lambda: 1).result()  # an idle executor nobody shut down: must not hang the exit
threading.Thread(target=lambda: (time.sleep(0.3), print("worker finished", flush=True))).start()
cli.main = lambda argv=None: 3
cli.entry()
"""


def test_the_quick_exit_waits_for_threads_and_keeps_the_exit_code() -> None:
    done = subprocess.run([sys.executable, "-c", QUICK_EXIT], env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and done.stdout.strip() == "worker finished", done.stderr


COLLECTIONS = """\
import atexit, gc, sys
import runner.cli as cli

full = []
gc.callbacks.append(lambda phase, info: full.append(1) if phase == "stop" and info["generation"] == 2 else None)
atexit.register(lambda: print(len(full), gc.isenabled(), gc.get_freeze_count() > 100_000))
sys.argv = ["runner", *sys.argv[1:]]
cli.entry()
"""


def test_a_run_makes_no_full_garbage_collection(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    # Start-up (imports) runs with the collector off; the loop freezes what is alive and
    # switches it on: no full pass over the ~700k long-lived objects (there were seven).
    done = subprocess.run(
        [sys.executable, "-c", COLLECTIONS, "run", str(write_spec()), "--no-track"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 True True"
    # A command that does not train leaves the collector as Python has it.
    checked = subprocess.run(
        [sys.executable, "-c", COLLECTIONS, "validate", str(write_spec())],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert checked.returncode == 0 and checked.stdout.splitlines()[-1] == "0 True False", checked.stderr


def test_the_collector_is_left_alone_when_called_from_python() -> None:
    import gc

    from runner.runtime import gc_policy

    frozen = gc.get_freeze_count()
    gc_policy.settle()
    assert gc.isenabled() and gc.get_freeze_count() == frozen


@pytest.mark.slow
@pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), pytest.param("mysql", marks=pytest.mark.mysql)]
)
def test_runs_started_together_on_a_new_store_all_land(
    write_spec: Callable[..., Path], tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    # Each would create and migrate the new store's tables; all but one failed ("duplicate
    # column" on SQLite and MySQL, a duplicate key in pg_type on PostgreSQL): many workers,
    # one new database.
    from mlflow.tracking import MlflowClient

    uri = {
        "sqlite": lambda: f"sqlite:///{tmp_path / 'new.db'}",
        "postgresql": lambda: request.getfixturevalue("pg_urls")[1],
        "mysql": lambda: request.getfixturevalue("mysql_url"),
    }[store]()
    spec = write_spec()
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "runner", "run", str(spec), "--set", f"seed={seed}", "--tracking-uri", uri],
            cwd=tmp_path,
            env=subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    errors = [child.communicate(timeout=300)[1] for child in children]
    assert [child.returncode for child in children] == [0] * 4, errors
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 4
    assert all(r.inputs.dataset_inputs[0].dataset.name == "breast_cancer" for r in runs)  # written by the tracking process


def test_a_tracking_server_that_cannot_be_reached_exits_2_before_training(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {k: v for k, v in subprocess_env().items() if k.lower() not in ("http_proxy", "https_proxy")}
    done = subprocess.run(
        [sys.executable, "-m", "runner", "run", str(write_spec()), "--tracking-uri", f"http://127.0.0.1:{port}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert f"runner: error: the MLflow tracking server http://127.0.0.1:{port} cannot be reached" in done.stderr
    assert "epoch" not in done.stderr and not (tmp_path / ".specrun").exists()
