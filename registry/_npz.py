"""The NPZ layout ``runner data`` writes a dataset in, and reads back exactly.

One file holds a whole :class:`Table`: ``x``, ``y``, the official test part (``x_test``,
``y_test``) when there is one, the feature and class names and the task. The bytes depend on
the arrays alone (stored, not compressed; no zip timestamps), so writing the same data twice
gives the same md5: the md5 DVC records and a spec can pin.

A plain ``np.savez`` file with ``x`` and ``y`` reads too; its task is then inferred.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

from registry._task import Task

if TYPE_CHECKING:
    import numpy as np

    from registry.datasets import Table

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest zip date: a constant instead of "now"


def _whole_bytes(*parts: np.ndarray) -> bool:
    """Whether float features are whole numbers in 0..255 (images), so uint8 holds them exactly."""
    import numpy as np

    for x in parts:
        if x.dtype.kind != "f" or not x.size or float(x.min()) < 0 or float(x.max()) > 255:
            return False
        if not np.array_equal(x.astype(np.uint8), x):
            return False
    return True


def write(table: Table, path: Path) -> None:
    """Write ``table`` to ``path`` (atomically: a half-written file never has the final name)."""
    import numpy as np

    parts = [np.ascontiguousarray(table.x)] + ([np.ascontiguousarray(table.test[0])] if table.test is not None else [])
    # Images stored as uint8 are 4x smaller; every uint8 is exactly a float, and the
    # original dtype is restored on read.
    compact = _whole_bytes(*parts)
    if compact:
        parts = [x.astype(np.uint8) for x in parts]
    arrays: dict[str, np.ndarray] = {"x": parts[0], "y": np.ascontiguousarray(table.y)}
    if table.test is not None:
        arrays |= {"x_test": parts[1], "y_test": np.ascontiguousarray(table.test[1])}
    if compact:
        arrays["x_dtype"] = np.array(str(table.x.dtype))
    arrays |= {
        "feature_names": np.array([str(n) for n in table.feature_names], dtype=str),
        "class_names": np.array([str(n) for n in table.class_names], dtype=str),
        "task": np.array(table.task.kind),
        "n_classes": np.array(table.task.n_classes, dtype=np.int64),
        "n_targets": np.array(table.task.n_targets, dtype=np.int64),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.create_system = 3  # as on Unix everywhere, so Windows writes the same bytes
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    partial.replace(path)


def _infer_task(y: np.ndarray) -> Task:
    if y.dtype.kind in "iub":
        n_classes = int(y.max()) + 1 if y.size else 0
        return Task("binary" if n_classes == 2 else "multiclass", n_classes=n_classes)
    return Task("regression", n_targets=1 if y.ndim == 1 else int(y.shape[1]))


def read(source: Path | IO[bytes], name: str) -> Table:
    """The :class:`Table` in an NPZ file or stream; ``name`` is used in error messages."""
    import numpy as np

    from registry.datasets import Table

    with np.load(source, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise ValueError(f"{name}: an NPZ dataset needs arrays 'x' and 'y', but {missing} are missing; it has {sorted(arrays)}")
    dtype = str(arrays["x_dtype"]) if "x_dtype" in arrays else None

    def features(x: np.ndarray) -> np.ndarray:
        return x.astype(dtype) if dtype else x

    if "task" in arrays:
        task = Task(str(arrays["task"]), int(arrays["n_classes"]), int(arrays["n_targets"]))  # type: ignore[arg-type]
    else:
        task = _infer_task(arrays["y"])
    test = None
    if "x_test" in arrays:
        test = (features(arrays["x_test"]), arrays["y_test"])
    return Table(
        features(arrays["x"]),
        arrays["y"],
        task,
        [str(n) for n in arrays.get("feature_names", [])],
        [str(n) for n in arrays.get("class_names", [])],
        test,
    )
