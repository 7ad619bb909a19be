"""``runner lr-find SPEC``: the learning-rate range test (Lal Lal, Notes on ML and Neural Networks, after Smith 2018).

Train the spec's model from a tiny rate (1e-6), multiplying the rate by a constant factor
after every mini-batch, and watch the smoothed loss. Where it blows up is the critical rate
eta_crit; the suggestion is eta_crit / 10, because the loss being watched is a moving
average that lags the rate (Lal, Notes on ML and Neural Networks). The spec's schedule is ignored; its optimizer,
loss, penalty and batches are used as they are.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from runner.spec.schema import Spec
from runner.tracking import provenance, record


@dataclass
class RangeTest:
    """The curve of one range test and what it suggests."""

    rates: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # smoothed, bias-corrected
    critical: float | None = None  # the rate at which the loss diverged (None: it never did)
    suggested: float | None = None

    def suggestion_or_fallback(self) -> float:
        """eta_crit / 10; without a divergence, a tenth of the rate with the lowest loss."""
        if self.suggested is not None:
            return self.suggested
        return self.rates[min(range(len(self.losses)), key=self.losses.__getitem__)] / 10


def range_test(
    spec: Spec,
    *,
    start: float = 1e-6,
    end: float = 10.0,
    steps: int = 100,
    divergence: float = 4.0,
    smoothing: float = 0.98,
    device: str | None = None,
) -> RangeTest:
    """Run the range test for ``spec``; stop when the smoothed loss exceeds ``divergence``
    times its best, or turns NaN, or after ``steps`` steps from ``start`` to ``end``. A
    cross-validated spec is tested on its first fold's training rows."""
    from runner.data.prepare import folds_of, load, prepare, prepare_rows
    from runner.runtime import determinism
    from runner.training.pipeline import build

    determinism.set_reproducibility(spec.reproducibility)
    determinism.seed_everything(spec.seed)
    if spec.data.split.is_cv:
        loaded = load(spec)
        first = folds_of(spec, loaded)[0]
        data = prepare_rows(spec, loaded, first.train, first.val, first.test)
    else:
        data = prepare(spec)
    pipeline = build(spec, data, determinism.resolve_device(device or spec.device))
    model, optimizer, head = pipeline.model, pipeline.optimizer, pipeline.head
    factor = (end / start) ** (1 / max(steps - 1, 1))
    order_rng = torch.Generator().manual_seed(spec.seed)
    n, batch = len(pipeline.train), pipeline.batch_size
    result = RangeTest()
    average, best, rate = 0.0, math.inf, start
    order = torch.randperm(n, generator=order_rng)
    cursor = 0
    model.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = rate
        if cursor + batch > n:  # a new epoch: a fresh shuffle
            order, cursor = torch.randperm(n, generator=order_rng), 0
        rows = order[cursor : cursor + batch].to(pipeline.device)
        cursor += batch
        x, y = pipeline.train.x[rows].to(pipeline.device), pipeline.train.y[rows].to(pipeline.device)
        optimizer.zero_grad(set_to_none=True)
        loss = head(model(x).float(), y)
        objective = loss if pipeline.penalty is None else loss + pipeline.penalty(model)
        value = float(objective.detach())
        average = smoothing * average + (1 - smoothing) * value
        smoothed = average / (1 - smoothing ** (step + 1))
        result.rates.append(rate)
        result.losses.append(smoothed)
        if not math.isfinite(smoothed) or smoothed > divergence * best:
            result.critical = rate
            break
        best = min(best, smoothed)
        objective.backward()
        optimizer.step()
        rate *= factor
    if result.critical is not None:
        result.suggested = result.critical / 10
    return result


def plot(result: RangeTest, path: Path, title: str) -> Path:
    """The loss against the rate (log scale), with eta_crit and the suggestion marked, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    finite = [(rate, loss) for rate, loss in zip(result.rates, result.losses) if math.isfinite(loss)]
    axes.plot([rate for rate, _ in finite], [loss for _, loss in finite])
    axes.set_xscale("log")
    if result.critical is not None:
        axes.axvline(result.critical, color="red", linestyle="--", label=f"critical {result.critical:.2g}")
    axes.axvline(result.suggestion_or_fallback(), color="green", linestyle=":", label=f"suggested {result.suggestion_or_fallback():.2g}")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("smoothed training loss")
    axes.set_title(title)
    axes.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def log(result: RangeTest, spec: Spec, png: Path, uri: str, experiment: str | None) -> str | None:
    """The curve as an MLflow run: per-step ``lr_find/lr`` and ``lr_find/loss``, the rates
    found, and the plot as the artifact ``lr_find.png``; returns the run id."""
    from runner.tracking.tracker import MlflowTracker, flatten

    tracker = MlflowTracker(
        uri,
        experiment or spec.tracking.experiment or spec.name,
        run_name=f"{spec.name}-lr-find",
        tags={record.SPEC_NAME: spec.name, record.LR_FIND: "true"},
    )
    tracker.log_params(flatten(provenance.recorded_spec(spec)))
    for step, (rate, loss) in enumerate(zip(result.rates, result.losses)):
        if math.isfinite(loss):
            tracker.log_metrics({"lr_find/lr": rate, "lr_find/loss": loss}, step=step)
    found = {"lr_find/suggested_lr": result.suggestion_or_fallback()}
    if result.critical is not None:
        found["lr_find/critical_lr"] = result.critical
    tracker.log_metrics(found)
    tracker.log_artifact(png)
    tracker.end("FINISHED")
    return tracker.run_id


def command(
    spec_file: Path,
    sets: Sequence[str],
    *,
    sweep: tuple[float, float, int, float],
    out: Path,
    device: str | None,
    uri: str | None,
    experiment: str | None,
) -> int:
    """``runner lr-find``: 0 done, 2 bad arguments, spec or data. ``sweep`` is (start, end,
    steps, divergence); ``uri`` None means untracked, "" the default tracking URI."""
    from runner.data.prepare import DataError
    from runner.spec import SpecError, load_spec
    from runner.tracking.tracker import tracking_uri

    start, end, steps, divergence = sweep
    if not (0 < start < end and steps >= 2 and divergence > 1):
        print(
            f"runner: error: `0 < start < end`, `steps >= 2` and `divergence > 1` must hold, but got "
            f"({start=}, {end=}, {steps=}, {divergence=})",
            file=sys.stderr,
        )
        return 2
    try:
        spec = load_spec(spec_file, sets)
        result = range_test(spec, start=start, end=end, steps=steps, divergence=divergence, device=device)
    except SpecError as error:
        print(f"{spec_file}: invalid\n{error.render()}", file=sys.stderr)
        return 2
    except DataError as error:
        print(f"runner: error: {spec_file}: {error}", file=sys.stderr)
        return 2
    png = plot(result, out, f"LR range test: {spec.name}")
    critical = "did not diverge" if result.critical is None else f"diverged at {result.critical:.3g}"
    print(f"{spec.name}: loss {critical}; suggested learning rate {result.suggestion_or_fallback():.3g}; plot: {png}")
    if uri is not None:
        run_id = log(result, spec, png, tracking_uri(uri or None, spec.tracking.uri), experiment)
        print(f"logged as MLflow run {run_id}")
    return 0
