"""One trial: sample -> ``with_overrides`` -> a tracked child run -> the objective value(s).

A holdout spec reports its per-epoch validation metric to the pruner; a k-fold spec reports
each fold (the running mean of the folds for median/percentile, the fold's own score for
Wilcoxon, which compares fold scores pairwise) and its value is the mean over folds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import optuna

from runner.runs.experiment import RunOptions, RunStopped
from runner.search.space import sample
from runner.search.study import metrics_of
from runner.spec.load import with_overrides
from runner.spec.schema import Spec
from runner.tracking import record

#: The metric that counts a model's trainable parameters (e.g. a second objective to minimize).
PARAMS_METRIC = "model/params"


class SearchError(RuntimeError):
    """A search that cannot go on as asked (not a problem of one trial)."""


class TrialStopped(RunStopped, optuna.TrialPruned):
    """Raised from a reporter when the pruner stops a trial: the run ends KILLED and
    tagged, the trial PRUNED."""


@dataclass
class Context:
    """What every trial of one study shares."""

    spec: Spec
    study_name: str
    options: RunOptions
    parent_run_id: str | None = None
    #: The spec as written (after ``extends`` and ``--set``): trials override this.
    written: dict[str, Any] | None = None
    base: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.base = self.spec.to_data()

    def trial_spec(self, overrides: dict[str, Any]) -> Spec:
        """The spec one trial runs: the written spec with the sampled values, validated again."""
        return with_overrides(self.spec, overrides, self.written)


class PruningReporter:
    """Feeds the per-epoch objective to the trial and stops the run when the pruner says so."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial, self.metric = trial, metric

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.metric not in metrics:
            return
        self.trial.report(metrics[self.metric], epoch)
        if self.trial.should_prune():
            raise TrialStopped(f"pruned by the search at epoch {epoch} ({self.metric}={metrics[self.metric]:.6g})")


def is_kfold(spec: Spec) -> bool:
    """A cross-validated spec (``data.split.folds``, which comes with ``runner.runs.cv``)."""
    return getattr(spec.data.split, "folds", None) is not None


def trial_options(context: Context, trial: optuna.Trial, reporters: list[Any]) -> RunOptions:
    tags = {record.STUDY: context.study_name, record.TRIAL: str(trial.number)}
    return replace(
        context.options,
        parent_run_id=context.parent_run_id,
        run_name=f"{context.study_name}-trial-{trial.number}",
        reporters=reporters,
        extra_tags={**context.options.extra_tags, **tags},
        quiet=True,
    )


def objective(trial: optuna.Trial, context: Context) -> float | list[float]:
    """Run one trial of the study; its value, or one value per objective."""
    spec = context.spec
    assert spec.search is not None
    overrides = sample(trial, spec.search, context.base)
    trial.set_user_attr("overrides", overrides)
    trial_spec = context.trial_spec(overrides)
    metrics = metrics_of(spec.search)
    prune = len(metrics) == 1 and spec.search.pruner.type != "none"
    if is_kfold(trial_spec):
        if len(metrics) > 1:
            raise SearchError(f"a k-fold search optimizes one metric (the mean over folds), but got {metrics}")
        return _kfold_objective(trial, context, trial_spec, metrics[0], prune)

    from runner.runs.experiment import run

    reporters = [PruningReporter(trial, metrics[0])] if prune else []
    outcome = run(trial_spec, trial_options(context, trial, reporters))
    trial.set_user_attr("mlflow_run_id", outcome.run_id)
    found = {**outcome.metrics, PARAMS_METRIC: float(outcome.parameters)}
    values = [_value(found, name) for name in metrics]
    trial.set_user_attr("metrics", found)
    return values[0] if len(values) == 1 else values


def _value(metrics: dict[str, float], name: str) -> float:
    if name not in metrics:
        raise SearchError(f"the search metric {name!r} is not among the run's metrics: {sorted(metrics)}")
    return metrics[name]


def _kfold_objective(trial: optuna.Trial, context: Context, spec: Spec, metric: str, prune: bool) -> float:
    """Mean over folds, pruned between folds. ``runner.runs.cv.run_cv(spec, options, on_fold_end)``
    runs the folds as child runs of the trial's run and calls ``on_fold_end(fold, metrics)``
    after each; an exception raised there stops the remaining folds. With a pruner the folds
    train one after another (not as one batched ensemble), so a pruned trial saves the
    folds it does not train."""
    from runner.runs.cv import run_cv

    assert context.spec.search is not None
    wilcoxon = context.spec.search.pruner.type == "wilcoxon"
    scores: list[float] = []

    def on_fold_end(fold: int, fold_metrics: dict[str, float]) -> None:
        scores.append(_value(fold_metrics, metric))
        if not prune:
            return
        trial.report(scores[-1] if wilcoxon else statistics.fmean(scores), fold)
        if trial.should_prune():
            raise TrialStopped(f"pruned by the search after fold {fold} ({metric} mean {statistics.fmean(scores):.6g})")

    report: Callable[[int, dict[str, float]], None] = on_fold_end
    outcome = run_cv(spec, trial_options(context, trial, []), on_fold_end=report, parallel=not prune)
    trial.set_user_attr("mlflow_run_id", getattr(outcome, "run_id", None))
    trial.set_user_attr("fold_scores", scores)
    return statistics.fmean(scores)
