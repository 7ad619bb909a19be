"""``runner run --nproc N``: torchrun + DDP, on CPU with gloo; one MLflow run, logged by rank 0."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from runner.runtime import distributed
from tests.conftest import TINY_SPEC, subprocess_env


@pytest.mark.parametrize("rank,expected", [(0, [0, 3, 6, 9]), (1, [1, 4, 7, 0]), (2, [2, 5, 8, 1])])
def test_shard_pads_cyclically_and_strides_like_distributed_sampler(
    monkeypatch: pytest.MonkeyPatch, rank: int, expected: list[int]
) -> None:
    # 10 rows over 3 ranks: padded to 12 with rows 0 and 1, then every third row from `rank`.
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", str(rank))
    assert distributed.shard(torch.arange(10)).tolist() == expected
    assert distributed.is_main() is (rank == 0)


def test_one_process_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    model = torch.nn.Linear(2, 2)
    assert distributed.world_size() == 1 and distributed.is_main()
    assert distributed.wrap(model, torch.device("cpu")) is model
    order = torch.arange(5)
    assert distributed.shard(order) is order


@pytest.mark.slow
def test_nproc_2_on_cpu_trains_one_tracked_run(workdir: Path, write_spec: Callable[..., Path], tracking_uri: str) -> None:
    spec = write_spec(TINY_SPEC.replace("epochs: 3", "epochs: 8"))
    out = workdir / "metrics.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "run",
            str(spec),
            "--nproc",
            "2",
            "--device",
            "cpu",
            "--tracking-uri",
            tracking_uri,
            "--metrics-out",
            str(out),
        ],
        cwd=workdir,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(tracking_uri)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 1, "only rank 0 creates a run"
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["specrun.world_size"] == "2"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == list(range(1, 9))
    metrics = json.loads(out.read_text())
    assert metrics["test/accuracy"] > 0.9 and metrics["test/roc_auc"] > 0.95
    assert metrics["test/accuracy"] == pytest.approx(run.data.metrics["test/accuracy"])
    # Each printed table comes from rank 0 alone.
    assert done.stdout.count("final metrics") == 1
