"""The training loop: ``train_one(pipeline, settings, ...) -> RunResult``. Knows nothing of MLflow.

Data usually sits on the device already, so a step is: index a batch, forward, loss
(+ penalty), backward, clip, step. Nothing inside the loop waits for the device except once
per epoch. Checkpoints, DDP and the DataLoader path live in their own modules; the loop
only calls them.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import torch

from registry.regularizers import Constraint
from runner.runtime import determinism, distributed
from runner.spec.checks import class_index
from runner.spec.schema import TrainSpec
from runner.training import checkpoint
from runner.training.batches import Batches, sizes
from runner.training.pipeline import Pipeline, Tensors

_EVAL_CHUNK = 8192
_NO_BAD_STEP = 2**62


class Reporter(Protocol):
    """Receives each epoch's metrics (the tracker, the progress display)."""

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...


class NonFiniteLoss(RuntimeError):
    """The loss (or the weights) became NaN or infinite; training cannot go on meaningfully."""

    def __init__(self, epoch: int, step: int, what: str = "training loss") -> None:
        self.epoch, self.step = epoch, step
        super().__init__(
            f"the {what} became NaN or infinite at epoch {epoch}, step {step}; lower the learning rate, clip gradients, or check the data"
        )


@dataclass
class RunResult:
    """What a finished run produced."""

    epochs_run: int
    best_epoch: int | None
    weights_epoch: int
    stopped_early: bool
    test: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)


@torch.no_grad()
def outputs_of(pipeline: Pipeline, part: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's raw outputs on one part and its targets, in eval mode (dropout off, norm
    statistics frozen)."""
    model, device = pipeline.model, pipeline.device
    was_training = model.training
    model.eval()
    # Chunks are copied to the device when the part lives in host memory (the DataLoader path).
    per_chunk = [model(part.x[i : i + _EVAL_CHUNK].to(device, non_blocking=True)) for i in range(0, len(part), _EVAL_CHUNK)]
    outputs = per_chunk[0] if len(per_chunk) == 1 else torch.cat(per_chunk)
    model.train(was_training)
    return outputs, part.y.to(device, non_blocking=True)


@torch.no_grad()
def evaluate(pipeline: Pipeline, part: Tensors, prefix: str) -> dict[str, float]:
    """Loss and every metric on one part; a per-class metric (``average: none``) is logged
    as ``<prefix>/<name>/<class index>``."""
    outputs, targets = outputs_of(pipeline, part)
    return score(pipeline, outputs, targets, prefix)


@torch.no_grad()
def score(pipeline: Pipeline, outputs: torch.Tensor, targets: torch.Tensor, prefix: str) -> dict[str, float]:
    """Loss and every metric of given outputs (fold-parallel training computes the outputs
    of all members at once and scores each member's alone)."""
    results = {f"{prefix}/loss": pipeline.head(outputs, targets)}
    predictions = pipeline.head.predict(outputs)
    for name, metric in pipeline.metrics.items():
        value = metric(predictions, targets)
        if value.ndim == 0:
            results[f"{prefix}/{name}"] = value
        else:
            results |= {f"{prefix}/{name}/{k}": v for k, v in enumerate(value.reshape(-1))}
    # One transfer for all values instead of one sync per metric.
    values = torch.stack([v.detach().float().reshape(()) for v in results.values()]).tolist()
    return dict(zip(results, values))


class _EarlyStopping:
    def __init__(self, monitor: str, patience: int, min_delta: float, maximize: bool) -> None:
        self.monitor, self.patience, self.min_delta, self.maximize = monitor, patience, min_delta, maximize
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.waited = 0

    def improved(self, epoch: int, metrics: dict[str, float]) -> bool:
        if self.monitor not in metrics:  # a per-class metric's class index past the last class
            raise ValueError(f"early stopping monitors {self.monitor!r}, which this run does not log; it logs {sorted(metrics)}")
        value = metrics[self.monitor]
        better = self.best is None or (value > self.best + self.min_delta if self.maximize else value < self.best - self.min_delta)
        if better:
            self.best, self.best_epoch, self.waited = value, epoch, 0
        else:
            self.waited += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.waited >= self.patience


def _maximize(monitor: str, pipeline: Pipeline, mode: str) -> bool:
    if mode != "auto":
        return mode == "max"
    metric, _ = class_index(monitor)  # one class's value of a per-class metric: recall's
    return pipeline.higher_is_better.get(metric.split("/", 1)[-1], False)


def train_one(
    pipeline: Pipeline,
    settings: TrainSpec,
    *,
    seed: int,
    reporter: Reporter,
    save_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
) -> RunResult:
    """Train for ``settings.epochs`` (or until early stopping), then evaluate on the test part.

    ``save_checkpoint`` receives the whole training state (:mod:`runner.training.checkpoint`) after
    every ``settings.checkpoint_every``-th good epoch and after the last; ``resume`` is such
    a state to continue from, bit-identically on CPU.
    """
    model, optimizer, head, device = pipeline.model, pipeline.optimizer, pipeline.head, pipeline.device
    if hasattr(model, "fit_closed_form") and resume is None:
        return _fit_closed_form(pipeline, reporter)
    n = len(pipeline.train)
    # 1) The shuffle order has its own generator, so it depends on the seed alone.
    order_rng = torch.Generator().manual_seed(seed)
    stopping = None
    if settings.early_stopping is not None:
        es = settings.early_stopping
        stopping = _EarlyStopping(es.monitor, es.patience, es.min_delta, _maximize(es.monitor, pipeline, es.mode))
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = []
    history_text = checkpoint.HistoryText()
    start = 0
    # 2) A resumed run gets back everything the next epoch depends on: weights, optimizer
    #    and scheduler, every RNG (dropout, data order), early stopping, history.
    if resume is not None:
        start, history, best_state = checkpoint.restore(resume, pipeline, order_rng, stopping)
    last_epoch = start if stopping is not None and stopping.should_stop else settings.epochs

    # 3) Opt-in speed: compile the forward in place (state_dict keys unchanged), wrap in DDP
    #    under torchrun, bf16 autocast for the training steps only.
    if settings.compile:
        determinism.configure_compiler()
        model.compile()
    net = distributed.wrap(model, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if settings.precision == "bf16" else nullcontext()
    batches = Batches(pipeline.train, pipeline.batch_size, loader=pipeline.loader, workers=settings.workers, device=device, seed=seed)
    acc = settings.accumulate
    constraint = pipeline.penalty if isinstance(pipeline.penalty, Constraint) else None
    closure_step = isinstance(optimizer, torch.optim.LBFGS)

    epoch = start
    for epoch in range(start + 1, last_epoch + 1):
        model.train()
        order = torch.randperm(n, generator=order_rng) if settings.shuffle else torch.arange(n)
        mine = distributed.shard(order)  # under DDP, this rank's rows of the order
        # 4) A step sums `acc` micro-batches, each weighted by its share of the step's rows,
        #    so the gradient is the mean over the step's rows whatever the split (without
        #    accumulation every weight is 1: no extra multiply in the graph).
        batch_rows = sizes(len(mine), pipeline.batch_size)
        step_rows = [sum(batch_rows[i : i + acc]) for i in range(0, len(batch_rows), acc)]
        weights = [rows / step_rows[i // acc] for i, rows in enumerate(batch_rows)]
        # 5) Keep each batch's loss on the device; read back once per epoch.
        batch_losses, batch_objectives = [], []
        for i, (x, y) in enumerate(batches(mine)):
            ends_step = (i + 1) % acc == 0 or i + 1 == len(batch_rows)
            if pipeline.augment is not None:
                x = pipeline.augment(x)
            with distributed.grad_sync(net, ends_step):
                with autocast:
                    outputs = net(x)
                loss = head(outputs.float(), y)
                objective = loss if pipeline.penalty is None else loss + pipeline.penalty(model)
                (objective if weights[i] == 1.0 else objective * weights[i]).backward()
            if ends_step:
                if settings.grad_clip is not None:
                    if settings.grad_clip.norm is not None:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip.norm)
                    else:
                        torch.nn.utils.clip_grad_value_(model.parameters(), settings.grad_clip.value)  # type: ignore[arg-type]
                # Constraints (decoupled decay, max-norm) act on the weights around the step.
                lr_now = optimizer.param_groups[0]["lr"]
                if constraint is not None:
                    constraint.before_step(model, lr_now)
                if closure_step:  # L-BFGS re-evaluates the batch's objective itself
                    # torch types a closure's loss as a float; L-BFGS takes the loss tensor itself.
                    optimizer.step(cast(Callable[[], float], functools.partial(_objective, net, head, pipeline, model, x, y)))
                else:
                    optimizer.step()
                if constraint is not None:
                    constraint.after_step(model, lr_now)
                optimizer.zero_grad(set_to_none=True)
                if pipeline.scheduler is not None and pipeline.scheduler_interval == "step":
                    pipeline.scheduler.step()
            batch_losses.append(loss.detach())
            if pipeline.penalty is not None:
                batch_objectives.append(objective.detach())

        # 6) A NaN/inf loss stops the run, naming the first bad step (on any rank); so do
        #    weights that overflowed on the epoch's last step. Either way this epoch is
        #    never checkpointed: the checkpoint on disk stays the last good one.
        losses = torch.stack(batch_losses)
        finite = torch.isfinite(torch.stack(batch_objectives) if batch_objectives else losses)
        first_bad = _NO_BAD_STEP if bool(finite.all()) else int((~finite).nonzero()[0]) + 1
        data_loss_sum = losses @ torch.tensor(batch_rows, dtype=losses.dtype, device=losses.device)
        loss_total, rows, first_bad = distributed.epoch_totals(data_loss_sum, len(mine), first_bad)
        if first_bad != _NO_BAD_STEP:
            raise NonFiniteLoss(epoch, first_bad)
        if not _all_finite(model):
            raise NonFiniteLoss(epoch, len(batch_rows), "weights")
        lr = optimizer.param_groups[0]["lr"]
        if pipeline.scheduler is not None and pipeline.scheduler_interval == "epoch":
            pipeline.scheduler.step()

        metrics = {"train/loss": loss_total / rows, "lr": float(lr)}
        if pipeline.val is not None:
            metrics |= evaluate(pipeline, pipeline.val, "val")
        history.append(metrics)

        # 7) Early stopping keeps the best epoch's weights (Liquet et al., ch. 4).
        if stopping is not None and stopping.improved(epoch, metrics):
            best_state = copy.deepcopy(model.state_dict())
        stop = stopping is not None and stopping.should_stop
        # 8) Checkpoint before reporting: a run killed in between resumes after this epoch,
        #    and the tracker never gets an epoch twice nor misses one.
        every = settings.checkpoint_every
        if save_checkpoint is not None and every and (epoch % every == 0 or stop or epoch == settings.epochs):
            save_checkpoint(
                checkpoint.capture(
                    pipeline,
                    epoch=epoch,
                    order_rng=order_rng,
                    order=order,
                    stopping=stopping,
                    best_state=best_state,
                    history=history_text(history),
                )
            )
        reporter.epoch_end(epoch, metrics)
        if stop:
            break

    # 9) End with the best epoch's weights when asked, then test once.
    stopped_early = stopping is not None and stopping.should_stop and epoch < settings.epochs
    weights_epoch = epoch
    if stopping is not None and settings.early_stopping is not None and settings.early_stopping.restore_best and best_state:
        model.load_state_dict(best_state)
        weights_epoch = stopping.best_epoch or epoch
    test = evaluate(pipeline, pipeline.test, "test")
    best_epoch = None if stopping is None else stopping.best_epoch
    return RunResult(epoch, best_epoch, weights_epoch, stopped_early, test, history)


def _all_finite(model: torch.nn.Module) -> bool:
    """Whether every weight is finite: the largest magnitude of each tensor, in two fused
    ops for all of them (a NaN or inf makes it non-finite; finite weights cannot overflow)."""
    weights = [p.detach() for p in model.parameters()]
    if not weights:
        return True
    return bool(torch.stack(torch._foreach_max(torch._foreach_abs(weights))).isfinite().all())


def _objective(
    net: torch.nn.Module,
    head: Any,
    pipeline: Pipeline,
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
) -> torch.Tensor:
    """The batch's loss plus penalty, with fresh gradients: the closure L-BFGS calls."""
    pipeline.optimizer.zero_grad(set_to_none=True)
    loss = head(net(x).float(), y)
    objective = loss if pipeline.penalty is None else loss + pipeline.penalty(model)
    objective.backward()
    return objective.detach()


def _fit_closed_form(pipeline: Pipeline, reporter: Reporter) -> RunResult:
    """A model solved in closed form (least squares, Lal, Notes on ML and Neural Networks) is fitted once on the
    training part: no gradient steps, so epochs, optimizer and schedule do not apply. It is
    reported as one epoch, so history, early-stopping-free metrics and tracking look alike."""
    train = pipeline.train
    pipeline.model.fit_closed_form(train.x.to(pipeline.device), train.y.to(pipeline.device))  # type: ignore[operator]
    metrics = {"train/loss": evaluate(pipeline, train, "train")["train/loss"], "lr": 0.0}
    if pipeline.val is not None:
        metrics |= evaluate(pipeline, pipeline.val, "val")
    reporter.epoch_end(1, metrics)
    return RunResult(1, None, 1, False, evaluate(pipeline, pipeline.test, "test"), [metrics])
