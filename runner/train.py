"""The training loop: ``train_one(pipeline, settings, ...) -> RunResult``. Knows nothing of MLflow.

Data already sits on the device, so a step is: index a batch, forward, loss (+ penalty),
backward, clip, step. Nothing inside the loop waits for the device except once per epoch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol

import torch

from runner.build import Pipeline, Tensors
from runner.spec.schema import TrainSpec

_EVAL_CHUNK = 8192


class Reporter(Protocol):
    """Receives each epoch's metrics (the tracker, the progress display)."""

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; training cannot go on meaningfully."""

    def __init__(self, epoch: int, step: int) -> None:
        self.epoch, self.step = epoch, step
        super().__init__(
            f"the training loss became NaN or infinite at epoch {epoch}, step {step}; "
            "lower the learning rate, clip gradients, or check the data"
        )


@dataclass
class RunResult:
    """What a finished run produced."""

    epochs_run: int
    best_epoch: Optional[int]
    weights_epoch: int
    stopped_early: bool
    test: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)


@torch.no_grad()
def evaluate(pipeline: Pipeline, part: Tensors, prefix: str) -> dict[str, float]:
    """Loss and every metric on one part, in eval mode (dropout off, norm statistics frozen)."""
    model = pipeline.model
    was_training = model.training
    model.eval()
    outputs = torch.cat([model(part.x[i : i + _EVAL_CHUNK]) for i in range(0, len(part), _EVAL_CHUNK)])
    model.train(was_training)
    results = {f"{prefix}/loss": pipeline.head(outputs, part.y)}
    predictions = pipeline.head.predict(outputs)
    for name, metric in pipeline.metrics.items():
        results[f"{prefix}/{name}"] = metric(predictions, part.y)
    # One transfer for all values instead of one sync per metric.
    values = torch.stack([v.detach().float().reshape(()) for v in results.values()]).tolist()
    return dict(zip(results, values))


class _EarlyStopping:
    def __init__(self, monitor: str, patience: int, min_delta: float, maximize: bool) -> None:
        self.monitor, self.patience, self.min_delta, self.maximize = monitor, patience, min_delta, maximize
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.waited = 0

    def improved(self, epoch: int, metrics: dict[str, float]) -> bool:
        value = metrics[self.monitor]
        better = self.best is None or (
            value > self.best + self.min_delta if self.maximize else value < self.best - self.min_delta
        )
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
    name = monitor.split("/", 1)[-1]
    return pipeline.higher_is_better.get(name, False)


def train_one(
    pipeline: Pipeline,
    settings: TrainSpec,
    seed: int,
    reporter: Reporter,
    after_epoch: Optional[Callable[[int], None]] = None,
) -> RunResult:
    """Train for ``settings.epochs`` (or until early stopping), then evaluate on the test part."""
    model, optimizer, head = pipeline.model, pipeline.optimizer, pipeline.head
    train, n = pipeline.train, len(pipeline.train)
    # 1) The shuffle order has its own generator, so it depends on the seed alone.
    order_rng = torch.Generator().manual_seed(seed)
    stopping = None
    if settings.early_stopping is not None:
        es = settings.early_stopping
        stopping = _EarlyStopping(es.monitor, es.patience, es.min_delta, _maximize(es.monitor, pipeline, es.mode))
    best_state = None
    history: list[dict[str, float]] = []
    epoch = 0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=order_rng) if settings.shuffle else torch.arange(n)
        order = order.to(pipeline.device)
        # 2) Accumulate on the device; read back once per epoch.
        data_loss_sum = torch.zeros((), device=pipeline.device)
        step_objectives = []
        for start in range(0, n, pipeline.batch_size):
            batch = order[start : start + pipeline.batch_size]
            outputs = model(train.x[batch])
            loss = head(outputs, train.y[batch])
            objective = loss if pipeline.penalty is None else loss + pipeline.penalty(model)
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            if settings.grad_clip is not None:
                if settings.grad_clip.norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip.norm)
                else:
                    torch.nn.utils.clip_grad_value_(model.parameters(), settings.grad_clip.value)  # type: ignore[arg-type]
            optimizer.step()
            if pipeline.scheduler is not None and pipeline.scheduler_interval == "step":
                pipeline.scheduler.step()  # type: ignore[attr-defined]
            step_objectives.append(objective.detach())
            data_loss_sum += loss.detach() * batch.shape[0]

        # 3) A NaN/inf loss stops the run, naming the first bad step.
        finite = torch.isfinite(torch.stack(step_objectives))
        if not bool(finite.all()):
            raise NonFiniteLoss(epoch, int((~finite).nonzero()[0]) + 1)
        lr = optimizer.param_groups[0]["lr"]
        if pipeline.scheduler is not None and pipeline.scheduler_interval == "epoch":
            pipeline.scheduler.step()  # type: ignore[attr-defined]

        metrics = {"train/loss": float(data_loss_sum) / n, "lr": float(lr)}
        if pipeline.val is not None:
            metrics |= evaluate(pipeline, pipeline.val, "val")
        history.append(metrics)
        reporter.epoch_end(epoch, metrics)

        # 4) Early stopping keeps the best epoch's weights (003 ch. 4).
        if stopping is not None and stopping.improved(epoch, metrics):
            best_state = copy.deepcopy(model.state_dict())
        if after_epoch is not None:
            after_epoch(epoch)
        if stopping is not None and stopping.should_stop:
            break

    stopped_early = stopping is not None and epoch < settings.epochs
    weights_epoch = epoch
    if stopping is not None and settings.early_stopping is not None and settings.early_stopping.restore_best and best_state:
        model.load_state_dict(best_state)
        weights_epoch = stopping.best_epoch or epoch
    test = evaluate(pipeline, pipeline.test, "test")
    best_epoch = None if stopping is None else stopping.best_epoch
    return RunResult(epoch, best_epoch, weights_epoch, stopped_early, test, history)
