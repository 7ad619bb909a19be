"""The study as a rich table: live while trials run, the top k at the end."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.live import Live
from rich.table import Table

_STYLE = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red", "RUNNING": "cyan", "WAITING": "dim"}


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(title: str, trials: list[FrozenTrial], metric_names: list[str], steps: str) -> Table:
    """``steps``: what a trial reports its progress by, "epochs" or (a k-fold spec's) "folds"."""
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("state")
    for name in metric_names:
        table.add_column(name, justify="right")
    table.add_column(steps, justify="right")
    table.add_column("parameters")
    for trial in trials:
        values = trial.values or [None] * len(metric_names)
        if trial.state == TrialState.PRUNED and trial.intermediate_values:
            values = [trial.intermediate_values[trial.last_step]] if trial.last_step is not None else values
        overrides = trial.user_attrs.get("overrides", trial.params)
        state = trial.state.name
        table.add_row(
            str(trial.number),
            f"[{_STYLE.get(state, '')}]{state.lower()}[/]",
            *("" if v is None else _cell(v) for v in values),
            _steps_done(trial, steps),
            ", ".join(f"{k}={_cell(v)}" for k, v in overrides.items()),
        )
    return table


def _steps_done(trial: FrozenTrial, steps: str) -> str:
    # Epochs are reported from 1, folds from 0.
    if trial.last_step is None:
        return ""
    return str(trial.last_step + 1 if steps == "folds" else trial.last_step)


def trials_table(study: optuna.Study, metric_names: list[str], last: int = 20, steps: str = "epochs") -> Table:
    """The latest ``last`` trials, newest at the bottom."""
    trials = study.get_trials(deepcopy=False)[-last:]
    return _table(f"study {study.study_name}: {len(study.get_trials(deepcopy=False))} trials", trials, metric_names, steps)


def top_table(study: optuna.Study, metric_names: list[str], directions: Sequence[str], k: int = 5, steps: str = "epochs") -> Table:
    """The ``k`` best complete trials by the first objective."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    reverse = directions[0] == "maximize"
    ranked = sorted(complete, key=lambda t: t.values[0], reverse=reverse)[:k]
    return _table(f"top {len(ranked)} of {len(complete)} complete trials", ranked, metric_names, steps)


class LiveTrials:
    """Redraws the trials table after every trial (and on ``refresh``); a plain line per
    trial when the output is not a terminal."""

    def __init__(self, metric_names: list[str], console: Console | None = None, steps: str = "epochs") -> None:
        self.metric_names, self.steps = metric_names, steps
        self.console = console or Console(file=sys.stderr)
        self.live: Live | None = None
        self.shown: set[int] = set()

    def __enter__(self) -> LiveTrials:
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=2, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def refresh(self, study: optuna.Study) -> None:
        if self.live is not None:
            self.live.update(trials_table(study, self.metric_names, steps=self.steps))
            return
        for trial in study.get_trials(deepcopy=False):
            if trial.state.is_finished() and trial.number not in self.shown:
                values = ", ".join(_cell(v) for v in trial.values or [])
                self.console.print(f"trial {trial.number}: {trial.state.name.lower()} {values}", highlight=False)
                self.shown.add(trial.number)
