"""``data.target: input``: the target of every example is its own (transformed) input.

Autoencoders and VAEs learn to reconstruct what they see (Liquet et al., sec. 3.5, 8.1), so the labels are
replaced by the features: the task becomes regression with one target per input value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from registry._task import Task
from registry.datasets import Table


def relabel(table: Table) -> Table:
    """The table with ``y`` := ``x`` (and so for the official test part), as a regression task."""
    table.y = table.x
    if table.test is not None:
        table.test = (table.test[0], table.test[0])
    table.task = Task("regression", n_targets=math.prod(table.x.shape[1:]))
    table.class_names = []
    return table


def targets_from_inputs(parts: Iterable[Any]) -> None:
    """After the transforms: each part's targets are its transformed features (None parts skipped)."""
    for part in parts:
        if part is not None:
            part.y = part.x
