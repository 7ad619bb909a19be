"""The shipped ``dvc.yaml`` on a fresh copy of this repository, with the ``dvc`` command line.

CI reproduces the published results through this test: ``dvc repro check_quick`` runs the
data stage, every quick published spec's stage and the check, as a user's ``dvc repro`` does.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from runner.spec import load_spec
from tests.conftest import ROOT
from tests.dvc_helpers import commit_all, dvc, git_init, pipeline_env

PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
#: The published specs CI reproduces: those whose results `check_quick` depends on.
QUICK_SPECS = [Path(d).stem for d in PIPELINE["check_quick"]["deps"] if d.startswith("results/")]


def ran(output: str) -> list[str]:
    """The stages ``dvc repro`` ran, in order."""
    return re.findall(r"Running stage '([^']+)'", output)


def fresh_clone(destination: Path) -> Path:
    """What ``git clone`` of this work tree would give: its tracked and unignored files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    git_init(destination)
    commit_all(destination, "clone")
    return destination


PUBLISHED = sorted(p for p in (ROOT / "specs" / "published").glob("*.yaml") if not p.name.endswith(".best.yaml"))


@pytest.mark.parametrize("spec", PUBLISHED, ids=lambda p: p.stem)
def test_every_published_spec_has_its_stage_and_is_checked(spec: Path) -> None:
    stages = PIPELINE
    name, relative = spec.stem, spec.relative_to(ROOT).as_posix()
    stage = stages.get(name)
    assert stage is not None, f"dvc.yaml has no stage {name!r} for {relative}"
    verb = "search" if load_spec(spec).search is not None else "run"  # a published search checks its outcome
    assert f"runner {verb} {relative} --metrics-out results/{name}.json" in " ".join(stage["cmd"].split())
    dataset = load_spec(spec).data.dataset
    assert {relative, "runner", "registry"} <= set(stage["deps"])
    if dataset.type == "dvc":
        assert str(dataset.path) in stage["deps"]
        assert str(dataset.path) in stages["data"]["outs"], f"{dataset.path} is not written by the data stage"
    assert [{f"results/{name}.json": {"cache": False}}] == stage["metrics"]
    assert f"results/{name}.json" in stages["check"]["deps"]
    assert load_spec(spec).expect is not None, f"{relative} is published but cites no result (expect:)"


@pytest.mark.slow
def test_dvc_repro_reproduces_checks_and_reruns_only_what_changed(tmp_path: Path, migrated_tracking_uri: str) -> None:
    repo = fresh_clone(tmp_path / "clone")
    env = pipeline_env(repo) | {"MLFLOW_TRACKING_URI": migrated_tracking_uri}

    # 1) From scratch: the data, each quick published spec, the check.
    first = dvc("repro", "check_quick", cwd=repo, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert sorted(ran(first.stdout)) == sorted(["data", *QUICK_SPECS, "check_quick"])
    for name in QUICK_SPECS:
        assert (repo / "results" / f"{name}.json").exists() and (repo / "results" / f"{name}.history.csv").exists()
    assert "✅ pass" in (repo / "results" / "reproduction-quick.md").read_text()
    assert "❌" not in (repo / "results" / "reproduction-quick.md").read_text()

    # 2) Nothing changed: nothing runs.
    second = dvc("repro", "check_quick", cwd=repo, env=env)
    assert second.returncode == 0 and ran(second.stdout) == [], second.stdout
    assert "Data and pipelines are up to date." in second.stdout

    # 3) One spec edited: its stage and the check run again, nothing else.
    edited = QUICK_SPECS[-1]
    spec = repo / "specs" / "published" / f"{edited}.yaml"
    spec.write_text(spec.read_text() + "# an edit\n")
    third = dvc("repro", "check_quick", cwd=repo, env=env)
    assert third.returncode == 0, third.stdout + third.stderr
    assert ran(third.stdout) == [edited, "check_quick"]

    # 4) DVC reads the declared metrics and plots.
    metrics = dvc("metrics", "show", "--json", cwd=repo, env=env)
    files = next(iter(json.loads(metrics.stdout).values()))["data"]
    reproduced = json.loads((repo / "results" / f"{edited}.json").read_text())
    assert files[f"results/{edited}.json"]["data"] == reproduced
    plots = dvc("plots", "show", "--json", cwd=repo, env=env)
    assert plots.returncode == 0, plots.stderr
    assert {f"results/{name}.history.csv" for name in QUICK_SPECS} <= set(json.loads(plots.stdout)["data"])
