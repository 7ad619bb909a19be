"""MLflow in a helper process, so that a run does not wait for MLflow to start.

``runner run`` and ``runner search`` start it first thing. On another core it imports
MLflow (~1.5 s) while the runner imports torch and loads the data, and opens the store
while the model is built. The runner waits for little: a run is created while its first epoch trains (``create_run``
answers with a stand-in id at once, which later calls accept; ``resolve`` waits for the
run's own), and metric, tag and, where the caller keeps the file until the run ends,
artifact writes are not waited for. A failed write is reported by the next call that
waits; ending a run waits, so an ended run is in the store with everything sent before.

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
import socket
import struct
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

from runner.runtime.interrupts import deferred
from runner.runtime.warning_lines import as_lines, warn
from runner.tracking.errors import TrackingError
from runner.tracking.store import MetricRow, MlflowStore, Pair, import_mlflow

#: The ``specrun.error`` of a run left open by a runner that died; ``{run_id}`` becomes the
#: run to resume (a fold's or seed's parent: members resume with it).
ABANDONED = (
    "the runner process ended without ending this run (it was killed: SIGKILL, the OOM killer?); "
    "continue it with `runner run --resume {run_id}`"
)
#: Calls the runner does not wait for.
UNAWAITED = frozenset({"log_batch", "log_dataset", "open_store", "log_artifact_unawaited", "disown"})
#: How a stand-in run id begins (the rest is a fresh uuid: it names no real run).
STAND_IN = "specrun-creating-"


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # the directory was removed; relative paths mean nothing now
        return ""


class TrackingProcess:
    """``MlflowStore``'s methods, carried out by a helper process in the order they are called."""

    #: A write costs the caller a message: ``MlflowTracker`` writes a run's first epochs sooner.
    writes_in_background = True

    def __init__(self, abandoned: str = ABANDONED) -> None:
        """``abandoned``: the ``specrun.error`` of the runs left open by a caller that died."""
        # A fresh interpreter, not multiprocessing's spawn: that would re-run the caller's
        # __main__ (a script without a main guard would start over), and fork is unsafe once
        # torch runs threads. The process talks over one end of a socket pair.
        self._connection, theirs = multiprocessing.Pipe()
        package_root = str(Path(__file__).resolve().parents[2])  # the folder holding runner/
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "runner.tracking.process", str(theirs.fileno()), abandoned],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        self._socket = socket.socket(fileno=os.dup(self._connection.fileno()))
        # Calls come from the loop and the checkpoint writer's thread: one sends while the other
        # waits for an answer, and whoever reads answers keeps the ones others will collect.
        self._sending = threading.Lock()
        self._receiving = threading.RLock()
        self._sent = 0
        self._answers: dict[int, tuple[bool, Any] | None] = {}  # call -> answer (None: not read yet)
        self._kept: dict[int, tuple[bool, Any]] = {}  # answers for every later asker
        self._creating: dict[str, int] = {}  # stand-in run id -> the call creating the run
        self._limits = self._send("limits")  # answered once MLflow is imported, long before it is asked

    def _send(self, name: str, *args: Any) -> int:
        """Send a call (its number); the answer to one that is answered waits for ``_collect``."""
        with self._sending:
            self._sent += 1
            number = self._sent
            if name not in UNAWAITED:
                self._answers[number] = None
            # The caller's directory goes along: relative URIs and paths mean what they mean here.
            message = bytes(ForkingPickler.dumps((number, name, args, _cwd())))
            try:
                # One write for length and message (Connection.send writes a message of over
                # 16 KiB in two), and Ctrl-C held until it is written: a half-written message
                # would tear the stream.
                with deferred():
                    self._socket.sendall(struct.pack("!i", len(message)) + message)
            except OSError as error:
                raise self._gone() from error
        return number

    def _collect(self, number: int) -> Any:
        """The value answered to call ``number``; raises its failure."""
        with self._receiving:
            try:
                while self._answers[number] is None:
                    self._connection.poll(None)  # waiting may be interrupted; reading an answer may not
                    with deferred():
                        got, ok, value = self._connection.recv()
                    self._answers[got] = (ok, value)
            except (OSError, EOFError) as error:
                raise self._gone() from error
            except Exception as error:  # an answer that cannot be unpickled: the stream is lost
                raise TrackingError(f"the tracking process's answers cannot be read any more ({error!r})") from error
            ok, value = self._answers.pop(number)  # type: ignore[misc]
        if not ok:
            raise TrackingError(value)
        return value

    def _kept_answer(self, number: int) -> Any:
        """Like ``_collect``, for any number of askers (a run's id, MLflow's limits)."""
        with self._receiving:
            if number not in self._kept:
                try:
                    self._kept[number] = (True, self._collect(number))
                except TrackingError as error:
                    self._kept[number] = (False, str(error))
        ok, value = self._kept[number]
        if not ok:
            raise TrackingError(value)
        return value

    def _call(self, name: str, *args: Any) -> Any:
        number = self._send(name, *args)
        return None if name in UNAWAITED else self._collect(number)

    def _gone(self) -> TrackingError:
        return TrackingError(f"the tracking process is gone (exit code {self._process.poll()})")

    def limits(self) -> tuple[int, int]:
        return tuple(self._kept_answer(self._limits))

    def open_store(self, uri: str) -> None:
        self._call("open_store", uri)

    def create_run(self, uri: str, experiment: str, run_name: str | None, tags: dict[str, str]) -> str:
        """A stand-in id at once, which the later calls accept; the run is created meanwhile
        (``resolve`` waits for its own id, or raises why it could not be created)."""
        stand_in = STAND_IN + uuid.uuid4().hex
        self._creating[stand_in] = self._send("create_run", stand_in, uri, experiment, run_name, tags)
        return stand_in

    def resolve(self, run_id: str) -> str:
        """The run's own id for a stand-in (waiting for the run to be created); others as given."""
        if not run_id.startswith(STAND_IN):
            return run_id
        try:
            return str(self._kept_answer(self._creating[run_id]))
        except TrackingError as error:
            raise TrackingError(f"the MLflow run could not be created: {error}") from None

    def run_exists(self, uri: str, run_id: str) -> bool:
        return bool(self._call("run_exists", uri, run_id))

    def reopen_run(self, uri: str, run_id: str) -> None:
        self._call("reopen_run", uri, run_id)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricRow] = (),
        params: Sequence[Pair] = (),
        tags: Sequence[Pair] = (),
    ) -> None:
        self._call("log_batch", run_id, list(metrics), list(params), list(tags))

    def log_artifact(self, run_id: str, path: str, artifact_path: str | None, kept: bool = False) -> None:
        """Waits until the file is stored, unless the caller ``kept`` it unchanged until the run ends."""
        self._call("log_artifact_unawaited" if kept else "log_artifact", run_id, os.path.abspath(path), artifact_path)

    def log_dataset(self, run_id: str, row: dict[str, Any]) -> None:
        self._call("log_dataset", run_id, row)

    def end_run(self, run_id: str, status: str) -> None:
        self._call("end_run", run_id, status)

    def tag_run(self, uri: str, run_id: str, tags: Sequence[Pair]) -> None:
        self._call("tag_run", uri, run_id, list(tags))

    def disown(self, run_id: str) -> None:
        self._call("disown", run_id)

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
        self._socket.close()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()


def _carry_out(store: MlflowStore, name: str, args: list[Any], cwd: str) -> tuple[bool, Any]:
    """``(True, result)`` or ``(False, what went wrong)``."""
    try:
        if cwd and cwd != os.getcwd():
            os.chdir(cwd)
        return True, getattr(store, name.removesuffix("_unawaited"))(*args)
    except Exception as error:
        return False, f"{type(error).__name__}: {error}"


def serve(connection: Connection, abandoned: str = ABANDONED) -> None:
    """The helper's loop: carry out each call in order until ``close`` or the runner is gone;
    then end the runs left open KILLED, with ``abandoned`` as their ``specrun.error``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    store = MlflowStore()
    import_mlflow()
    # MLflow's and SQLAlchemy's modules are hundreds of thousands of objects that live as
    # long as this process: out of the collector's sight, a full collection takes ~1 ms
    # instead of 0.2-0.3 s (one fell on the last write of a run, which the runner waited for).
    gc.freeze()
    unreported: str | None = None  # the failure of a call nobody waited for
    runs: dict[str, str | None] = {}  # stand-in id -> the run's own (None: not created)
    while True:
        try:
            number, name, args, cwd = connection.recv()
        except EOFError:  # the runner died without closing
            break
        except Exception as error:  # a message torn by an interrupt: nothing after it can be read
            warn(f"the tracking process lost the runner's thread ({error})")
            break
        awaited = name not in UNAWAITED
        if name == "close":
            connection.send((number, True, None))
            break
        if name == "create_run":
            runs[args[0]] = None  # until created
        if awaited and unreported is not None:
            ok, value = False, unreported
            unreported = None
        elif name == "create_run":
            ok, value = _carry_out(store, name, args[1:], cwd)
            runs[args[0]] = value if ok else None
        elif any(isinstance(arg, str) and arg in runs and runs[arg] is None for arg in args):
            ok, value = True, None  # for a run never created: the runner hears why from resolve()
        else:
            ok, value = _carry_out(store, name, [runs.get(arg, arg) if isinstance(arg, str) else arg for arg in args], cwd)
        if awaited:
            connection.send((number, ok, value))
        elif not ok and unreported is None:
            unreported = value
    if unreported is not None:
        warn(f"MLflow failed to record part of a run: {unreported}")
    store.end_open_runs(abandoned)


if __name__ == "__main__":
    with as_lines():  # its stderr is the runner's
        serve(Connection(int(sys.argv[1])), sys.argv[2])
    # Every call was carried out and answered: skip the interpreter's teardown of MLflow and
    # SQLAlchemy (~0.7 s), which the runner would otherwise wait for before it can exit.
    sys.stderr.flush()
    os._exit(0)
