"""The spec's sampler and pruner as Optuna objects, and the study they drive."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Literal

from runner.search.space import grid
from runner.spec.schema import Spec
from runner.spec.search_space import PrunerSpec, SearchSpec

if TYPE_CHECKING:
    import optuna


def metrics_of(search: SearchSpec) -> list[str]:
    return search.metric if isinstance(search.metric, list) else [search.metric]


def directions_of(search: SearchSpec) -> list[Literal["minimize", "maximize"]]:
    return search.direction if isinstance(search.direction, list) else [search.direction]


def trial_budget(search: SearchSpec, n_trials: int) -> int:
    """``n_trials``, but no more than a grid has points."""
    if search.sampler != "grid":
        return n_trials
    return min(n_trials, math.prod(len(points) for points in grid(search).values()))


def make_sampler(search: SearchSpec, seed: int | None) -> optuna.samplers.BaseSampler:
    """``tpe``, ``random``, ``grid``, ``cmaes``, ``qmc`` or ``nsga2``, seeded for a
    reproducible single-worker study."""
    import optuna

    samplers = optuna.samplers
    if search.sampler == "tpe":
        return samplers.TPESampler(seed=seed)
    if search.sampler == "random":
        return samplers.RandomSampler(seed=seed)
    if search.sampler == "grid":
        return samplers.GridSampler(grid(search), seed=seed)
    if search.sampler == "cmaes":
        return samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if search.sampler == "qmc":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # since 3.0
            return samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    return samplers.NSGAIISampler(seed=seed)


def make_pruner(pruner: PrunerSpec, epochs: int) -> optuna.pruners.BasePruner:
    """Fed with the per-epoch validation metric (or, for k-fold specs, per-fold scores)."""
    import optuna

    pruners = optuna.pruners
    if pruner.type == "median":
        return pruners.MedianPruner(n_startup_trials=pruner.startup_trials, n_warmup_steps=pruner.warmup_epochs)
    if pruner.type == "percentile":
        return pruners.PercentilePruner(pruner.percentile, n_startup_trials=pruner.startup_trials, n_warmup_steps=pruner.warmup_epochs)
    if pruner.type == "hyperband":
        return pruners.HyperbandPruner(min_resource=max(1, pruner.warmup_epochs), max_resource=epochs)
    if pruner.type == "successive_halving":
        return pruners.SuccessiveHalvingPruner(min_resource=max(1, pruner.warmup_epochs))
    if pruner.type == "wilcoxon":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # since 3.6
            return pruners.WilcoxonPruner(n_startup_steps=pruner.warmup_epochs)
    return pruners.NopPruner()


#: How many processes have run the study (its first draws with the spec's seed alone).
STARTS_ATTR = "specrun_starts"


def open_study(spec: Spec, name: str, storage: optuna.storages.BaseStorage, seed: int | None) -> optuna.Study:
    """Create the study, or load it when it exists (``--study NAME`` resumes by name)."""
    import optuna

    assert spec.search is not None
    directions = directions_of(spec.search)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(spec.search, seed),
        pruner=make_pruner(spec.search.pruner, spec.train.epochs),
        directions=directions,
        load_if_exists=True,
    )
    # Every process that runs the study (a resumed one, another terminal, a --workers
    # worker) counts itself in; seeded as the first, a later one would draw its values again.
    starts = int(study.user_attrs.get(STARTS_ATTR, 0))
    study.set_user_attr(STARTS_ATTR, starts + 1)
    if seed is not None and starts:
        study.sampler = make_sampler(spec.search, later_seed(seed, starts))
    return study


def later_seed(seed: int, starts: int) -> int:
    """The sampler's seed in the study's ``starts``-th process after the first: reproducible,
    and not the stream of any other (seed, start)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, starts]).generate_state(1)[0])
