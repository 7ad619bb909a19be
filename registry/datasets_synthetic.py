"""Seeded synthetic datasets of the notes (Lal; Nalisnick): nothing to download.

Every generator draws from its own ``seed`` parameter, so a dataset is a pure function of its
parameters (and its file md5 under ``runner data`` is stable); the spec's ``seed`` governs the
split, initialization and shuffling, not the data. scikit-learn's ``make_*`` generators are
used where they exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from registry._registry import Params
from registry._task import Task
from registry.datasets import DATASETS, Table

if TYPE_CHECKING:
    import numpy as np


class _Seeded(Params):
    seed: int = Field(0, ge=0, description="Seed of this generator (independent of the spec's seed).")


class _Sampled(_Seeded):
    n_samples: int = Field(200, ge=4, description="Rows to draw.")
    noise: float = Field(0.1, ge=0, description="Standard deviation of the Gaussian noise.")


def _regression(x: np.ndarray, y: np.ndarray, names: list[str]) -> Table:
    import numpy as np

    return Table(np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32), Task("regression"), names)


def _classes(x: np.ndarray, y: np.ndarray, n_classes: int) -> Table:
    import numpy as np

    kind = "binary" if n_classes == 2 else "multiclass"
    names = [f"x{i}" for i in range(x.shape[1])]
    return Table(
        np.asarray(x, dtype=np.float32),
        np.asarray(y, dtype=np.int64),
        Task(kind, n_classes=n_classes),  # type: ignore[arg-type]
        names,
        [str(c) for c in range(n_classes)],
    )


class _Interval(_Sampled):
    low: float = Field(-3.0, description="Smallest x; x is drawn uniformly from [low, high].")
    high: float = Field(3.0, description="Largest x.")

    @model_validator(mode="after")
    def _low_below_high(self) -> _Interval:
        if self.low >= self.high:
            raise ValueError(f"`low < high` must hold, but got low={self.low}, high={self.high}")
        return self


class NoisyCubicParams(_Interval):
    n_samples: int = Field(500, ge=4, description="Rows to draw (the notes do not give N).")
    noise: float = Field(1.0, ge=0, description="sigma of eps ~ N(0, sigma^2); the notes state sigma = 1.")
    low: float = Field(-3.0, description="Smallest x (the notes do not give the range).")
    high: float = Field(3.0, description="Largest x.")


@DATASETS.register("noisy_cubic", params=NoisyCubicParams, task="regression")
def noisy_cubic(params: NoisyCubicParams) -> Table:
    """t = 0.5x^3 + 0.3x^2 - 0.25x + 1 + eps, eps ~ N(0, 1) (Lal Lal, Notes on ML and Neural Networks, Table 1)."""
    import numpy as np

    rng = np.random.default_rng(params.seed)
    x = rng.uniform(params.low, params.high, params.n_samples)
    t = 0.5 * x**3 + 0.3 * x**2 - 0.25 * x + 1 + rng.normal(0.0, params.noise, params.n_samples)
    return _regression(x[:, None], t, ["x"])


class PolynomialDataParams(_Interval):
    degree: int = Field(7, ge=0, description="Degree of the true polynomial (Nalisnick, Deep Learning notes uses 7).")
    coefficients: list[float] | None = Field(None, description="c_0..c_degree; default: drawn from N(0, 1) with the seed.")

    @model_validator(mode="after")
    def _coefficients_match_degree(self) -> PolynomialDataParams:
        if self.coefficients is not None and len(self.coefficients) != self.degree + 1:
            raise ValueError(f"`coefficients` needs degree + 1 = {self.degree + 1} values, got {len(self.coefficients)}")
        return self


@DATASETS.register("polynomial", params=PolynomialDataParams, task="regression")
def polynomial(params: PolynomialDataParams) -> Table:
    """y = sum_k c_k x^k + noise, a polynomial of a given degree (Nalisnick Nalisnick, Deep Learning notes)."""
    import numpy as np

    rng = np.random.default_rng(params.seed)
    coefficients = np.asarray(params.coefficients if params.coefficients is not None else rng.normal(size=params.degree + 1))
    x = rng.uniform(params.low, params.high, params.n_samples)
    y = np.polynomial.polynomial.polyval(x, coefficients) + rng.normal(0.0, params.noise, params.n_samples)
    return _regression(x[:, None], y, ["x"])


class SineParams(_Interval):
    frequency: float = Field(1.0, gt=0, description="Cycles per 2 pi: y = sin(frequency x).")


@DATASETS.register("sine", params=SineParams, task="regression")
def sine(params: SineParams) -> Table:
    """y = sin(f x) + noise, the target of the MLP depth example (Nalisnick, Deep Learning notes)."""
    import numpy as np

    rng = np.random.default_rng(params.seed)
    x = rng.uniform(params.low, params.high, params.n_samples)
    y = np.sin(params.frequency * x) + rng.normal(0.0, params.noise, params.n_samples)
    return _regression(x[:, None], y, ["x"])


class TruthTableParams(_Seeded):
    repeat: int = Field(1, ge=1, description="Copies of the four rows in the training data.")
    noise: float = Field(0.0, ge=0, description="Gaussian jitter added to the training copies' inputs.")


def _gate(params: TruthTableParams, outputs: list[int]) -> Table:
    """The 2-input truth table; its four exact rows are the official test part."""
    import numpy as np

    inputs = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    labels = np.array(outputs, dtype=np.int64)
    x = np.tile(inputs, (params.repeat, 1))
    if params.noise:
        x = x + np.random.default_rng(params.seed).normal(0.0, params.noise, x.shape).astype(np.float32)
    table = _classes(x, np.tile(labels, params.repeat), 2)
    table.test = (inputs, labels)
    return table


@DATASETS.register("nand", params=TruthTableParams, task="binary")
def nand(params: TruthTableParams) -> Table:
    """NAND truth table, linearly separable (Lal Lal, Notes on ML and Neural Networks, Table 2); test part = the 4 rows."""
    return _gate(params, [1, 1, 1, 0])


@DATASETS.register("xor", params=TruthTableParams, task="binary")
def xor(params: TruthTableParams) -> Table:
    """XOR truth table, not linearly separable (Lal Lal, Notes on ML and Neural Networks, Table 3; Nalisnick, Deep Learning notes)."""
    return _gate(params, [0, 1, 1, 0])


@DATASETS.register("moons", params=_Sampled, task="binary")
def moons(params: _Sampled) -> Table:
    """Two interleaving half circles (scikit-learn ``make_moons``)."""
    from sklearn.datasets import make_moons

    x, y = make_moons(params.n_samples, noise=params.noise, random_state=params.seed)
    return _classes(x, y, 2)


class BlobsParams(_Seeded):
    n_samples: int = Field(200, ge=4)
    n_features: int = Field(2, ge=1)
    centers: int = Field(3, ge=2, description="Number of classes (one Gaussian blob each).")
    cluster_std: float = Field(1.0, gt=0)


@DATASETS.register("blobs", params=BlobsParams, task="any")
def blobs(params: BlobsParams) -> Table:
    """Isotropic Gaussian blobs, one per class (scikit-learn ``make_blobs``)."""
    from sklearn.datasets import make_blobs

    x, y = make_blobs(
        params.n_samples,
        params.n_features,
        centers=params.centers,
        cluster_std=params.cluster_std,
        random_state=params.seed,
    )
    return _classes(x, y, params.centers)


class ClassificationParams(_Seeded):
    n_samples: int = Field(200, ge=4)
    n_features: int = Field(20, ge=2)
    n_informative: int = Field(2, ge=1)
    n_redundant: int = Field(2, ge=0)
    n_classes: int = Field(2, ge=2)
    n_clusters_per_class: int = Field(2, ge=1)
    flip_y: float = Field(0.01, ge=0, le=1, description="Share of labels assigned at random.")
    class_sep: float = Field(1.0, gt=0)


@DATASETS.register("classification", params=ClassificationParams, task="any")
def classification(params: ClassificationParams) -> Table:
    """Random n-class problem of Gaussian clusters (scikit-learn ``make_classification``)."""
    from sklearn.datasets import make_classification

    values = params.model_dump(exclude={"type", "seed"})
    try:
        x, y = make_classification(**values, random_state=params.seed)
    except ValueError as error:  # e.g. too few informative features for the clusters asked
        raise ValueError(f"classification: {error}") from error
    return _classes(x, y, params.n_classes)
