"""Tables read from CSV files (``dataset: {path: ..., target: ...}``): what a file that
cannot be a table looks like to the user."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from registry.datasets import FileParams, file


def _write(tmp_path: Path, **columns: list[object]) -> Path:
    path = tmp_path / "table.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def test_text_targets_are_label_encoded_and_numeric_features_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, a=[0.5, 1.5, 2.5, 3.5], flag=[True, False, True, True], y=["dog", "cat", "dog", "cat"])
    table = file(FileParams(path=path, target="y"))
    assert table.class_names == ["cat", "dog"] and table.y.tolist() == [1, 0, 1, 0]
    assert table.x.dtype == np.float32 and table.x[:, 1].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert table.files == [path] and table.task.kind == "binary"


def test_a_text_feature_column_is_named_with_what_to_do(tmp_path: Path) -> None:
    path = _write(tmp_path, a=[0.5, 1.5, 2.5], color=["red", "blue", "red"], y=[0, 1, 0])
    with pytest.raises(ValueError, match=r"feature column\(s\) \['color'\] hold text \(e.g. 'red'\), not numbers: list"):
        file(FileParams(path=path, target="y"))
    assert file(FileParams(path=path, target="y", features=["a"])).x.shape == (3, 1)


def test_missing_values_are_counted_and_the_first_row_named(tmp_path: Path) -> None:
    path = _write(tmp_path, a=[0.5, None, 2.5, None], b=[1.0, 2.0, 3.0, 4.0], y=[0, 1, None, 1])
    with pytest.raises(ValueError, match=r"missing values \(column: count\) \{'a': 2, 'y': 1\}, the first in data row 2"):
        file(FileParams(path=path, target="y"))
