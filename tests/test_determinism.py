"""``reproducibility: bitwise | tolerant | off`` -> torch's determinism switches, and what each does.

``Tensor.put_(accumulate=False)`` is an op torch flags as nondeterministic on the CPU too
(with repeated indices the winning write is unspecified), so the error and warning paths
are tested here without a GPU; the CUDA path has its own ``gpu`` test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from runner.cli import main
from runner.runtime import determinism

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_torch_flags() -> Iterator[None]:
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]


def _nondeterministic_op(device: str = "cpu") -> None:
    torch.zeros(4, device=device).put_(torch.tensor([0, 0], device=device), torch.tensor([1.0, 2.0], device=device))


@pytest.mark.parametrize(
    "level,enabled,warn_only",
    [
        ("bitwise", True, False),
        ("tolerant", True, True),
        ("off", False, False),
    ],
)
def test_levels_map_to_torch_flags(level: str, enabled: bool, warn_only: bool) -> None:
    determinism.set_reproducibility(level)
    assert torch.are_deterministic_algorithms_enabled() is enabled
    assert torch.is_deterministic_algorithms_warn_only_enabled() is warn_only
    assert torch.backends.cudnn.deterministic is enabled
    assert torch.backends.cudnn.benchmark is (not enabled)
    if enabled:
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in {":4096:8", ":16:8"}


def test_bitwise_makes_a_nondeterministic_op_an_error() -> None:
    determinism.set_reproducibility("bitwise")
    with pytest.raises(RuntimeError, match="put_ does not have a deterministic implementation"):
        _nondeterministic_op()


def test_tolerant_warns_and_names_the_op() -> None:
    determinism.set_reproducibility("tolerant")
    with pytest.warns(UserWarning, match="put_ does not have a deterministic implementation") as record:
        _nondeterministic_op()
    assert any("put_" in str(w.message) for w in record)


def test_off_runs_it_silently() -> None:
    determinism.set_reproducibility("off")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _nondeterministic_op()
    assert [str(w.message) for w in caught] == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bitwise_makes_a_cuda_only_nondeterministic_op_an_error() -> None:
    # histc has no deterministic CUDA kernel (it is deterministic on the CPU).
    determinism.set_reproducibility("off")
    torch.histc(torch.rand(100, device="cuda"))
    determinism.set_reproducibility("bitwise")
    with pytest.raises(RuntimeError, match="histc"):
        torch.histc(torch.rand(100, device="cuda"))
    determinism.set_reproducibility("tolerant")
    with pytest.warns(UserWarning, match="histc"):
        torch.histc(torch.rand(100, device="cuda"))


def test_the_level_is_recorded_on_the_run(workdir: Path, write_spec: Callable[..., Path], tracking_uri: str) -> None:
    spec = write_spec()
    assert main(["run", str(spec), "--tracking-uri", tracking_uri, "--set", "reproducibility=tolerant", "--set", "train.epochs=1"]) == 0
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert run.data.tags["specrun.reproducibility"] == "tolerant"
    assert run.data.params["reproducibility"] == "tolerant"


def test_setting_the_level_leaves_the_compiler_unimported_until_a_run_compiles() -> None:
    # torch.use_deterministic_algorithms imports torch._inductor (seconds of a small run's
    # start); the eager flag alone is set, and the compiler gets it when a run compiles.
    code = (
        "import sys, torch\n"
        "from runner.runtime import determinism\n"
        "determinism.set_reproducibility('bitwise')\n"
        "assert torch.are_deterministic_algorithms_enabled()\n"
        "assert 'torch._inductor' not in sys.modules, 'set_reproducibility imported the compiler'\n"
        "determinism.configure_compiler()\n"
        "import torch._inductor.config as c\n"
        "assert c.deterministic is True\n"
        "determinism.set_reproducibility('off'); determinism.configure_compiler()\n"
        "assert c.deterministic is False\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
