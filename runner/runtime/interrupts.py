"""Ctrl-C and SIGTERM while something trains: raised in the main thread as KeyboardInterrupt,
so that the run (or a cross-validation's parent run) is ended KILLED, its checkpoint kept,
instead of the process dying with the run RUNNING (SIGTERM's default)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

Handler = Callable[[int, Any], Any] | int | None


def _catchable() -> list[int]:
    """SIGINT and SIGTERM, less one ignored by whoever started the process (SIGINT for a
    background job) or handled outside Python (no handler to put back)."""
    return [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) not in (signal.SIG_IGN, None)]


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


class Interrupts:
    """Within ``with Interrupts():``, SIGINT and SIGTERM raise (``Terminated`` for SIGTERM)
    and are remembered. Python drops an exception raised inside a finalizer (``__del__``, a
    weakref callback) with an "Exception ignored" message, so an interrupt landing there would
    let training go on: ``epoch_end`` (a reporter) and ``check`` raise a remembered one again.

    A signal ignored by whoever started the process (SIGINT for a background job) stays
    ignored; outside the main thread, where Python cannot set handlers, nothing changes.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Handler] = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self.handle) for signum in _catchable()}
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def handle(self, signum: int, frame: Any) -> None:
        self.received = signum
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    def check(self) -> None:
        """Raise again an interrupt that was received (and perhaps swallowed)."""
        if self.received is not None:
            self.handle(self.received, None)

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.check()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done, then act as they would have: for a
    step that must not stop halfway (a message half written to the tracking process would
    leave the rest of the stream unreadable). Outside the main thread signals never
    interrupt, so nothing is needed there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: held.append(signum)) for signum in _catchable()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in held:
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            else:  # SIG_DFL: as the signal would have done, now
                os.kill(os.getpid(), signum)
