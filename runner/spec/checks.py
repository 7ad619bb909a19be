"""Cross-field rules of a structurally valid spec, each a small named check.

A check returns ``(path, message)`` pairs; the loader locates them in the YAML.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import registry
from registry._registry import closest
from runner.spec.errors import Path
from runner.spec.schema import Spec

Finding = tuple[Path, str]
Check = Callable[[Spec], Iterator[Finding]]


def _loss_task(spec: Spec) -> str:
    return registry.LOSSES.get(spec.loss.type).meta.get("task", "any")


def check_loss_fits_dataset(spec: Spec) -> Iterator[Finding]:
    dataset_task = registry.DATASETS.get(spec.data.dataset.type).meta.get("task", "any")
    if spec.data.target == "input":  # reconstruction: the targets are the inputs
        dataset_task = "regression"
    loss_task = _loss_task(spec)
    if "any" in (dataset_task, loss_task) or dataset_task == loss_task:
        return
    if dataset_task == "binary" and loss_task == "multiclass":
        return  # two-class cross-entropy is fine
    yield ("loss", "type"), f"loss {spec.loss.type!r} is for {loss_task} targets, but {spec.data.dataset.type!r} is {dataset_task}"


def check_model_fits_loss(spec: Spec) -> Iterator[Finding]:
    allowed = registry.MODELS.get(spec.model.type).meta.get("losses")
    if allowed and spec.loss.type not in allowed:
        yield ("model", "type"), f"model {spec.model.type!r} is defined by the loss {' or '.join(allowed)}, not {spec.loss.type!r}"


def check_metrics_fit_task(spec: Spec) -> Iterator[Finding]:
    loss_task = _loss_task(spec)
    if loss_task == "any":
        return
    family = "regression" if loss_task == "regression" else "classification"
    for i, metric in enumerate(spec.metrics):
        metric_task = registry.METRICS.get(metric.type).meta.get("task", "any")
        if metric_task not in ("any", family):
            yield ("metrics", i), f"metric {metric.type!r} is for {metric_task}, but the loss {spec.loss.type!r} poses {family}"


def check_metric_names_unique(spec: Spec) -> Iterator[Finding]:
    seen: set[str] = set()
    for i, name in enumerate(spec.metric_names()):
        if name == "loss":
            yield ("metrics", i), "'loss' is logged already; give this metric another `name`"
        elif name in seen:
            yield ("metrics", i), f"two metrics are logged as {name!r}; give one a distinct `name`"
        seen.add(name)


#: Stands for a class index in the names of a per-class metric (``average: none``).
PER_CLASS = "<class>"


def logged_names(spec: Spec) -> set[str]:
    """Every metric name a run logs: per-epoch train/val ones and final test ones; a
    per-class metric as ``val/recall/<class>`` (:func:`is_logged` matches it)."""
    per_epoch = {"train/loss", "lr"}
    final = {"test/loss"}
    names = [
        f"{n}/{PER_CLASS}" if getattr(m, "average", None) == "none" else n
        for n, m in zip(spec.metric_names(), spec.metrics)
        if not registry.METRICS.get(m.type).meta.get("figure")
    ]
    if spec.data.split.val or spec.data.split.inner:
        per_epoch |= {"val/loss", *(f"val/{m}" for m in names)}
    final |= {f"test/{m}" for m in names}
    return per_epoch | final


def class_index(name: str) -> tuple[str, int | None]:
    """``val/recall/3`` -> ``("val/recall", 3)``, one class's value of a per-class metric;
    any other name -> ``(name, None)``."""
    metric, _, index = name.rpartition("/")
    return (metric, int(index)) if index.isdigit() else (name, None)


def is_logged(name: str, names: set[str]) -> bool:
    """``name`` is one of ``names``, where ``val/recall/<class>`` stands for ``val/recall/0``, ..."""
    metric, index = class_index(name)
    return name in names or (index is not None and f"{metric}/{PER_CLASS}" in names)


def _unlogged_hint(name: str, names: set[str]) -> str:
    if f"{name}_mean" in names:  # a cross-validated run's outcome is its parent's summary
        return f" Did you mean {name + '_mean'!r}? Folds are summarized as {', '.join(f'<metric>{s}' for s in SUMMARY_SUFFIXES)}."
    hint = closest(name, sorted(names))
    return (f" Did you mean {hint!r}?" if hint else "") + f" Logged: {', '.join(sorted(names))}."


def check_early_stopping_monitor(spec: Spec) -> Iterator[Finding]:
    stopping = spec.train.early_stopping
    if stopping is None:
        return
    if not spec.data.split.val and not spec.data.split.inner:
        yield ("train", "early_stopping"), "early stopping needs a validation part: set data.split.val"
        return
    epoch_metrics = {n for n in logged_names(spec) if not n.startswith("test/")}
    if not is_logged(stopping.monitor, epoch_metrics):
        yield (
            ("train", "early_stopping", "monitor"),
            f"{stopping.monitor!r} is not logged per epoch.{_unlogged_hint(stopping.monitor, epoch_metrics)}",
        )


def check_stratify_needs_classes(spec: Spec) -> Iterator[Finding]:
    if spec.data.split.stratify and _loss_task(spec) == "regression":
        yield ("data", "split", "stratify"), "stratification needs class labels, but the loss poses regression"


def search_outcome_names(spec: Spec) -> set[str]:
    """What ``runner search --metrics-out`` writes for a spec with a ``search:`` block."""
    if spec.search is None:
        return set()
    best = {"best/value"} if not isinstance(spec.search.metric, list) else {f"best/value_{i}" for i in range(len(spec.search.metric))}
    return best | {f"best/{path}" for path in spec.search.space} | {"trials/complete", "trials/pruned", "trials/fail"}


#: The summary a parent run of folds or seeds holds of each of its members' final metrics.
SUMMARY_SUFFIXES = ("_mean", "_std", "_ci95_low", "_ci95_high")


def check_expected_metrics_logged(spec: Spec) -> Iterator[Finding]:
    """What ``--metrics-out`` writes: a run's final metrics, or, for folds (and ``--seeds``),
    the parent's summary of them; a search's outcome."""
    if spec.expect is None:
        return
    final = {n for n in logged_names(spec) if n != "lr"} | {"epochs"}  # the run's summary numbers count too
    if spec.train.early_stopping is not None:
        final.add("best_epoch")
    summaries = {f"{name}{suffix}" for name in final for suffix in SUMMARY_SUFFIXES}
    names = (summaries if spec.data.split.is_cv else final | summaries) | search_outcome_names(spec)
    for name in spec.expect.metrics:
        if not is_logged(name, names):
            yield ("expect", "metrics", name), f"{name!r} is not a metric this spec logs.{_unlogged_hint(name, names)}"


def check_accumulate_needs_minibatches(spec: Spec) -> Iterator[Finding]:
    if spec.train.accumulate > 1 and spec.train.batch_size == "full":
        yield ("train", "accumulate"), "gradient accumulation splits a step into mini-batches, but batch_size is 'full'"


def check_workers_need_a_dataloader(spec: Spec) -> Iterator[Finding]:
    if spec.train.workers > 0 and spec.train.loader == "device":
        yield (
            ("train", "workers"),
            f"workers={spec.train.workers} feed a DataLoader, but loader is 'device'; use loader: dataloader or auto",
        )


_STRATIFIED_FOLDS = ("stratified_kfold", "repeated_stratified_kfold")


def check_folds_and_test_agree(spec: Spec) -> Iterator[Finding]:
    split = spec.data.split
    if split.test == "folds" and split.folds is None:
        yield ("data", "split", "test"), "test: folds means the held-out folds of `folds`, but data.split.folds is not set"
    elif split.folds is not None and split.test != "folds":
        yield (
            ("data", "split", "test"),
            f"with `folds` each held-out fold is the test part, so test={split.test!r} cannot apply; remove data.split.test",
        )


def check_inner_folds(spec: Spec) -> Iterator[Finding]:
    split = spec.data.split
    if split.inner is None:
        return
    if split.folds is None:
        yield ("data", "split", "inner"), "inner folds nest inside outer folds: set data.split.folds too"
    if split.val:
        yield ("data", "split", "inner"), "give `val` or `inner` for selection inside each outer fold, not both"
    if spec.train.early_stopping is None:
        yield ("data", "split", "inner"), "inner folds select the epoch count by early stopping: set train.early_stopping"


def check_stratified_folds_need_classes(spec: Spec) -> Iterator[Finding]:
    for key in ("folds", "inner"):
        folds = getattr(spec.data.split, key)
        if folds is not None and folds.type in _STRATIFIED_FOLDS and _loss_task(spec) == "regression":
            yield (
                ("data", "split", key, "type"),
                f"{folds.type} needs class labels, but the loss {spec.loss.type!r} poses regression; use kfold",
            )


def check_group_folds_need_groups(spec: Spec) -> Iterator[Finding]:
    for key in ("folds", "inner"):
        folds = getattr(spec.data.split, key)
        if folds is not None and folds.type == "group_kfold" and getattr(spec.data.dataset, "groups", None) is None:
            yield (
                ("data", "split", key, "type"),
                "group_kfold needs group ids: give the dataset a column, {path: FILE, target: COL, groups: COL}",
            )


def check_search_metrics_logged(spec: Spec) -> Iterator[Finding]:
    if spec.search is None:
        return
    names = logged_names(spec) | {"model/params"}
    metrics = spec.search.metric if isinstance(spec.search.metric, list) else [spec.search.metric]
    for metric in metrics:
        if not is_logged(metric, names):
            yield ("search", "metric"), f"{metric!r} is not a metric this spec logs.{_unlogged_hint(metric, names)}"
    if spec.search.pruner.type == "wilcoxon" and spec.data.split.folds is None:
        yield ("search", "pruner", "type"), "the wilcoxon pruner compares fold scores; it needs a k-fold split"


def check_glm_family_fits_loss(spec: Spec) -> Iterator[Finding]:
    from registry.models_linear import FAMILY_LOSSES

    family = getattr(spec.model, "family", None)
    if spec.model.type == "glm" and isinstance(family, str) and spec.loss.type not in FAMILY_LOSSES[family]:
        yield ("loss", "type"), f"a {family} GLM is fitted by {' or '.join(FAMILY_LOSSES[family])}, not {spec.loss.type!r}"


def check_closed_form_has_no_penalty(spec: Spec) -> Iterator[Finding]:
    if spec.regularizer is not None and registry.MODELS.get(spec.model.type).meta.get("closed_form"):
        yield ("regularizer",), f"model {spec.model.type!r} is solved in closed form, which ignores a regularizer; remove it"


def check_optimizer_fits_batching(spec: Spec) -> Iterator[Finding]:
    meta = registry.OPTIMIZERS.get(spec.optimizer.type).meta
    if meta.get("full_batch") and spec.train.batch_size != "full":
        yield (
            ("train", "batch_size"),
            f"optimizer {spec.optimizer.type!r} is full-batch gradient descent: set batch_size: full (or use sgd)",
        )
    if meta.get("closure") and spec.train.accumulate > 1:
        yield (
            ("train", "accumulate"),
            f"optimizer {spec.optimizer.type!r} re-evaluates each batch itself and cannot accumulate micro-batches",
        )


CHECKS: list[Check] = [
    check_loss_fits_dataset,
    check_model_fits_loss,
    check_metrics_fit_task,
    check_metric_names_unique,
    check_early_stopping_monitor,
    check_stratify_needs_classes,
    check_expected_metrics_logged,
    check_accumulate_needs_minibatches,
    check_workers_need_a_dataloader,
    check_folds_and_test_agree,
    check_inner_folds,
    check_stratified_folds_need_classes,
    check_group_folds_need_groups,
    check_search_metrics_logged,
    check_glm_family_fits_loss,
    check_closed_form_has_no_penalty,
    check_optimizer_fits_batching,
]


def run_checks(spec: Spec) -> list[Finding]:
    """Every finding of every check."""
    return [finding for check in CHECKS for finding in check(spec)]
