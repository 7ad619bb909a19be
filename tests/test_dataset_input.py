"""Where a run's dataset input says its data came from: a file or folder, or code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from registry import Table, Task
from runner.spec import load_spec
from runner.tracking.dataset_input import dataset_row


def _dataset(write_spec, dataset: str):  # type: ignore[no-untyped-def]
    text = f"name: d\ndata: {{dataset: {dataset}}}\nmodel: {{type: mlp}}\nloss: cross_entropy\noptimizer: adam\n"
    return load_spec(write_spec(text), []).data.dataset


def test_a_file_dataset_is_a_local_source_named_after_its_file(write_spec) -> None:  # type: ignore[no-untyped-def]
    table = Table(np.zeros((10, 2, 3), np.float32), np.zeros(10, np.int64), Task("multiclass", n_classes=2))
    row = dataset_row(
        _dataset(write_spec, "{type: npz, path: data/iris.npz}"), table, "ab" * 32, {"train_rows": 8, "val_rows": 0, "test_rows": 2}
    )
    assert (row["name"], row["digest"], row["source_type"]) == ("iris.npz", "ab" * 8, "local")
    assert json.loads(row["source"]) == {"uri": "data/iris.npz"}
    assert row["features"] == {"dtype": "float32", "shape": [-1, 2, 3]} and row["targets"] == {"dtype": "int64", "shape": [-1]}
    assert json.loads(row["profile"]) == {"num_rows": 10}
    assert row["tags"] == {"specrun.train_rows": "8", "specrun.val_rows": "0", "specrun.test_rows": "2"}


def test_a_dataset_read_from_several_files_names_their_folder_and_counts_its_official_test(write_spec) -> None:  # type: ignore[no-untyped-def]
    x, y = np.zeros((6, 4), np.float32), np.zeros(6, np.int64)
    files = [Path(f"/usr/share/datasets/fashion-mnist/{name}") for name in ("a.gz", "b.gz")]
    table = Table(x, y, Task("multiclass", n_classes=2), test=(x[:3], y[:3]), files=files)
    row = dataset_row(_dataset(write_spec, "fashion_mnist"), table, "cd" * 32, {"train_rows": 6, "val_rows": 0, "test_rows": 3})
    assert (row["name"], row["source_type"]) == ("fashion_mnist", "local")
    assert json.loads(row["source"]) == {"uri": str(Path("/usr/share/datasets/fashion-mnist"))}
    assert json.loads(row["profile"])["num_rows"] == 9


def test_a_generated_dataset_is_a_code_source_that_holds_its_parameters(write_spec) -> None:  # type: ignore[no-untyped-def]
    table = Table(np.zeros((5, 2), np.float32), np.zeros(5, np.int64), Task("multiclass", n_classes=3))
    row = dataset_row(
        _dataset(write_spec, "{type: blobs, n_samples: 5}"), table, "ef" * 32, {"train_rows": 5, "val_rows": 0, "test_rows": 0}
    )
    assert (row["name"], row["source_type"]) == ("blobs", "code")
    assert json.loads(json.loads(row["source"])["tags"]["specrun.dataset"])["n_samples"] == 5
