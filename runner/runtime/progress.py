"""Per-epoch progress: a rich progress bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys


def _headline(metrics: dict[str, float], focus: str | None) -> str:
    shown = ["train/loss"] + ([focus] if focus and focus in metrics else [])
    return "  ".join(f"{key} {metrics[key]:.4f}" for key in shown if key in metrics)


class PlainProgress:
    """One line per epoch on stderr, for logs and CI."""

    def __init__(self, name: str, epochs: int, focus: str | None) -> None:
        self.name, self.epochs, self.focus = name, epochs, focus

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        print(f"[{self.name}] epoch {epoch}/{self.epochs}  {_headline(metrics, self.focus)}", file=sys.stderr, flush=True)


class RichProgress:
    """A live bar with the epoch, the training loss and one validation metric."""

    def __init__(self, name: str, epochs: int, focus: str | None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.focus = focus
        self._progress = Progress(
            TextColumn(f"[bold]{name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            transient=False,
        )
        self._task = self._progress.add_task("train", total=epochs, status="")

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self._progress.update(self._task, completed=epoch, status=_headline(metrics, self.focus))


class SilentProgress(PlainProgress):
    """Shows nothing (``quiet``: a fold or seed of a CV run, a search trial)."""

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        pass


def progress_for(name: str, epochs: int, focus: str | None, quiet: bool = False) -> PlainProgress | RichProgress:
    """Rich on a terminal, plain lines when stderr is not one; nothing when ``quiet``."""
    if quiet:
        return SilentProgress(name, epochs, focus)
    if sys.stderr.isatty():
        return RichProgress(name, epochs, focus)
    return PlainProgress(name, epochs, focus)
