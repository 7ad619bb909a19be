"""The registry mechanism: one source of truth, loud on duplicates and typos."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import registry
from registry import NoParams, Params, Registry
from tests.conftest import ROOT, subprocess_env


def test_duplicate_names_fail_at_registration() -> None:
    reg: Registry = Registry("thing")
    reg.add("a", lambda p: p)
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("a", lambda p: p)


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(KeyError, match="Did you mean 'adam'"):
        registry.OPTIMIZERS.get("adma")


def test_params_must_be_a_params_model() -> None:
    reg: Registry = Registry("thing")
    with pytest.raises(TypeError):
        reg.add("a", lambda p: p, dict)  # type: ignore[arg-type]


def test_every_entry_has_a_summary_and_strict_params() -> None:
    for kind, reg in registry.REGISTRIES.items():
        for entry in reg:
            assert entry.summary, f"{kind}.{entry.name} has no docstring"
            assert issubclass(entry.params, Params)
            assert entry.params.model_config.get("extra") == "forbid"


def test_decorator_returns_the_builder() -> None:
    reg: Registry = Registry("thing")

    @reg.register("b")
    def build(params: NoParams) -> int:
        """B."""
        return 1

    assert build(NoParams()) == 1 and reg.get("b").builder is build


def test_an_installed_package_adds_components_through_entry_points(tmp_path: Path) -> None:
    # A package declaring a `specrun.losses` entry point, as pip installs one (a .dist-info
    # folder on the path): a spec names its loss and trains with it, in a fresh process.
    site = tmp_path / "site"
    (site / "specrun_demo_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "specrun_demo_plugin-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: specrun-demo-plugin\nVersion: 0.1\n")
    (site / "specrun_demo_plugin-0.1.dist-info" / "entry_points.txt").write_text("[specrun.losses]\nhalf_mse = demo_plugin:half_mse\n")
    (site / "demo_plugin.py").write_text(
        "from registry._heads import RegressionHead\n\n\n"
        "def half_mse(params):\n"
        "    '''Half the squared loss, from a plugin.'''\n"
        "    print('half_mse built')\n"
        "    return RegressionHead('mse', 'mean', 0.5)\n"
    )
    spec = tmp_path / "plugin.yaml"
    spec.write_text(
        "name: plugin\nseed: 0\ndata: {dataset: diabetes, split: {test: 0.2}}\n"
        "model: {type: mlp, hidden: [4]}\nloss: half_mse\noptimizer: {type: sgd, lr: 0.01}\n"
        "train: {epochs: 1, batch_size: 64}\n"
    )
    env = {**subprocess_env(), "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    listed = subprocess.run([sys.executable, "-m", "runner", "list", "losses"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and "half_mse" in listed.stdout, listed.stderr
    ran = subprocess.run(
        [sys.executable, "-m", "runner", "run", str(spec), "--no-track"], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert ran.returncode == 0 and "half_mse built" in ran.stdout, ran.stderr
