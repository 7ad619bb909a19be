"""What a run records about where it came from: spec hash, code version, environment."""

from __future__ import annotations

import hashlib
import platform
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from runner.tracking import record

if TYPE_CHECKING:
    from runner.spec.schema import Spec


#: ``scheme://user:password@`` in a URI: the password is never recorded.
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<password>[^/@\s]+)@")


def without_credentials(value: Any) -> Any:
    """``value`` (a spec's data, a URI, a message) with every password in a URI masked."""
    if isinstance(value, str):
        return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", value)
    if isinstance(value, dict):
        return {key: without_credentials(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_credentials(item) for item in value]
    return value


def recorded_spec(spec: Spec) -> dict[str, Any]:
    """The resolved spec as a run records it (params, ``spec.resolved.yaml``): every default
    filled in, passwords in URIs masked."""
    data: dict[str, Any] = without_credentials(spec.to_data())
    return data


def spec_yaml(data: dict) -> str:
    """The resolved spec as YAML text; its hash identifies the experiment exactly."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def git_state(directory: Path) -> tuple[str, bool] | None:
    """(commit, dirty) of the git work tree holding ``directory``, or None outside a repo."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit, bool(status.strip())


def origin_tags(
    spec: Spec,
    *,
    spec_sha256: str,
    data_sha256: str,
    spec_file: Path | None,
    extra: Mapping[str, str],
    own: Mapping[str, str],
) -> dict[str, str]:
    """The tags that say where a run came from, for a run and a parent run alike: the spec
    and its hash, the data's fingerprint, the file, the versions, the git state (two
    subprocesses: only for a run that is tracked), then the spec's ``tracking.tags`` and
    ``extra`` (a search's or a rerun's). ``own`` (a run's device, a parent's folds) comes
    last: what specrun knows of a run is not a user's to overwrite."""
    tags = {
        record.SPEC_NAME: spec.name,
        record.SPEC_SHA256: spec_sha256,
        record.DATA_SHA256: data_sha256,
        **environment_tags(),
    }
    if spec_file is not None:
        tags[record.SPEC_FILE] = str(spec_file)
    git = git_state(Path.cwd())
    if git is not None:
        tags[record.GIT_COMMIT], tags[record.GIT_DIRTY] = git[0], str(git[1]).lower()
    return {**tags, **spec.tracking.tags, **extra, **own}


def environment_tags() -> dict[str, str]:
    """Versions that decide whether a rerun can be bit-identical."""
    import torch

    from runner import __version__

    return {
        record.VERSION: __version__,
        record.PYTHON: platform.python_version(),
        record.TORCH: torch.__version__,
        # CPU results depend on how many threads split each reduction.
        record.TORCH_THREADS: str(torch.get_num_threads()),
        record.PLATFORM: platform.platform(),
        **package_versions(),
    }


#: Packages besides torch whose version can change a run's numbers (splits, scaling, data).
PACKAGES = {record.NUMPY: "numpy", record.SKLEARN: "scikit-learn", record.MLFLOW: "mlflow"}


def package_versions() -> dict[str, str]:
    """Installed versions of :data:`PACKAGES`, read from metadata without importing them."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for tag, package in PACKAGES.items():
        try:
            found[tag] = version(package)
        except PackageNotFoundError:
            pass
    return found


#: Recorded versions compared with this environment's, with the name shown in a warning.
VERSION_TAGS = {
    record.VERSION: "specrun",
    record.PYTHON: "Python",
    record.TORCH: "torch",
    record.TORCH_THREADS: "torch's CPU thread count",
    record.NUMPY: "numpy",
    record.SKLEARN: "scikit-learn",
    record.MLFLOW: "MLflow",
    record.PLATFORM: "platform",
}


def environment_differences(tags: dict[str, str]) -> list[str]:
    """One line for each version a run recorded in ``tags`` that differs from this environment's."""
    here = environment_tags()
    return [
        f"{label} differs: the run used {tags[key]}, this environment has {here.get(key, 'none')}"
        for key, label in VERSION_TAGS.items()
        if key in tags and tags[key] != here.get(key)
    ]
