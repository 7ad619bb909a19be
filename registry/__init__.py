"""The named building blocks a spec refers to, one registry per component kind.

Importing this package imports pydantic only: builders import torch when they run.
Installed packages add components through entry points in the groups ``specrun.models``,
``specrun.losses``, ... (one per kind); each entry point names a builder function whose
``Params`` attribute, if any, is its parameter model.
"""

from __future__ import annotations

# Modules imported for what they register (their names are not used here).
from registry import (  # noqa: F401
    datasets_dvc,  # the `dvc` dataset
    datasets_images,  # fashion_mnist, mnist, npz, image_folder
    datasets_synthetic,  # the seeded generators
    losses_classical,  # margin, likelihood and decomposed losses
    metrics_classical,  # more metrics; confusion matrix and ROC figures
    models_ae,  # autoencoders, vae, elbo
    models_conv,  # cnn, vgg, resnet, sequential
    models_linear,  # glm, least squares, perceptron, ovr/ovo
    models_seq,  # rnn, lstm, gru, seq2seq, transformer
    transforms_shape,  # flatten, reshape, one_hot
)
from registry._registry import Entry, NoParams, Params, Registry
from registry._task import Task
from registry.activations import ACTIVATIONS
from registry.augmentations import AUGMENTATIONS
from registry.datasets import DATASETS, Table
from registry.inits import INITS
from registry.layers import LAYERS
from registry.losses import LOSSES
from registry.metrics import METRICS
from registry.models import MODELS
from registry.optimizers import OPTIMIZERS
from registry.regularizers import REGULARIZERS
from registry.schedulers import SCHEDULERS
from registry.transforms import TRANSFORMS

#: Every registry, by the plural name used in ``runner list`` and entry-point groups.
REGISTRIES: dict[str, Registry] = {
    "models": MODELS,
    "losses": LOSSES,
    "regularizers": REGULARIZERS,
    "optimizers": OPTIMIZERS,
    "schedulers": SCHEDULERS,
    "metrics": METRICS,
    "datasets": DATASETS,
    "transforms": TRANSFORMS,
    "activations": ACTIVATIONS,
    "inits": INITS,
    "augmentations": AUGMENTATIONS,
    "layers": LAYERS,
}

_plugins_loaded = False


def load_plugins() -> None:
    """Register components that installed packages expose as ``specrun.<kind>`` entry points."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    points = entry_points()  # one scan of the installed packages, not one per kind (~25 ms each)
    for kind, registry in REGISTRIES.items():
        for point in points.select(group=f"specrun.{kind}"):
            builder = point.load()
            if point.name not in registry:
                registry.add(point.name, builder, getattr(builder, "Params", NoParams))


__all__ = [
    "ACTIVATIONS",
    "AUGMENTATIONS",
    "DATASETS",
    "INITS",
    "LAYERS",
    "LOSSES",
    "METRICS",
    "MODELS",
    "OPTIMIZERS",
    "REGISTRIES",
    "REGULARIZERS",
    "SCHEDULERS",
    "TRANSFORMS",
    "Entry",
    "NoParams",
    "Params",
    "Registry",
    "Table",
    "Task",
    "load_plugins",
]
