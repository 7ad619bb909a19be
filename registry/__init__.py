"""The named building blocks a spec refers to, one registry per component kind.

Importing this package imports pydantic only: builders import torch when they run.
Installed packages add components through entry points in the groups ``specrun.models``,
``specrun.losses``, ... (one per kind); each entry point names a builder function whose
``Params`` attribute, if any, is its parameter model.
"""

from __future__ import annotations

from registry._registry import Entry, NoParams, Params, Registry
from registry._task import Task
from registry.activations import ACTIVATIONS
from registry.datasets import DATASETS, Table
from registry import datasets_dvc  # noqa: F401  (registers the `dvc` dataset)
from registry import datasets_synthetic  # noqa: F401  (registers the seeded generators)
from registry import datasets_images, transforms_shape  # noqa: F401  (image datasets; flatten/reshape/one_hot)
from registry.augmentations import AUGMENTATIONS
from registry.layers import LAYERS
from registry.inits import INITS
from registry.losses import LOSSES
from registry import losses_classical  # noqa: F401  (margin, likelihood and decomposed losses)
from registry.metrics import METRICS
from registry import metrics_classical  # noqa: F401  (more metrics; confusion matrix and ROC figures)
from registry.models import MODELS
from registry import models_linear  # noqa: F401  (glm, least squares, perceptron, ovr/ovo)
from registry import models_ae, models_conv, models_seq  # noqa: F401  (cnn/vgg/resnet/sequential, rnn/.../transformer, autoencoders/vae/elbo)
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
    "ACTIVATIONS", "AUGMENTATIONS", "DATASETS", "INITS", "LAYERS", "LOSSES", "METRICS", "MODELS", "OPTIMIZERS",
    "REGISTRIES", "REGULARIZERS", "SCHEDULERS", "TRANSFORMS",
    "Entry", "NoParams", "Params", "Registry", "Table", "Task", "load_plugins",
]
