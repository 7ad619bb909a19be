"""The ``dvc`` dataset: a DVC-tracked data file, optionally pinned by md5 and read at a git revision.

```yaml
data:
  dataset: {type: dvc, path: data/iris.npz, md5: 0123...cdef}       # the working tree's copy
  dataset: {type: dvc, path: data/iris.npz, rev: v1.0}             # as of a git tag, via dvc.api
```

The md5 is the one DVC records in ``data/iris.npz.dvc`` or ``dvc.lock`` (for a file, DVC 3
hashes its bytes as they are), so ``runner data add`` prints the value to pin. A file whose
content differs from the pin is refused before anything is trained or logged.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from registry import _npz
from registry._registry import Params
from registry.datasets import DATASETS, Table, table_from_frame

#: File types the ``dvc`` dataset reads, by suffix.
FORMATS = {".npz": "npz", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_CHUNK = 1 << 20


class DvcFileParams(Params):
    path: Path = Field(..., description="A .npz (as `runner data add` writes), .csv or .parquet file, relative to the repository root.")
    md5: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{32}$",
        description="The content's md5 as DVC records it (`runner data add` prints it); a run on other content is refused.",
    )
    rev: str | None = Field(None, description="Read the file as of this git revision (tag, branch or commit) through dvc.api.")
    repo: str | None = Field(
        None, description="The DVC repository (path or git URL) to read from; default: the one holding the working directory."
    )
    target: str | None = Field(None, description="Target column (CSV and Parquet only).")
    features: list[str] | None = Field(None, description="Feature columns (CSV and Parquet only); default: every other column.")
    task: Literal["auto", "binary", "multiclass", "regression"] = Field(
        "auto",
        description="CSV and Parquet only; auto: classification when the target is text, bool, or integers with <= 20 values.",
    )

    @model_validator(mode="after")
    def _format_fits_columns(self) -> DvcFileParams:
        kind = FORMATS.get(self.path.suffix.lower())
        if kind is None:
            raise ValueError(f"the file must end in one of {', '.join(FORMATS)}, but got {str(self.path)!r}")
        if kind == "npz" and (self.target is not None or self.features is not None or self.task != "auto"):
            raise ValueError("`target`, `features` and `task` are for CSV and Parquet files; an NPZ file holds x, y and its task already")
        if kind != "npz" and self.target is None:
            raise ValueError(f"a {kind.upper()} file needs `target`, the name of its target column")
        return self


def _read_at_revision(params: DvcFileParams) -> bytes:
    import dvc.api

    where = f"{params.path} at rev {params.rev or 'HEAD'}" + (f" of {params.repo}" if params.repo else "")
    try:
        with dvc.api.open(str(params.path), repo=params.repo, rev=params.rev, mode="rb") as stream:
            return stream.read()
    except Exception as error:  # dvc raises many kinds (missing rev, file, remote); all mean "cannot read"
        raise FileNotFoundError(f"cannot read {where}: {type(error).__name__}: {error}") from error


def md5_of_file(path: Path) -> str:
    """The md5 of a file's bytes, read in chunks (DVC 3's hash of a file)."""
    digest = hashlib.md5()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_pin(params: DvcFileParams, actual: str) -> None:
    if params.md5 is not None and actual != params.md5:
        where = f"{params.path}" + (f" at rev {params.rev}" if params.rev else "")
        raise ValueError(
            f"{where}: the content must match the md5 the spec pins, but expected md5 {params.md5}, "
            f"actual md5 {actual}. Restore the pinned version (`dvc checkout`, or `git checkout` its "
            f".dvc file first) or, if the change is intended, update `md5:` in the spec."
        )


def _from_frame(source: object, params: DvcFileParams) -> Table:
    import pandas as pd

    kind = FORMATS[params.path.suffix.lower()]
    frame = pd.read_parquet(source) if kind == "parquet" else pd.read_csv(source)
    assert params.target is not None  # the params validator requires it for tables
    return table_from_frame(frame, params.path, params.target, features=params.features, task=params.task)


@DATASETS.register("dvc", params=DvcFileParams, task="any")
def dvc_file(params: DvcFileParams) -> Table:
    """A DVC-tracked .npz/.csv/.parquet file, optionally pinned by md5 and read at a git revision."""
    if params.rev is not None or params.repo is not None:
        content = _read_at_revision(params)
        _check_pin(params, hashlib.md5(content).hexdigest())
        source: object = io.BytesIO(content)
    else:
        if not params.path.exists():
            raise FileNotFoundError(
                f"data file {params.path} does not exist; if DVC tracks it, `dvc pull` fetches it "
                "(or `dvc repro` rebuilds it when a pipeline stage writes it)"
            )
        _check_pin(params, md5_of_file(params.path))
        source = params.path
    if FORMATS[params.path.suffix.lower()] == "npz":
        table = _npz.read(source, str(params.path))  # type: ignore[arg-type]
    else:
        table = _from_frame(source, params)
    table.files = [params.path]
    return table
