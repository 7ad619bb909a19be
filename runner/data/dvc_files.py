"""``runner data``: write registry datasets as files and put files under DVC.

``materialize`` writes a dataset as ``<out>/<name>.npz`` (see :mod:`registry._npz`), the same
bytes every time, so the md5 DVC records is stable and a spec can pin it. ``add`` also makes
sure the project is a DVC repository with a default remote (a local directory, so that
``dvc push``/``dvc pull`` work offline) and tracks the files with ``dvc add``.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import registry
from registry import _npz

if TYPE_CHECKING:
    from dvc.repo import Repo

#: Where a repository without a remote keeps pushed data: outside the repository, per user.
DEFAULT_REMOTE_URL = "~/.cache/specrun/dvc-remote"
DEFAULT_REMOTE_NAME = "local"


class DataCommandError(Exception):
    """A ``runner data`` request that cannot be carried out (exit status 2)."""


@dataclass(frozen=True)
class Written:
    """A data file ``runner data`` wrote or tracked, with its md5 (as DVC records it)."""

    path: Path
    md5: str
    rows: int | None = None


def dataset_params(name: str, sets: Sequence[str]) -> Any:
    """The validated parameters of registry dataset ``name`` from ``KEY=VALUE`` strings."""
    from pydantic import TypeAdapter, ValidationError

    from runner.spec.yaml_source import scalar

    entry = registry.DATASETS.get(name)  # KeyError with the closest names
    values: dict[str, Any] = {"type": name}
    for assignment in sets:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            raise DataCommandError(f"--set must be KEY=VALUE, e.g. n_samples=500, but got {assignment!r}")
        value, unreadable = scalar(raw)
        if unreadable:
            raise DataCommandError(f"--set {assignment}: the value is not plain YAML: {unreadable[0].message}")
        values[key.strip()] = value
    if "path" in entry.params.model_fields:
        raise DataCommandError(f"dataset {name!r} reads a file; give the file's path to `runner data add` instead")
    try:
        return TypeAdapter(registry.DATASETS.field_type()).validate_python(values)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or name}: {e['msg']}" for e in error.errors(include_url=False))
        raise DataCommandError(f"dataset {name!r}: {problems}") from error


def materialize(name: str, out_dir: Path, sets: Sequence[str] = ()) -> Written:
    """Build registry dataset ``name`` and write it as ``out_dir/<name>.npz``."""
    from registry.datasets_dvc import md5_of_file

    params = dataset_params(name, sets)
    try:
        table = registry.DATASETS.get(name).builder(params)
    except (FileNotFoundError, ValueError) as error:  # e.g. a dataset's source files are absent
        raise DataCommandError(f"dataset {name!r} cannot be built: {error}") from error
    path = out_dir / f"{name}.npz"
    _npz.write(table, path)
    return Written(path, md5_of_file(path), len(table.y) + (len(table.test[1]) if table.test is not None else 0))


def git_root(directory: Path) -> Path | None:
    """The top of the git work tree holding ``directory``, or None outside one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(out)


@contextlib.contextmanager
def _quiet_dvc() -> Iterator[None]:
    """DVC's Python API logs CLI hints ("To track the changes with git, run: ..."); ours say more."""
    logger = logging.getLogger("dvc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def open_repo(directory: Path, remote_url: str | None = None) -> tuple[Repo, list[str]]:
    """The DVC repository holding ``directory``, initialised (and given a default remote) if
    needed. Returns the repo and what was set up, as sentences for the user."""
    from dvc.repo import Repo

    done: list[str] = []
    root = git_root(directory)
    top = root or directory
    with _quiet_dvc():
        if not (top / ".dvc").is_dir():
            Repo.init(str(top), no_scm=root is None)
            done.append(f"initialised DVC in {top}" + ("" if root else " (no git repository: --no-scm)"))
        repo = Repo(str(top))
        current = repo.config["core"].get("remote")
        if not current:
            url = remote_url or DEFAULT_REMOTE_URL
            with repo.config.edit() as config:
                config["remote"][DEFAULT_REMOTE_NAME] = {"url": url}
                config["core"]["remote"] = DEFAULT_REMOTE_NAME
            done.append(f"default DVC remote {DEFAULT_REMOTE_NAME!r} -> {url} (`dvc push` / `dvc pull`)")
        elif remote_url:
            done.append(f"--remote ignored: the default DVC remote is already {current!r} (`dvc remote list`)")
    return repo, done


def track(repo: Repo, paths: Sequence[Path]) -> list[Written]:
    """``dvc add`` each path; returns the md5 DVC recorded for each."""
    from dvc.exceptions import DvcException

    written = []
    with _quiet_dvc():
        for path in paths:
            try:
                stages = repo.add([str(path)])
            except DvcException as error:
                raise DataCommandError(f"dvc add {path}: {error}") from error
            out = stages[0].outs[0]
            written.append(Written(path, str(out.hash_info.value)))
    return written


def is_dataset_name(source: str) -> bool:
    """A registry name that is not also an existing path."""
    return source in registry.DATASETS and not Path(source).exists()


def add(sources: Sequence[str], out_dir: Path, sets: Sequence[str] = (), remote_url: str | None = None) -> tuple[list[Written], list[str]]:
    """Materialize registry datasets (or take existing files) and track them with DVC."""
    paths: list[Path] = []
    rows: dict[Path, int | None] = {}
    for source in sources:
        if is_dataset_name(source):
            written = materialize(source, out_dir, sets)
            paths.append(written.path)
            rows[written.path] = written.rows
        elif Path(source).exists():
            paths.append(Path(source))
        else:
            from registry._registry import closest

            hint = closest(source, registry.DATASETS.names())
            raise DataCommandError(
                f"{source!r} is neither a registered dataset nor an existing file."
                + (f" Did you mean {hint!r}?" if hint else "")
                + f" Datasets: {', '.join(registry.DATASETS.names())}"
            )
    repo, done = open_repo(Path.cwd(), remote_url)
    try:
        tracked = track(repo, paths)
    finally:
        repo.close()
    return [Written(w.path, w.md5, rows.get(w.path)) for w in tracked], done


def _error(message: str) -> None:
    print(f"runner: error: {message}", file=sys.stderr)


def command(action: str, sources: Sequence[str], out_dir: Path, sets: Sequence[str], remote_url: str | None) -> int:
    """``runner data add|materialize``: exit 0, or 2 when a request cannot be carried out."""
    try:
        if action == "materialize":
            written, done = [materialize(name, out_dir, sets) for name in sources], list[str]()
        else:
            written, done = add(sources, out_dir, sets, remote_url)
    except (DataCommandError, KeyError) as error:
        _error(error.args[0] if isinstance(error, KeyError) else str(error))
        return 2
    for line in done:
        print(line)
    for item in written:
        rows = f" ({item.rows} rows)" if item.rows is not None else ""
        print(f"{item.path}  md5 {item.md5}{rows}")
    if written:
        example = written[0]
        if example.md5.endswith(".dir"):  # a directory: images in one folder per class
            print(f"A spec reads it as:  dataset: {{type: image_folder, path: {example.path.as_posix()}}}  (each run tags its md5)")
        else:
            target = "" if example.path.suffix == ".npz" else ", target: COLUMN"
            print(f"A spec reads it, pinned, as:  dataset: {{type: dvc, path: {example.path.as_posix()}{target}, md5: {example.md5}}}")
    if action == "add" and written:
        files = [f"{w.path}.dvc" for w in written] + sorted({f"{w.path.parent / '.gitignore'}" for w in written})
        print(f"Record this version in git:  git add {' '.join(files)} && git commit")
    return 0
