"""The data a run read, as MLflow's dataset input: what `mlflow ui` shows in its Datasets
column and ``run.inputs.dataset_inputs`` holds (name, digest, source, schema, profile).

Plain data (a dict of strings) so that the tracking process, which has MLflow imported,
builds MLflow's entities from it (``MlflowStore.log_dataset``). The digest is the start of
the run's ``specrun.data_sha256``: two runs on the same data show the same digest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from registry import Table
from runner.data.file_records import display_path
from runner.tracking import record

#: Characters of the data's sha256 shown as the dataset's digest (MLflow keeps up to 36).
DIGEST_LENGTH = 16


def _source(dataset: Any, table: Table) -> tuple[str, str]:
    """Where the data came from, as MLflow's source types say it: a file or folder
    (``local``), else made by code (a scikit-learn loader, a generator)."""
    path: str | None = getattr(dataset, "path", None)
    if path is None and table.files:
        files = [display_path(Path(f)) for f in table.files]
        path = files[0] if len(files) == 1 else str(Path(files[0]).parent)
    if path is not None:
        return "local", json.dumps({"uri": str(path)})
    return "code", json.dumps({"tags": {record.DATASET_SPEC: json.dumps(dataset.model_dump(mode="json"), sort_keys=True)}})


def _tensor(array: np.ndarray) -> dict[str, Any]:
    return {"dtype": str(array.dtype), "shape": [-1, *array.shape[1:]]}


def dataset_row(dataset: Any, table: Table, fingerprint: str, usage: dict[str, int]) -> dict[str, Any]:
    """The input of one run: the dataset ``dataset`` (its spec) loaded as ``table``, used as
    ``usage`` says (a run's rows per part, a parent's folds or seeds).

    MLflow keeps one dataset per name and digest in an experiment, shared by the runs that
    use it: its profile says what is true of the data (its rows); how a run split it goes
    in the tags of that run's input (``specrun.train_rows``, ``specrun.folds``, ...).
    """
    path = getattr(dataset, "path", None)
    source_type, source = _source(dataset, table)
    rows = len(table.y) + (0 if table.test is None else len(table.test[1]))
    return {
        "name": Path(str(path)).name if path is not None else dataset.type,
        "digest": fingerprint[:DIGEST_LENGTH],
        "source_type": source_type,
        "source": source,
        "profile": json.dumps({"num_rows": rows}),
        "tags": {f"{record.DATASET_USAGE_PREFIX}{key}": str(value) for key, value in usage.items()},
        "features": _tensor(table.x),
        "targets": _tensor(table.y),
    }
