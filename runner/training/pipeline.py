"""Spec + prepared data -> a :class:`Pipeline` of live torch objects. Names are resolved here once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

import registry
from registry import augmentations
from registry._heads import LossHead
from registry.metrics import MetricFn
from registry.regularizers import Penalty
from runner.data.prepare import Part, PreparedData
from runner.runtime import distributed
from runner.spec.schema import Spec
from runner.training import batches


@dataclass
class Tensors:
    """One split part moved to the device once, so batching is indexing, not a DataLoader."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.y.shape[0]


@dataclass
class Pipeline:
    """The live objects one training run needs; downstream code never reads the spec's dicts."""

    model: nn.Module
    head: LossHead
    penalty: Penalty | None
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler | None
    scheduler_interval: str
    metrics: dict[str, MetricFn]
    higher_is_better: dict[str, bool]
    train: Tensors
    val: Tensors | None
    test: Tensors
    device: torch.device
    batch_size: int
    steps_per_epoch: int
    #: "device" (parts live on the device, batches are indexing) or "dataloader" (parts stay
    #: in host memory and a DataLoader streams batches).
    loader: str = "device"
    #: Figure metrics (confusion matrix, ROC curve): drawn once from the test predictions.
    figures: dict[str, Callable[..., Any]] = field(default_factory=dict)
    #: Train-only augmentation of each training batch (``data.augment``), or None.
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None


def output_size(data: PreparedData, loss: str, params: Any = None) -> int:
    """Outputs the model needs: one per class (cross-entropy), one logit (bce), one per target;
    or what the loss's ``outputs`` metadata says (one per class pair, mean and log variance, ...)."""
    meta = registry.LOSSES.get(loss).meta
    task, outputs = meta.get("task"), meta.get("outputs")
    if outputs == "pairs":
        return data.task.n_classes * (data.task.n_classes - 1) // 2
    if outputs == "mean_and_log_variance":
        return 2 * data.task.n_targets
    if outputs == "dim":
        return int(params.dim)
    if task == "multiclass":
        return data.task.n_classes
    if task == "binary":
        return 1
    return data.task.n_targets


def to_tensors(part: Part, device: torch.device, pin: bool = False) -> Tensors:
    x, y = torch.from_numpy(part.x), torch.from_numpy(part.y)
    if pin:  # page-locked host memory makes the copies to the GPU asynchronous
        return Tensors(x.pin_memory(), y.pin_memory())
    return Tensors(x.to(device), y.to(device))


def build(spec: Spec, data: PreparedData, device: torch.device) -> Pipeline:
    """Instantiate model, loss head, penalty, optimizer, scheduler and metrics for ``data``."""
    in_shape = tuple(data.train.x.shape[1:])
    model = registry.MODELS.get(spec.model.type).builder(spec.model, in_shape, output_size(data, spec.loss.type, spec.loss))
    model = model.to(device)
    head = registry.LOSSES.get(spec.loss.type).builder(spec.loss).to(device)
    penalty = None
    if spec.regularizer is not None:
        penalty = registry.REGULARIZERS.get(spec.regularizer.type).builder(spec.regularizer)
    optimizer = registry.OPTIMIZERS.get(spec.optimizer.type).builder(spec.optimizer, model.parameters())

    # Under torchrun each of W ranks takes 1/W of the rows and of the (global) batch size.
    world = distributed.world_size()
    n_train = -(-len(data.train) // world)
    batch_size = n_train if spec.train.batch_size == "full" else min(-(-spec.train.batch_size // world), n_train)
    steps_per_epoch = batches.steps_per_epoch(n_train, batch_size, spec.train.accumulate)
    scheduler, interval = None, "epoch"
    if spec.scheduler is not None:
        builder: Callable[..., tuple[LRScheduler, str]] = registry.SCHEDULERS.get(spec.scheduler.type).builder
        scheduler, interval = builder(spec.scheduler, optimizer, spec.train.epochs, steps_per_epoch)

    metrics: dict[str, MetricFn] = {}
    figures: dict[str, Any] = {}
    for name, m in zip(spec.metric_names(), spec.metrics):
        is_figure = registry.METRICS.get(m.type).meta.get("figure", False)
        (figures if is_figure else metrics)[name] = registry.METRICS.get(m.type).builder(m, data.task)
    higher_is_better = {
        name: bool(registry.METRICS.get(m.type).meta.get("higher_is_better", True)) for name, m in zip(spec.metric_names(), spec.metrics)
    }
    parts = [p for p in (data.train, data.val, data.test) if p is not None]
    loader = batches.choose_loader(spec.train.loader, sum(p.x.nbytes + p.y.nbytes for p in parts), device)
    host = loader == "dataloader"
    place = torch.device("cpu") if host else device
    pin = host and device.type == "cuda"
    return Pipeline(
        model=model,
        head=head,
        penalty=penalty,
        optimizer=optimizer,
        scheduler=scheduler,
        scheduler_interval=interval,
        metrics=metrics,
        higher_is_better=higher_is_better,
        train=to_tensors(data.train, place, pin),
        val=None if data.val is None else to_tensors(data.val, place, pin),
        test=to_tensors(data.test, place, pin),
        device=device,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        loader=loader,
        figures=figures,
        augment=augmentations.compose(spec.data.augment),
    )
