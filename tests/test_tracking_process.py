"""The tracking process: MLflow's writes in a helper process that also ends the runs a
killed runner leaves open."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from mlflow.tracking import MlflowClient

from runner.runtime.warning_lines import SpecrunWarning, as_lines
from runner.tracking.process import ABANDONED, TrackingError, TrackingProcess

from .conftest import subprocess_env, wait_gone


@pytest.fixture
def process() -> Any:
    started = TrackingProcess()
    yield started
    started.close()


def test_a_failed_write_nobody_waited_for_fails_the_next_call_that_waits(tmp_path: Path, process: TrackingProcess) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = process.create_run(uri, "writes", None, {})
    process.log_batch(run_id, params=[("lr", "0.1")])
    process.log_batch(run_id, params=[("lr", "0.2")])  # MLflow refuses to change a param
    with pytest.raises(TrackingError, match="lr"):
        process.end_run(run_id, "FINISHED")
    process.end_run(run_id, "FAILED")  # reported once; the process goes on
    run = MlflowClient(uri).get_run(process.resolve(run_id))
    assert run.info.status == "FAILED" and run.data.params == {"lr": "0.1"}


def test_a_run_the_store_could_not_create_fails_where_its_id_is_needed(tmp_path: Path, process: TrackingProcess) -> None:
    (tmp_path / "afile").write_text("")
    run_id = process.create_run(f"sqlite:///{tmp_path / 'afile' / 'mlflow.db'}", "lost", None, {})
    process.log_batch(run_id, params=[("lr", "0.1")])
    process.log_artifact(run_id, __file__, None, kept=True)
    process.end_run(run_id, "FAILED")  # nothing to write or end: no failure of their own
    with pytest.raises(TrackingError, match="could not be created: FileExistsError"):
        process.resolve(run_id)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    created = process.create_run(uri, "kept", None, {})  # the process goes on
    process.end_run(created, "FINISHED")
    assert MlflowClient(uri).get_run(process.resolve(created)).info.status == "FINISHED"


def test_a_kept_file_is_stored_without_waiting_and_a_failure_fails_the_end(tmp_path: Path, process: TrackingProcess) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = process.create_run(uri, "kept", None, {})
    (tmp_path / "notes.txt").write_text("kept\n")
    process.log_artifact(run_id, str(tmp_path / "notes.txt"), None, kept=True)
    process.log_artifact(run_id, str(tmp_path / "missing.txt"), None, kept=True)  # no error here
    with pytest.raises(TrackingError, match="missing.txt"):
        process.end_run(run_id, "FINISHED")
    process.end_run(run_id, "FAILED")
    run_id = process.resolve(run_id)
    assert [a.path for a in MlflowClient(uri).list_artifacts(run_id)] == ["notes.txt"]


def test_a_message_of_more_than_16_kib_arrives_whole(tmp_path: Path, process: TrackingProcess) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = process.create_run(uri, "large", None, {})
    rows = [("train/loss", 1.0 / step, 0, step) for step in range(1, 1001)]  # ~30 KiB pickled
    process.log_batch(run_id, metrics=rows)
    process.end_run(run_id, "FINISHED")
    assert len(MlflowClient(uri).get_metric_history(process.resolve(run_id), "train/loss")) == 1000


class _InterruptedMidWrite:
    """A socket whose write is interrupted halfway by Ctrl-C (as a full socket buffer makes
    sendall write in parts, checking for signals in between)."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket

    def sendall(self, data: bytes) -> None:
        half = len(data) // 2
        self.socket.sendall(data[:half])
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)  # a handler that may raise runs here
        self.socket.sendall(data[half:])


@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_during_a_write_waits_until_the_message_is_whole(tmp_path: Path, process: TrackingProcess) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = process.create_run(uri, "interrupted", None, {})
    process._socket, socket = _InterruptedMidWrite(process._socket), process._socket  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        process.log_batch(run_id, metrics=[("train/loss", 0.5, 0, 1)])
    process._socket = socket
    process.end_run(run_id, "KILLED")  # the stream is whole: the run ends as the runner says
    run = MlflowClient(uri).get_run(process.resolve(run_id))
    assert run.info.status == "KILLED" and "specrun.error" not in run.data.tags
    assert [m.value for m in MlflowClient(uri).get_metric_history(run.info.run_id, "train/loss")] == [0.5]


def test_a_torn_message_ends_the_runs_left_open(tmp_path: Path) -> None:
    # What an interrupt between the writes of one message would leave: nothing after it can
    # be read, so the process ends the runs left open, as when the runner dies.
    process = TrackingProcess()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = process.resolve(process.create_run(uri, "torn", None, {}))
    process._connection.send_bytes(b"\x80\x05 half a message")
    process._process.wait(60)
    process.close()
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["specrun.error"] == ABANDONED.format(run_id=run_id)


def test_relative_paths_mean_what_they_mean_to_the_caller(
    tmp_path: Path, process: TrackingProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = process.create_run(uri, "paths", "relative", {"k": "v"})
    Path("notes.txt").write_text("kept\n")
    process.log_artifact(run_id, "notes.txt", "docs")
    process.end_run(run_id, "FINISHED")
    client = MlflowClient(uri)
    run_id = process.resolve(run_id)
    assert [a.path for a in client.list_artifacts(run_id, "docs")] == ["docs/notes.txt"]
    assert client.get_run(run_id).data.tags["k"] == "v"


KILLED_RUNNER = """\
    import os, signal, sys
    from runner.tracking import tracker as tracking

    tracking.start_tracking_process()
    tracker = tracking.MlflowTracker(sys.argv[1], "killed")
    tracker.epoch_end(1, {"train/loss": 0.5})
    tracker.flush()
    left = tracking.MlflowTracker(sys.argv[1], "killed")  # another process ends this one
    left.disown()
    tracker.wait()
    print(tracker.run_id, left.run_id, tracking._process._process.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_runner_killed_with_sigkill_leaves_its_run_killed_not_running(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(KILLED_RUNNER))
    env = subprocess_env() | {"SPECRUN_TRACKING_PROCESS": "1"}
    done = subprocess.run([sys.executable, str(script), uri], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    run_id, left_id, helper = done.stdout.split()
    client = MlflowClient(uri)
    # The helper ends the runs it owns, then exits: once it is gone, nothing changes any more.
    with contextlib.suppress(psutil.NoSuchProcess):
        wait_gone([psutil.Process(int(helper))], "the tracking process")
    run = client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["specrun.error"] == ABANDONED.format(run_id=run_id)
    assert run.data.metrics == {"train/loss": 0.5}
    assert client.get_run(left_id).info.status == "RUNNING"  # disowned: left for another process to end


def test_without_a_process_to_be_had_mlflow_stays_in_the_runner(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.tracking import process as tracking_process
    from runner.tracking import tracker as tracking

    def refuse() -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(tracking_process, "TrackingProcess", refuse)
    monkeypatch.setattr(tracking, "_process", None)
    monkeypatch.delenv("SPECRUN_TRACKING_PROCESS", raising=False)
    with pytest.warns(SpecrunWarning, match="no tracking process .*; MLflow runs in this process"):
        tracking.start_tracking_process()
    assert tracking._process is None
    with as_lines():  # what the runner command shows of it
        tracking.start_tracking_process()
    assert "runner: warning: no tracking process" in capsys.readouterr().err
    assert type(tracking.store()).__name__ == "MlflowStore"
