"""The seeded generators: reproducible, the stated data-generating process, sklearn where it has one."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import datasets as skd

import registry
from tests.registry.test_components import build


def table(value: object) -> registry.Table:
    return build(registry.DATASETS, value)  # type: ignore[return-value]


@pytest.mark.parametrize("name", ["noisy_cubic", "polynomial", "sine", "nand", "xor", "moons", "blobs", "classification"])
def test_same_seed_same_data_other_seed_other_data(name: str) -> None:
    first, again = table({"type": name, "seed": 3}), table({"type": name, "seed": 3})
    assert np.array_equal(first.x, again.x) and np.array_equal(first.y, again.y)
    assert first.x.dtype == np.float32
    if name not in ("nand", "xor"):  # noise-free truth tables do not depend on the seed
        other = table({"type": name, "seed": 4})
        assert not np.array_equal(first.x, other.x)


def test_noisy_cubic_is_the_cubic_plus_unit_noise() -> None:
    data = table({"type": "noisy_cubic", "n_samples": 20_000})
    x = data.x[:, 0].astype(np.float64)
    residual = data.y - (0.5 * x**3 + 0.3 * x**2 - 0.25 * x + 1)
    assert abs(residual.mean()) < 0.03 and residual.std() == pytest.approx(1.0, abs=0.02)
    assert -3 <= x.min() and x.max() <= 3


def test_noise_free_polynomial_and_sine_are_exact() -> None:
    poly = table({"type": "polynomial", "degree": 2, "coefficients": [1, -2, 0.5], "noise": 0})
    x = poly.x[:, 0]
    assert np.allclose(poly.y, 1 - 2 * x + 0.5 * x**2, atol=1e-5)
    sine = table({"type": "sine", "frequency": 2, "noise": 0})
    assert np.allclose(sine.y, np.sin(2 * sine.x[:, 0]), atol=1e-6)


def test_polynomial_coefficients_must_match_the_degree() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="degree \\+ 1 = 3"):
        table({"type": "polynomial", "degree": 2, "coefficients": [1, 2]})


def test_truth_tables_and_their_test_part() -> None:
    nand, xor = table({"type": "nand", "repeat": 3}), table("xor")
    assert nand.test is not None and xor.test is not None
    assert nand.test[1].tolist() == [1, 1, 1, 0] and xor.test[1].tolist() == [0, 1, 1, 0]
    assert nand.x.shape == (12, 2) and nand.y.tolist() == [1, 1, 1, 0] * 3
    noisy = table({"type": "nand", "repeat": 2, "noise": 0.1})
    assert not np.array_equal(noisy.x, nand.x[:8]) and np.abs(noisy.x - nand.x[:8]).max() < 1


def test_sklearn_generators_match_sklearn() -> None:
    moons = table({"type": "moons", "n_samples": 50, "noise": 0.2, "seed": 1})
    x, y = skd.make_moons(50, noise=0.2, random_state=1)
    assert np.allclose(moons.x, x) and np.array_equal(moons.y, y) and moons.task.kind == "binary"
    blobs = table({"type": "blobs", "n_samples": 60, "centers": 4, "seed": 2})
    x, y = skd.make_blobs(60, 2, centers=4, random_state=2)
    assert np.allclose(blobs.x, x) and np.array_equal(blobs.y, y) and blobs.task.n_classes == 4
    cls = table({"type": "classification", "n_samples": 80, "n_classes": 3, "n_features": 6, "n_informative": 3, "seed": 5})
    x, y = skd.make_classification(80, 6, n_informative=3, n_redundant=2, n_classes=3, random_state=5)
    assert np.allclose(cls.x, x) and np.array_equal(cls.y, y) and cls.task.kind == "multiclass"
