"""What a run records about where it came from: spec hash, code version, environment."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from pathlib import Path
from typing import Optional

import yaml


def spec_yaml(data: dict) -> str:
    """The resolved spec as YAML text; its hash identifies the experiment exactly."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def git_state(directory: Path) -> Optional[tuple[str, bool]]:
    """(commit, dirty) of the git work tree holding ``directory``, or None outside a repo."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory, capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit, bool(status.strip())


def environment_tags() -> dict[str, str]:
    """Versions that decide whether a rerun can be bit-identical."""
    import torch

    from runner import __version__

    return {
        "specrun.version": __version__,
        "specrun.python": platform.python_version(),
        "specrun.torch": torch.__version__,
        # CPU results depend on how many threads split each reduction.
        "specrun.torch_threads": str(torch.get_num_threads()),
        "specrun.platform": platform.platform(),
        **package_versions(),
    }


#: Packages besides torch whose version can change a run's numbers (splits, scaling, data).
PACKAGES = {"specrun.numpy": "numpy", "specrun.sklearn": "scikit-learn", "specrun.mlflow": "mlflow"}


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
    "specrun.version": "specrun",
    "specrun.python": "Python",
    "specrun.torch": "torch",
    "specrun.torch_threads": "torch's CPU thread count",
    "specrun.numpy": "numpy",
    "specrun.sklearn": "scikit-learn",
    "specrun.mlflow": "MLflow",
    "specrun.platform": "platform",
}


def environment_differences(tags: dict[str, str]) -> list[str]:
    """One line for each version a run recorded in ``tags`` that differs from this environment's."""
    here = environment_tags()
    return [
        f"{label} differs: the run used {tags[key]}, this environment has {here.get(key, 'none')}"
        for key, label in VERSION_TAGS.items()
        if key in tags and tags[key] != here.get(key)
    ]
