"""Real git and DVC repositories in temporary directories, for the data-versioning tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

GIT = ["git", "-c", "user.name=specrun-test", "-c", "user.email=test@specrun.local", "-c", "commit.gpgsign=false"]


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def git_init(directory: Path) -> None:
    """A repository that, like a project's, ignores what runs write (MLflow store, checkpoints)."""
    git("init", "-q", cwd=directory)
    (directory / ".gitignore").write_text("mlflow.db\nmlruns/\n.specrun/\n")


def commit_all(directory: Path, message: str) -> None:
    git("add", "-A", cwd=directory)
    git("commit", "-qm", message, cwd=directory)


def dvc_recorded_md5(dvc_file: Path) -> str:
    """The md5 DVC wrote in a ``.dvc`` file."""
    return yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]


def pipeline_env(code_root: Path) -> dict[str, str]:
    """For ``dvc`` and the ``runner`` commands its stages call: this venv's bin first on PATH,
    the code under test importable, no usage reports, MLflow in the repo's default store."""
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(code_root)
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def dvc(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The ``dvc`` command line, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True)
