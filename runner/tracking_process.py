"""MLflow in a helper process, so that a run does not wait for MLflow to start.

``runner run`` starts it first thing. On another core it imports MLflow (~1.5 s) while the
runner imports torch and loads the data, and opens the store while the model is built; the
loop's metric and tag writes are not waited for (a failed one is reported by the next call
that waits). Creating and ending runs and logging artifacts wait, so a file may be deleted
as soon as ``log_artifact`` returns and an ended run is in the store.

It also ends what the runner could not: a run the runner leaves open when it dies (SIGKILL,
the OOM killer) is marked KILLED with a ``specrun.error`` that says so, instead of staying
RUNNING. It ignores SIGINT and SIGTERM: Ctrl-C reaches the whole process group, and the
runner ends its run as KILLED through this process.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Optional, Sequence

from runner.mlflow_store import MetricRow, MlflowStore, Pair, import_mlflow

#: The ``specrun.error`` of a run left open by a runner that died.
ABANDONED = (
    "the runner process ended without ending this run (it was killed: SIGKILL, the OOM killer?); "
    "continue it with `runner run --resume RUN_ID`"
)
#: Calls the runner does not wait for.
UNAWAITED = frozenset({"log_batch", "open_store"})


class TrackingError(RuntimeError):
    """MLflow failed in the tracking process; the message carries its error."""


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # the directory was removed; relative paths mean nothing now
        return ""


class TrackingProcess:
    """``MlflowStore``'s methods, carried out by a helper process in the order they are called."""

    def __init__(self) -> None:
        # A fresh interpreter, not multiprocessing's spawn: that would re-run the caller's
        # __main__ (a script without a main guard would start over), and fork is unsafe once
        # torch runs threads. The process talks over one end of a socket pair.
        self._connection, theirs = multiprocessing.Pipe()
        package_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "runner.tracking_process", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env,
        )
        theirs.close()
        self._lock = threading.Lock()  # the checkpoint writer's thread logs artifacts too
        self._sent = 0

    def _call(self, name: str, *args: Any) -> Any:
        with self._lock:
            self._sent += 1
            number = self._sent
            try:
                # The caller's directory goes along: relative URIs and paths mean what they mean here.
                self._connection.send((number, name, args, _cwd()))
                if name in UNAWAITED:
                    return None
                answer = self._connection.recv()
                while answer[0] != number:  # the answer to a call interrupted by Ctrl-C while it waited
                    answer = self._connection.recv()
            except (OSError, EOFError) as error:
                raise TrackingError(f"the tracking process is gone (exit code {self._process.poll()})") from error
        _, ok, value = answer
        if not ok:
            raise TrackingError(value)
        return value

    def limits(self) -> tuple[int, int]:
        return tuple(self._call("limits"))  # type: ignore[return-value]

    def open_store(self, uri: str) -> None:
        self._call("open_store", uri)

    def create_run(self, uri: str, experiment: str, run_name: Optional[str], tags: dict[str, str]) -> str:
        return str(self._call("create_run", uri, experiment, run_name, tags))

    def reopen_run(self, uri: str, run_id: str) -> None:
        self._call("reopen_run", uri, run_id)

    def log_batch(
        self, run_id: str, metrics: Sequence[MetricRow] = (), params: Sequence[Pair] = (), tags: Sequence[Pair] = (),
    ) -> None:
        self._call("log_batch", run_id, list(metrics), list(params), list(tags))

    def log_artifact(self, run_id: str, path: str, artifact_path: Optional[str]) -> None:
        self._call("log_artifact", run_id, os.path.abspath(path), artifact_path)

    def end_run(self, run_id: str, status: str) -> None:
        self._call("end_run", run_id, status)

    def wait(self) -> None:
        """Return once every write sent so far is done; raise the failure of one."""
        self._call("wait")

    def close(self, timeout: float = 60.0) -> None:
        """Wait for the writes sent so far, let the process end the runs left open, stop it."""
        try:
            self._call("close")
        except TrackingError:
            pass
        self._connection.close()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()


def serve(connection: Connection) -> None:
    """The helper's loop: carry out each call in order until ``close`` or the runner is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    store = MlflowStore()
    import_mlflow()
    # MLflow's and SQLAlchemy's modules are hundreds of thousands of objects that live as
    # long as this process: out of the collector's sight, a full collection takes ~1 ms
    # instead of 0.2-0.3 s (one fell on the last write of a run, which the runner waited for).
    gc.freeze()
    unreported: Optional[str] = None  # the failure of a call nobody waited for
    while True:
        try:
            number, name, args, cwd = connection.recv()
        except EOFError:  # the runner died without closing
            break
        awaited = name not in UNAWAITED
        if name == "close":
            connection.send((number, True, None))
            break
        if awaited and unreported is not None:
            connection.send((number, False, unreported))
            unreported = None
            continue
        try:
            if cwd and cwd != os.getcwd():
                os.chdir(cwd)
            answer: Any = (number, True, getattr(store, name)(*args))
        except Exception as error:
            answer = (number, False, f"{type(error).__name__}: {error}")
        if awaited:
            connection.send(answer)
        elif not answer[1] and unreported is None:
            unreported = answer[2]
    if unreported is not None:
        print(f"specrun: warning: MLflow failed to record part of a run: {unreported}", file=sys.stderr)
    store.end_open_runs(ABANDONED)


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
    # Every call was carried out and answered: skip the interpreter's teardown of MLflow and
    # SQLAlchemy (~0.7 s), which the runner would otherwise wait for before it can exit.
    sys.stderr.flush()
    os._exit(0)
