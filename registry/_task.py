"""What a dataset asks of a model: the task kind and the output sizes it implies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TaskKind = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True)
class Task:
    """The supervised task of a dataset, known once it is loaded.

    ``n_classes`` is 0 for regression; ``n_targets`` is 1 for classification.
    """

    kind: TaskKind
    n_classes: int = 0
    n_targets: int = 1

    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"
