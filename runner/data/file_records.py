"""What a run records about the data files it read: path, DVC md5, size and git revision.

A dataset builder lists the files it read in ``Table.files``; each is hashed here, as read
(at the spec's ``rev`` when it names one), and logged as the tag
``specrun.data.<path>.md5`` and in the ``data_files.json`` artifact. For a file, DVC 3's md5
is the md5 of its bytes, so these are the values ``*.dvc`` files and ``dvc.lock`` record.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from registry import Table
from runner.tracking import record

_MAX_TAG_KEY = 250  # MLflow's limit on a key's length
_CHUNK = 1 << 20


@dataclass(frozen=True)
class DataFile:
    """One file a run read."""

    path: str
    md5: str
    size: int
    rev: str | None = None
    repo: str | None = None


def display_path(path: Path) -> str:
    """The path relative to the working directory when inside it, as written in specs."""
    if path.is_absolute():
        try:
            return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:  # outside the working directory
            pass
    return path.as_posix()


def _hash_stream(stream: Any) -> tuple[str, int]:
    digest, size = hashlib.md5(), 0
    for chunk in iter(lambda: stream.read(_CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _hash_directory(path: Path) -> tuple[str, int]:
    """DVC's hash of a directory (``<md5>.dir``, as ``dvc add DIR`` records it): the md5 of
    the JSON list of its files' md5s and relative paths, sorted by path; and its size."""
    entries, size = [], 0
    for file in (p for p in path.rglob("*") if p.is_file()):
        with file.open("rb") as stream:
            md5, file_size = _hash_stream(stream)
        entries.append({"md5": md5, "relpath": file.relative_to(path).as_posix()})
        size += file_size
    entries.sort(key=lambda entry: entry["relpath"])
    listing = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(listing).hexdigest() + ".dir", size


def describe(path: Path, rev: str | None = None, repo: str | None = None) -> DataFile:
    """Hash one file (or a directory of them, an image folder): from the working tree, or
    through dvc.api at a revision/repository."""
    if rev is None and repo is None and path.is_dir():
        md5, size = _hash_directory(path)
    elif rev is None and repo is None:
        with path.open("rb") as stream:
            md5, size = _hash_stream(stream)
    else:
        import dvc.api

        with dvc.api.open(str(path), repo=repo, rev=rev, mode="rb") as stream:
            md5, size = _hash_stream(stream)
    return DataFile(display_path(path), md5, size, rev, repo)


def records(table: Table, dataset: Any) -> list[DataFile]:
    """Every file ``table`` was read from, hashed where the dataset read it (``rev``/``repo``)."""
    rev, repo = getattr(dataset, "rev", None), getattr(dataset, "repo", None)
    return [describe(Path(f), rev, repo) for f in table.files]


def tag_key(path: str) -> str:
    """``data/iris.npz`` -> ``specrun.data.data/iris.npz.md5``, made a valid MLflow key.

    MLflow keys allow letters, digits and ``_-. /:`` and must not change under path
    normalization, so other characters become ``_`` and ``.``/``..``/empty segments go.
    """
    cleaned = re.sub(r"[^\w.\- /]", "_", path)
    segments = [s if s != ".." else "__" for s in cleaned.split("/") if s not in ("", ".")]
    key = f"{record.DATA_FILE_PREFIX}{'/'.join(segments)}.md5"
    if len(key) > _MAX_TAG_KEY:
        key = f"{record.DATA_FILE_PREFIX}sha256-{hashlib.sha256(path.encode()).hexdigest()[:16]}.md5"
    return key


def tags(files: list[DataFile]) -> dict[str, str]:
    """One ``specrun.data.<path>.md5`` tag per file."""
    return {tag_key(f.path): f.md5 for f in files}


def to_json(files: list[DataFile]) -> str:
    return json.dumps([{k: v for k, v in asdict(f).items() if v is not None} for f in files], indent=2) + "\n"


def from_json(text: str) -> list[DataFile]:
    return [DataFile(**item) for item in json.loads(text)]
