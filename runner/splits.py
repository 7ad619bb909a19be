"""Train/validation/test indices from scikit-learn's splitters, driven by the spec's seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from sklearn.model_selection import train_test_split

from runner.spec.schema import SplitSpec


@dataclass(frozen=True)
class Holdout:
    """Row indices of each part; ``test`` is None when the dataset's official test part is used."""

    train: np.ndarray
    val: Optional[np.ndarray]
    test: Optional[np.ndarray]


def holdout(n: int, labels: Optional[np.ndarray], split: SplitSpec, seed: int, official_test: bool) -> Holdout:
    """Split ``n`` rows into train/val/test.

    Fractions are of all ``n`` rows, so ``test: 0.2, val: 0.16`` gives 0.64/0.16/0.20 (003).
    With ``stratify`` every part keeps the class proportions of ``labels``.
    """
    rows = np.arange(n)
    stratify = labels if split.stratify else None
    test = None
    if not official_test:
        rows, test = train_test_split(rows, test_size=split.test, random_state=seed, shuffle=True, stratify=stratify)
        test = np.sort(test)
    val = None
    if split.val:
        # A fraction of all rows becomes a fraction of what the test part left.
        size = split.val / (len(rows) / n) if isinstance(split.val, float) else split.val
        if isinstance(size, float) and size >= 1:
            raise ValueError(f"val={split.val} leaves no training rows")
        part_labels = None if stratify is None else stratify[rows]
        rows, val = train_test_split(rows, test_size=size, random_state=seed + 1, shuffle=True, stratify=part_labels)
        val = np.sort(val)
    return Holdout(np.sort(rows), val, test)
