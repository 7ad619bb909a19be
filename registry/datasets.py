"""Datasets a spec names under ``data.dataset:``: scikit-learn's bundled sets and tabular files.

A builder returns a :class:`Table`: features as float32, targets (class indices or float
values), the task they pose, and the official test part where the dataset defines one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from registry._registry import NoParams, Params, Registry
from registry._task import Task

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DATASETS: Registry = Registry("dataset")


@dataclass
class Table:
    """A loaded dataset: ``x`` (n, d) float32, ``y`` (n,) int64 classes or float32 values."""

    x: np.ndarray
    y: np.ndarray
    task: Task
    feature_names: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    test: tuple[np.ndarray, np.ndarray] | None = None
    files: list[Path] = field(default_factory=list)
    #: Group id per row (``groups:`` of a file dataset), for group k-fold; None when not given.
    groups: np.ndarray | None = None


def _from_sklearn(loader_name: str, kind: str) -> Table:
    import numpy as np
    from sklearn import datasets

    bunch = getattr(datasets, loader_name)()
    x = np.asarray(bunch.data, dtype=np.float32)
    if kind == "regression":
        return Table(x, np.asarray(bunch.target, dtype=np.float32), Task("regression"), list(bunch.feature_names))
    classes = [str(c) for c in bunch.target_names]
    task = Task("binary" if len(classes) == 2 else "multiclass", n_classes=len(classes))
    feature_names = [str(f) for f in getattr(bunch, "feature_names", [])]
    return Table(x, np.asarray(bunch.target, dtype=np.int64), task, feature_names, classes)


def _sklearn(name: str, loader_name: str, kind: str, doc: str) -> None:
    def build(params: NoParams) -> Table:
        return _from_sklearn(loader_name, kind)

    build.__doc__ = doc
    DATASETS.add(name, build, NoParams, task=kind)


_sklearn(
    "breast_cancer",
    "load_breast_cancer",
    "binary",
    "Wisconsin breast cancer, 569 x 30, binary (scikit-learn codes malignant as 0; Liquet et al., ch. 3).",
)
_sklearn("digits", "load_digits", "multiclass", "8x8 handwritten digits, 1797 x 64, 10 classes (scikit-learn).")
_sklearn("iris", "load_iris", "multiclass", "Fisher's iris, 150 x 4, 3 classes (scikit-learn).")
_sklearn("wine", "load_wine", "multiclass", "Wine recognition, 178 x 13, 3 classes (scikit-learn).")
_sklearn("diabetes", "load_diabetes", "regression", "Diabetes progression, 442 x 10, regression (scikit-learn).")


class FileParams(Params):
    path: Path = Field(..., description="A .csv, .parquet or .pq file, relative to the working directory.")
    target: str = Field(..., description="Name of the target column.")
    features: list[str] | None = Field(None, description="Feature columns; default: every other column.")
    task: Literal["auto", "binary", "multiclass", "regression"] = Field(
        "auto", description="auto: classification when the target is text, bool, or integers with <= 20 values."
    )
    groups: str | None = Field(None, description="Column of group ids for group k-fold (not a feature).")


def _infer_task(target: object, task: str) -> str:
    import pandas as pd

    if task != "auto":
        return task
    series = pd.Series(target)
    types = pd.api.types
    discrete = (
        types.is_object_dtype(series) or types.is_string_dtype(series) or types.is_bool_dtype(series) or types.is_integer_dtype(series)
    )
    if discrete and series.nunique() <= 20:
        return "binary" if series.nunique() == 2 else "multiclass"
    return "regression"


@DATASETS.register("file", params=FileParams, task="any")
def file(params: FileParams) -> Table:
    """A table from a CSV or Parquet file with a named target column; classes are label-encoded."""
    import pandas as pd

    suffix = params.path.suffix.lower()
    if not params.path.exists():
        raise FileNotFoundError(f"data file {params.path} does not exist")
    frame = pd.read_parquet(params.path) if suffix in {".parquet", ".pq"} else pd.read_csv(params.path)
    table = table_from_frame(frame, params.path, params.target, features=params.features, task=params.task, groups=params.groups)
    table.files = [params.path]
    return table


def table_from_frame(
    frame: pd.DataFrame, path: Path, target: str, *, features: list[str] | None, task: str, groups: str | None = None
) -> Table:
    """The table of a file's data frame: its numeric features, and a target label-encoded
    for classification; columns that are missing, hold text or have gaps are errors that say so."""
    import numpy as np
    import pandas as pd

    named = [target, *(features or []), *([groups] if groups else [])]
    missing = [c for c in named if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing}; columns are {list(frame.columns)}")
    features = features or [c for c in frame.columns if c not in (target, groups)]
    text = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    if text:
        example = frame[text[0]].dropna().iloc[0] if frame[text[0]].notna().any() else None
        raise ValueError(
            f"{path}: feature column(s) {text} hold text (e.g. {example!r}), not numbers: list the numeric "
            "columns in `features:`, or encode these as numbers in the file (then a `one_hot` transform "
            "turns codes into indicator columns)"
        )
    gaps = {c: int(n) for c, n in frame[[*features, target]].isna().sum().items() if n}
    if gaps:
        first = int(np.flatnonzero(frame[list(gaps)].isna().any(axis=1).to_numpy())[0])
        raise ValueError(
            f"{path}: missing values (column: count) {gaps}, the first in data row {first + 1}; fill them or drop those rows in the file"
        )
    group_ids = None if groups is None else np.unique(frame[groups].astype(str).to_numpy(), return_inverse=True)[1]
    x = frame[features].to_numpy(dtype=np.float32)
    kind = _infer_task(frame[target], task)
    if kind == "regression":
        return Table(x, frame[target].to_numpy(dtype=np.float32), Task("regression"), features, groups=group_ids)
    classes, codes = np.unique(frame[target].astype(str).to_numpy(), return_inverse=True)
    table_task = Task(kind, n_classes=len(classes))  # type: ignore[arg-type]
    return Table(x, codes.astype(np.int64), table_task, features, [str(c) for c in classes], groups=group_ids)
