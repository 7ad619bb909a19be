"""Fold-parallel training: several members (folds, seeds) of one architecture trained at once.

The members' parameters are stacked (``torch.func.stack_module_state``) and one step runs
every member's forward through ``torch.func.vmap``; the loss is the sum of the members'
losses, so each member's gradient is its own. An elementwise optimizer (SGD, Adam, AdamW,
RMSprop, Adagrad) over the stacked tensors then updates each member exactly as its own
optimizer would. Everything else follows :func:`runner.training.loop.train_one`: the same shuffle
order per member (from its seed), batches, clipping (per member), schedule, early stopping
and evaluation; per member the result equals sequential training within float tolerance.

Whatever cannot be batched that way (running statistics of batch norm, dropout's random
masks, closure optimizers, gradient accumulation, ...) falls back to sequential training,
and :func:`try_batched` says why.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

import registry
from registry.regularizers import Constraint
from runner.runtime import determinism, distributed, gc_policy
from runner.spec.schema import Spec
from runner.training import checkpoint
from runner.training.batches import sizes
from runner.training.loop import _EVAL_CHUNK, NonFiniteLoss, RunResult, _EarlyStopping, _maximize, evaluate, score
from runner.training.pipeline import Pipeline, Tensors, build

if TYPE_CHECKING:
    from runner.runs.cv import Member

Trained = dict[int, tuple[RunResult, dict[str, torch.Tensor]]]
#: The layout of a batch's checkpoint (``checkpoints/last.pt`` of the parent run).
BATCH_FORMAT = "batch-1"
_ELEMENTWISE = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.Adagrad)


def spec_reason(spec: Spec) -> str | None:
    """Why settings of ``spec`` rule out batched training; None when none do."""
    train = spec.train
    if train.accumulate > 1:
        return "gradient accumulation (train.accumulate > 1) is not batched"
    if train.precision != "fp32":
        return f"precision {train.precision} is not batched"
    if train.compile:
        return "torch.compile (train.compile) is not combined with vmap"
    if train.loader == "dataloader":
        return "the DataLoader path (train.loader: dataloader) is not batched"
    if distributed.world_size() > 1:
        return "data-parallel runs (--nproc) are not batched"
    if spec.data.augment:
        return "train-only augmentation (data.augment) is not batched"
    if spec.model.type == "vae":
        return "the VAE samples its latent code from one random stream, as dropout does"
    return None


def pipeline_reason(pipelines: list[Pipeline]) -> str | None:
    """Why these built pipelines cannot train as one batch; None when they can."""
    first = pipelines[0]
    if hasattr(first.model, "fit_closed_form"):
        return "the model is solved in closed form, not trained by steps"
    if isinstance(first.penalty, Constraint):
        return "a constraint regularizer (decoupled decay, max-norm) acts on each member's weights between steps"
    for name, _ in first.model.named_buffers():
        return f"the model has buffer {name!r} (e.g. batch norm running statistics), which vmap cannot update per member"
    for name, module in first.model.named_modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            return f"dropout ({name}) draws its masks from one random stream; batched, the masks would differ from sequential training"
    if type(first.optimizer) not in _ELEMENTWISE:
        return f"the optimizer {type(first.optimizer).__name__} is not an elementwise update of the stacked parameters"
    shapes = [[tuple(p.shape) for p in pl.model.parameters()] for pl in pipelines]
    if any(s != shapes[0] for s in shapes):
        return "the members' models differ in shape"
    if len({pl.steps_per_epoch for pl in pipelines}) > 1:
        return "the members take different numbers of steps per epoch"
    if len({pl.batch_size for pl in pipelines}) > 1 and first.steps_per_epoch > 1:
        return "the members' batch sizes differ"
    return None


@dataclass
class BatchCheckpoints:
    """Checkpoints of a batch in training: ``save(state)`` every ``every`` epochs; ``resume``,
    a state saved before for the same members, to continue from."""

    save: Callable[[dict[str, Any]], None]
    every: int = 1
    resume: dict[str, Any] | None = None


def try_batched(
    members: list[Member],
    device: str | None,
    reporters: Sequence[Any] = (),
    checkpoints: BatchCheckpoints | None = None,
) -> tuple[str, str, Trained | None]:
    """Train ``members`` at once when they allow it: ``(mode, reason, results)`` where mode is
    "batched" (results per member index) or "sequential" (results None, reason says why).
    ``reporters`` hear each epoch's metrics averaged over the members still training."""
    spec = members[0].spec
    reason = spec_reason(spec)
    if reason is not None:
        return "sequential", reason, None
    determinism.set_reproducibility(spec.reproducibility)
    place = determinism.resolve_device(device or spec.device)
    pipelines = []
    for member in members:
        determinism.seed_everything(member.spec.seed)  # each member starts as its own run would
        pipelines.append(build(member.spec, member.prepared(), place))
    reason = pipeline_reason(pipelines)
    if reason is not None:
        return "sequential", reason, None
    try:
        gc_policy.settle()
        seeds, names = [m.spec.seed for m in members], [m.name for m in members]
        results, how = train_batched(pipelines, spec, seeds=seeds, reporters=reporters, names=names, checkpoints=checkpoints)
    except NonFiniteLoss:
        raise
    except (RuntimeError, NotImplementedError) as error:  # an op vmap cannot batch
        return "sequential", f"batched training failed ({type(error).__name__}: {error}); trained one by one", None
    trained = {m.index: r for m, r in zip(members, results)}
    return "batched", f"{len(members)} members of one architecture trained at once ({how}) on {place.type}", trained


#: Modules that act on each element (or the last dimension) alone, so a leading member
#: dimension passes through them unchanged.
_PASS_THROUGH = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    nn.Hardtanh,
    nn.Identity,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Sequential,
)


class StackedLinear(nn.Module):
    """``k`` linear layers as one: input (k, batch, in) -> (k, batch, out) by one batched matmul."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = None if bias is None else nn.Parameter(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return torch.bmm(x, self.weight.transpose(1, 2))
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


def stacked_layers(models: list[nn.Module]) -> nn.Module | None:
    """The members as one module of batched layers (linear layers stacked, activations shared),
    when every layer allows it and the forward only chains them (the MLP); else None (vmap)."""
    from registry._layers import MLP

    base = models[0]
    if not isinstance(base, (MLP, nn.Sequential)):
        return None
    for module in base.modules():
        if module is not base and not isinstance(module, (nn.Linear, *_PASS_THROUGH)):
            return None
        if isinstance(module, _PASS_THROUGH) and any(True for _ in module.parameters(recurse=False)):
            return None
    stacked = copy.deepcopy(base)
    for name, module in base.named_modules():
        if isinstance(module, nn.Linear):
            layers = [dict(m.named_modules())[name] for m in models]
            weight = torch.stack([layer.weight.detach() for layer in layers])
            bias = None if module.bias is None else torch.stack([layer.bias.detach() for layer in layers])
            parent, _, child = name.rpartition(".")
            setattr(stacked.get_submodule(parent) if parent else stacked, child, StackedLinear(weight, bias))
    return stacked


def _row_losses(head: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """Per-row losses of a head whose loss is their plain mean (cross-entropy without class
    weights), so a step of full batches takes one call for all members; None otherwise."""
    from registry._heads import CategoricalHead

    if type(head) is CategoricalHead and head.class_weights is None:
        smoothing = head.label_smoothing
        return lambda outputs, targets: F.cross_entropy(outputs, targets, reduction="none", label_smoothing=smoothing)
    return None


class _Slices:
    """Each member's view of the stacked parameters, for a penalty that walks ``parameters()``."""

    def __init__(self, stacked: list[torch.Tensor], members: int) -> None:
        self.stacked, self.members = stacked, members

    def parameters(self) -> Iterator[torch.Tensor]:
        for f in range(self.members):
            for p in self.stacked:
                yield p[f]


def _clip_norm(grads: list[torch.Tensor], max_norm: float) -> None:
    # Per member, as clip_grad_norm_ does for one model: scale by max_norm / (norm + 1e-6), at most 1.
    norms = torch.stack([g.flatten(1).square().sum(1) for g in grads]).sum(0).sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.ndim - 1))))


def _stack_rows(parts: list[torch.Tensor]) -> torch.Tensor:
    # Members may differ by a few rows; pad to the longest (padding is never indexed).
    longest = max(len(p) for p in parts)
    out = parts[0].new_zeros((len(parts), longest, *parts[0].shape[1:]))
    for f, p in enumerate(parts):
        out[f, : len(p)] = p
    return out


@torch.no_grad()
def _outputs_per_member(model: nn.Module, forward_all: Callable[[torch.Tensor], torch.Tensor], parts: list[Tensors]) -> list[torch.Tensor]:
    """Each member's outputs on its own part, from forwards of all members at once (rows
    padded to the longest part, in chunks as :func:`runner.training.loop.outputs_of` takes them),
    with ``model`` (the module ``forward_all`` runs) in eval mode."""
    x = _stack_rows([part.x for part in parts])
    model.eval()
    chunks = [forward_all(x[:, i : i + _EVAL_CHUNK]) for i in range(0, x.shape[1], _EVAL_CHUNK)]
    model.train()
    outputs = chunks[0] if len(chunks) == 1 else torch.cat(chunks, 1)
    return [outputs[f, : len(part)] for f, part in enumerate(parts)]


def _weights_of(params: dict[str, torch.Tensor], member: int) -> dict[str, torch.Tensor]:
    """One member's weights as a state dict of its own model (batched models hold no buffers)."""
    return {name: p[member].detach().clone() for name, p in params.items()}


def train_batched(
    pipelines: list[Pipeline],
    spec: Spec,
    *,
    seeds: list[int],
    reporters: Sequence[Any] = (),
    names: Sequence[str] = (),
    checkpoints: BatchCheckpoints | None = None,
) -> tuple[list[tuple[RunResult, dict[str, torch.Tensor]]], str]:
    """Train every pipeline's model at once; per member, what :func:`train_one` would return
    (and the final weights), and which formulation ran ("batched layers" or "torch.func.vmap").
    ``reporters`` (progress, interrupts) hear each epoch's metrics averaged over the members;
    ``names`` name them in errors (fold-2); ``checkpoints`` save the batch's state (and may
    hold one to continue from, which ends as the uninterrupted batch would)."""
    names = list(names) or [f"member {f}" for f in range(len(pipelines))]
    settings = spec.train
    k, base, head, device = len(pipelines), pipelines[0].model, pipelines[0].head, pipelines[0].device
    # 1) Stacked parameters with one optimizer and schedule for all members: batched layers
    #    when the model is a chain of them, else vmap over a functional call of the model.
    layered = stacked_layers([p.model for p in pipelines])
    params: dict[str, torch.Tensor]
    if layered is not None:
        params = {name: param for name, param in layered.named_parameters()}
    else:
        stacked_state, _ = torch.func.stack_module_state([p.model for p in pipelines])
        params = {name: param for name, param in stacked_state.items()}
    stacked = list(params.values())
    optimizer = registry.OPTIMIZERS.get(spec.optimizer.type).builder(spec.optimizer, stacked)
    for group in optimizer.param_groups:  # few large tensors: one multi-tensor kernel per op
        if "foreach" in group and not group.get("fused"):
            group["foreach"] = True
    scheduler, interval = None, "epoch"
    if spec.scheduler is not None:
        scheduler, interval = registry.SCHEDULERS.get(spec.scheduler.type).builder(
            spec.scheduler, optimizer, settings.epochs, pipelines[0].steps_per_epoch
        )

    def forward(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(base, p, (x,))

    batched_forward = torch.func.vmap(forward)
    forward_all = layered if layered is not None else lambda x: batched_forward(params, x)
    row_losses = _row_losses(head)
    shim = _Slices(stacked, k)

    # 2) Each member's rows in one padded tensor; its own shuffle generator, as in train_one.
    x_all = _stack_rows([p.train.x for p in pipelines])
    y_all = _stack_rows([p.train.y for p in pipelines])
    n_rows = [len(p.train) for p in pipelines]
    batch = max(p.batch_size for p in pipelines)
    steps = pipelines[0].steps_per_epoch
    counts = torch.tensor([sizes(n, p.batch_size) for n, p in zip(n_rows, pipelines)], dtype=torch.float32)  # (k, steps)
    counts_list = counts.long().t().tolist()  # (steps, k)
    counts_dev = counts.to(device)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    members = torch.arange(k, device=device)[:, None]

    stopping: list[_EarlyStopping | None] = []
    for p in pipelines:
        es = settings.early_stopping
        stopping.append(None if es is None else _EarlyStopping(es.monitor, es.patience, es.min_delta, _maximize(es.monitor, p, es.mode)))
    best: list[dict[str, torch.Tensor] | None] = [None] * k
    final: list[dict[str, torch.Tensor] | None] = [None] * k
    history: list[list[dict[str, float]]] = [[] for _ in range(k)]
    active = [True] * k
    last_epoch = [0] * k

    # 2b) The batch's checkpoint: what the loop carries from one epoch to the next, saved
    #     after an epoch and, for a resumed parent run, put back before the first.
    history_texts = [checkpoint.HistoryText() for _ in range(k)]

    def state_after(epoch: int) -> dict[str, Any]:
        """Everything the loop carries from one epoch to the next (references: the writer copies)."""
        return {
            "format": BATCH_FORMAT,
            "members": list(names),
            "epoch": epoch,
            "params": dict(params),
            "optimizer": optimizer.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "generators": [g.get_state() for g in generators],
            "stopping": [None if s is None else [s.best, s.best_epoch, s.waited] for s in stopping],
            "best": list(best),
            "final": list(final),
            "history": "[" + ", ".join(text(h) for text, h in zip(history_texts, history)) + "]",
            "active": list(active),
            "last_epoch": list(last_epoch),
        }

    start = 1
    saved = checkpoints.resume if checkpoints is not None else None
    if saved is not None:
        with torch.no_grad():
            for name, param in params.items():
                param.copy_(saved["params"][name])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved["scheduler"] is not None:
            scheduler.load_state_dict(saved["scheduler"])
        for generator, generator_state in zip(generators, saved["generators"]):
            generator.set_state(generator_state)
        for stop, stop_state in zip(stopping, saved["stopping"]):
            if stop is not None and stop_state is not None:
                stop.best, stop.best_epoch, stop.waited = stop_state
        best, final, active, last_epoch = list(saved["best"]), list(saved["final"]), list(saved["active"]), list(saved["last_epoch"])
        history = json.loads(saved["history"]) if isinstance(saved["history"], str) else saved["history"]
        start = saved["epoch"] + 1

    base.train()
    for epoch in range(start, settings.epochs + 1) if any(active) else []:
        # 3) This epoch's batches of every member as one (k, steps, batch) index tensor.
        index = torch.zeros((k, steps * batch), dtype=torch.int64)
        for f, n in enumerate(n_rows):
            order = torch.randperm(n, generator=generators[f]) if settings.shuffle else torch.arange(n)
            index[f, :n] = order  # chunk s of the row is the member's batch s (padding unused)
        index = index.view(k, steps, batch).to(device)
        losses_per_step = []
        for s in range(steps):
            rows = index[:, s]
            x, y = x_all[members, rows], y_all[members, rows]
            outputs = forward_all(x).float()
            # Each member's loss over its own rows (a shorter last batch ignores the padding).
            c = counts_list[s]
            if row_losses is not None and min(c) == batch:
                losses = row_losses(outputs.flatten(0, 1), y.flatten(0, 1)).view(k, batch).mean(1)
            else:
                losses = torch.stack([head(outputs[f, : c[f]], y[f, : c[f]]) for f in range(k)])
            objective = losses.sum()
            if pipelines[0].penalty is not None:
                objective = objective + pipelines[0].penalty(shim)  # type: ignore[arg-type]
            objective.backward()
            if settings.grad_clip is not None:
                grads = [p.grad for p in stacked if p.grad is not None]
                if settings.grad_clip.norm is not None:
                    _clip_norm(grads, settings.grad_clip.norm)
                else:
                    torch.nn.utils.clip_grad_value_(stacked, settings.grad_clip.value)  # type: ignore[arg-type]
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if scheduler is not None and interval == "step":
                scheduler.step()
            losses_per_step.append(losses.detach())

        # 4) Non-finite losses or weights of a member still training stop the run, as in train_one.
        step_losses = torch.stack(losses_per_step)  # (steps, k)
        loss_sum = (step_losses * counts_dev.T).sum(0)
        finite = torch.isfinite(step_losses).all(0).tolist()
        weights_finite = torch.stack([p.isfinite().flatten(1).all(1) for p in stacked]).all(0).tolist()
        for f in range(k):
            if active[f] and not finite[f]:
                bad = int((~torch.isfinite(step_losses[:, f])).nonzero()[0]) + 1
                raise NonFiniteLoss(epoch, bad, f"training loss of {names[f]}")
            if active[f] and not weights_finite[f]:
                raise NonFiniteLoss(epoch, steps, f"weights of {names[f]}")
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None and interval == "epoch":
            scheduler.step()

        # 5) Validation of all members by one forward; each member still training is scored
        #    on its own rows. A member that stops keeps its weights of that epoch.
        train_loss = loss_sum.tolist()
        val = None
        if pipelines[0].val is not None:
            val = _outputs_per_member(base if layered is None else layered, forward_all, [p.val for p in pipelines])  # type: ignore[misc]
        for f, pipeline in enumerate(pipelines):
            if not active[f]:
                continue
            metrics = {"train/loss": train_loss[f] / n_rows[f], "lr": float(lr)}
            if val is not None:
                metrics |= score(pipeline, val[f], pipeline.val.y, "val")  # type: ignore[union-attr]
            history[f].append(metrics)
            last_epoch[f] = epoch
            stop = stopping[f]
            if stop is not None and stop.improved(epoch, metrics):
                best[f] = _weights_of(params, f)
            if stop is not None and stop.should_stop:
                active[f], final[f] = False, _weights_of(params, f)
        this_epoch = [history[f][-1] for f in range(k) if last_epoch[f] == epoch]
        if checkpoints is not None and (epoch % checkpoints.every == 0 or not any(active) or epoch == settings.epochs):
            checkpoints.save(state_after(epoch))
        for reporter in reporters:
            reporter.epoch_end(epoch, {key: sum(m[key] for m in this_epoch) / len(this_epoch) for key in this_epoch[0]})
        if not any(active):
            break

    # 6) Best weights when asked, else the last ones, then the test part, per member.
    out = []
    for f, pipeline in enumerate(pipelines):
        stop, epoch = stopping[f], last_epoch[f]
        stopped_early = stop is not None and stop.should_stop and epoch < settings.epochs
        weights_epoch = epoch
        weights = final[f] or _weights_of(params, f)
        es = settings.early_stopping
        best_weights = best[f]
        if stop is not None and es is not None and es.restore_best and best_weights:
            weights = best_weights
            weights_epoch = stop.best_epoch or epoch
        pipeline.model.load_state_dict(weights)
        test = evaluate(pipeline, pipeline.test, "test")
        result = RunResult(epoch, None if stop is None else stop.best_epoch, weights_epoch, stopped_early, test, history[f])
        out.append((result, copy.deepcopy(pipeline.model.state_dict())))
    return out, "torch.func.vmap" if layered is None else "batched layers"
