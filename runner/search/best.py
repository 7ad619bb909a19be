"""The winner: ``<spec>.best.yaml`` beside the spec (the resolved spec with the best trial's
values, without its ``search:`` block), so that ``runner run <spec>.best.yaml`` retrains it;
logged to the study's parent run, and the best trial's run tagged."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from runner.search.objective import Context
from runner.search.study import directions_of
from runner.spec.schema import Spec
from runner.tracking import provenance, record


def best_path(spec_file: Path) -> Path:
    return spec_file.with_name(f"{spec_file.stem}.best.yaml")


def best_trial(study: optuna.Study, spec: Spec) -> FrozenTrial | None:
    """The best complete trial; for several objectives, the Pareto-optimal trial best on
    the first objective."""
    assert spec.search is not None
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return None
    if len(study.directions) == 1:
        return study.best_trial
    first_max = directions_of(spec.search)[0] == "maximize"
    front = study.best_trials
    return max(front, key=lambda t: t.values[0]) if first_max else min(front, key=lambda t: t.values[0])


def best_text(context: Context, trial: FrozenTrial) -> str:
    """best.yaml: a header saying where it came from, then the resolved spec."""
    study_name = context.study_name
    data = context.trial_spec(trial.user_attrs["overrides"]).to_data()
    data.pop("search", None)
    data.pop("expect", None)  # it states the search's outcome, which a single run does not log
    values = ", ".join(f"{v:.6g}" for v in trial.values)
    header = (
        f"# The best trial of study {study_name!r}: trial {trial.number} (value {values}).\n"
        f"# Written by `runner search`; retrain it with: runner run {{file}}\n"
    )
    return header + provenance.spec_yaml(data)


def summary(study: optuna.Study, trial: FrozenTrial) -> dict[str, float]:
    """The study's outcome as numbers (``runner search --metrics-out``, checked by ``runner
    check``): the best value(s), the winner's numeric sampled values, the trial counts."""
    values = {"best/value": trial.values[0]} if len(trial.values) == 1 else {f"best/value_{i}": v for i, v in enumerate(trial.values)}
    for path, value in trial.params.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values[f"best/{path}"] = float(value)
    return values | summary_counts(study)


def summary_counts(study: optuna.Study) -> dict[str, float]:
    """``trials/complete``, ``trials/pruned``, ``trials/fail``: how many trials ended so."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    return {f"trials/{state.name.lower()}": float(len(study.get_trials(deepcopy=False, states=(state,)))) for state in states}


def write_best(context: Context, spec_file: Path, trial: FrozenTrial, out: Path | None = None) -> Path:
    path = out or best_path(spec_file)
    path.write_text(best_text(context, trial).replace("{file}", str(path)))
    return path


def record_best(uri: str, parent_run_id: str | None, trial: FrozenTrial, best_file: Path, previous_best: str | None) -> None:
    """Tag the best trial's run (untag a former best), and give the parent run the best
    values, the best run's id and best.yaml."""
    from runner.tracking.tracker import MlflowTracker, run_exists, tag_run

    # Runs of trials from before a change of tracking store are not in this one.
    run_id = trial.user_attrs.get("mlflow_run_id")
    if run_id and not run_exists(uri, run_id):
        run_id = None
    if previous_best and previous_best != run_id and run_exists(uri, previous_best):
        tag_run(uri, previous_best, {record.BEST_TRIAL: "false"})
    if run_id:
        tag_run(uri, run_id, {record.BEST_TRIAL: "true"})
    if parent_run_id is None:
        return
    parent = MlflowTracker.reopen(uri, parent_run_id)
    tags = {record.BEST_TRIAL_NUMBER: str(trial.number)}
    if run_id:
        tags[record.BEST_RUN_ID] = run_id
    parent.set_tags(tags)
    parent.log_metrics({f"best/{i}" if len(trial.values) > 1 else "best/value": v for i, v in enumerate(trial.values)})
    parent.log_artifact(best_file)
    parent.end("FINISHED")
