"""The model a finished run leaves for use, as an MLflow model: raw features in, predictions out.

Training saw features after the spec's transforms, fitted on the training rows; whoever
calls the model has raw features. So the logged model carries the fitted transforms and the
loss head's link (softmax, sigmoid, identity) around the trained network, and
``mlflow.pytorch.load_model("runs:/<id>/model")`` (an ``nn.Module``) or
``mlflow.pyfunc.load_model(...)`` (``predict`` on arrays) answers from the inputs the
dataset gives, exactly as the run's test metrics were computed.
"""

from __future__ import annotations

import copy
import importlib.metadata
import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import registry
from registry._heads import LossHead
from runner.data.prepare import PreparedData
from runner.spec.schema import Spec
from runner.training.pipeline import Pipeline, output_size

#: What the model's environment needs besides MLflow (which MLflow adds itself).
_REQUIREMENTS = ("torch", "numpy", "scikit-learn", "pydantic", "PyYAML")


class ServedModel(nn.Module):
    """The fitted transforms, the trained network and the head's link, in that order.

    The transforms are scikit-learn's (the very objects fitted in the run), so they run on
    the CPU in NumPy; the network runs on the device of the input.
    """

    def __init__(self, transforms: Sequence[Any], network: nn.Module, head: LossHead) -> None:
        super().__init__()
        self.transforms = list(transforms)
        self.network = network
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point():
            x = x.float()  # as the datasets load them (a float64 tensor from NumPy would not meet the weights)
        if self.transforms:
            features = x.detach().cpu().numpy()
            for transform in self.transforms:
                features = np.asarray(transform.transform(features), dtype=np.float32)
            x = torch.from_numpy(features).to(x.device)
        return self.head.predict(self.network(x))


def served_model(spec: Spec, pipeline: Pipeline, data: PreparedData) -> ServedModel:
    """A CPU copy of the run's network, in eval mode, behind its transforms and head.

    The network is built afresh from the spec and loaded with the trained weights: the
    training copy may be compiled or on a GPU, neither of which belongs in a saved model.
    """
    in_shape = tuple(data.train.x.shape[1:])
    with torch.random.fork_rng(devices=[]):  # a fresh network draws initial weights: not from the run's stream
        network = registry.MODELS.get(spec.model.type).builder(spec.model, in_shape, output_size(data, spec.loss.type, spec.loss))
    network.load_state_dict({name: value.detach().cpu() for name, value in pipeline.model.state_dict().items()})
    # The head as trained (some learn a size from the first targets they see), on the CPU.
    head = copy.deepcopy(pipeline.head).cpu()
    return ServedModel(data.transforms, network, head).eval()


def _requirements() -> list[str]:
    pinned = []
    for name in _REQUIREMENTS:
        version = importlib.metadata.version(name).split("+")[0]  # 2.13.0+cpu: no index has the local build
        pinned.append(f"{name}=={version}")
    return pinned


def save(model: ServedModel, example: np.ndarray, directory: Path) -> None:
    """Write ``model`` as an MLflow PyTorch model (with its pyfunc flavor) to ``directory``.

    The signature comes from ``example`` (a few raw test rows) and the model's answer to
    them. Pickled, not ``torch.export``-ed (MLflow 3's default): the transforms are NumPy.
    The specrun code the pickle refers to travels with it (``code/``), so the model loads
    where specrun is not installed, given the listed requirements.
    """
    import mlflow.pytorch
    from mlflow.models import infer_signature

    with torch.no_grad():
        answer = model(torch.from_numpy(example)).numpy()
    root = Path(__file__).resolve().parents[2]  # the folder holding runner/ and registry/
    # MLflow 3 would torch.export by default; MLflow 2 always pickles (and hands unknown
    # keywords to torch.save).
    pickled = (
        {"serialization_format": "pickle"} if "serialization_format" in inspect.signature(mlflow.pytorch.save_model).parameters else {}
    )
    # MLflow warns on every pickled save that unpickling runs code: true of every pickle,
    # chosen here on purpose, and said once in the README rather than after every run.
    mlflow_log = logging.getLogger("mlflow.pytorch")
    level = mlflow_log.level
    mlflow_log.setLevel(logging.ERROR)
    try:
        mlflow.pytorch.save_model(
            model,
            str(directory),
            signature=infer_signature(example, answer),
            **pickled,
            code_paths=[str(root / "runner"), str(root / "registry")],
            pip_requirements=_requirements(),
        )
    finally:
        mlflow_log.setLevel(level)
