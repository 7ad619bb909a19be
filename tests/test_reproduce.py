"""``runner reproduce RUN_ID`` against a real SQLite MLflow store in a real git repository."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from runner.cli import main
from tests.conftest import TINY_SPEC
from tests.dvc_helpers import commit_all, git_init

CSV_SPEC = TINY_SPEC.replace("dataset: breast_cancer", "dataset: {path: table.csv, target: label}").replace("name: tiny", "name: tiny-csv")


def runs(client: MlflowClient, experiment: str) -> list:
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id])


def write_table(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(120, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["label"] = np.where(x[:, 0] - x[:, 2] > 0, "yes", "no")
    frame.to_csv(path, index=False)


def test_reproduce_gives_bit_identical_metrics_in_a_new_tagged_run(
    workdir: Path, migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    git_init(workdir)
    write_table(workdir / "table.csv", seed=0)
    (workdir / "spec.yaml").write_text(CSV_SPEC)
    commit_all(workdir, "spec and data")
    assert main(["run", "spec.yaml", "--tracking-uri", migrated_tracking_uri]) == 0
    client = MlflowClient(tracking_uri=migrated_tracking_uri)
    [original] = runs(client, "tiny-csv")
    run_id = original.info.run_id
    capsys.readouterr()

    assert main(["reproduce", run_id, "--tracking-uri", migrated_tracking_uri, "--exact"]) == 0
    out, err = capsys.readouterr()
    assert "bit-identical" in out and "warning" not in err
    [rerun] = [r for r in runs(client, "tiny-csv") if r.info.run_id != run_id]
    assert rerun.data.tags["specrun.reproduces"] == run_id
    assert rerun.data.metrics == original.data.metrics  # every final value, to the bit
    for name in ("metrics.json", "spec.resolved.yaml", "data_files.json"):
        texts = [Path(client.download_artifacts(r.info.run_id, name, str(workdir / r.info.run_id))).read_text() for r in (original, rerun)]
        assert texts[0] == texts[1], name


def test_reproduce_warns_on_other_versions_and_refuses_other_data(
    workdir: Path, migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    git_init(workdir)
    write_table(workdir / "table.csv", seed=0)
    (workdir / "spec.yaml").write_text(CSV_SPEC.replace("epochs: 3", "epochs: 1"))
    commit_all(workdir, "spec and data")
    assert main(["run", "spec.yaml", "--tracking-uri", migrated_tracking_uri]) == 0
    client = MlflowClient(tracking_uri=migrated_tracking_uri)
    [original] = runs(client, "tiny-csv")
    run_id = original.info.run_id
    recorded_md5 = original.data.tags["specrun.data.table.csv.md5"]

    # As if the run had been made elsewhere: older torch, another commit. Warned, not refused.
    client.set_tag(run_id, "specrun.torch", "1.0.0")
    client.set_tag(run_id, "mlflow.source.git.commit", "0" * 40)
    capsys.readouterr()
    assert main(["reproduce", run_id, "--tracking-uri", migrated_tracking_uri]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "torch differs: the run used 1.0.0" in err and "code differs: the run was made at git commit 000000000000" in err

    # Other data under the same file name: refused, with both hashes, and nothing logged.
    write_table(workdir / "table.csv", seed=1)
    capsys.readouterr()
    assert main(["reproduce", run_id, "--tracking-uri", migrated_tracking_uri]) == 2
    err = capsys.readouterr().err
    assert f"table.csv: expected md5 {recorded_md5}" in err and "actual md5" in err
    assert len(runs(client, "tiny-csv")) == 2  # the original and the first rerun only


def test_reproduce_an_unknown_run_exits_2(workdir: Path, migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "0123456789abcdef", "--tracking-uri", migrated_tracking_uri]) == 2
    assert "no run '0123456789abcdef'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("split", "flags"),
    [("{folds: 3}", []), ("{folds: 3}", ["--sequential"]), ("{test: 0.2, val: 0.2}", ["--seeds", "2"])],
    ids=["folds-batched", "folds-sequential", "seeds"],
)
def test_reproduce_a_parent_run_reruns_its_members_as_they_ran(
    workdir: Path,
    write_spec,
    migrated_tracking_uri: str,
    split: str,
    flags: list[str],
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    text = TINY_SPEC.replace("split: {test: 0.2, val: 0.2, stratify: true}", f"split: {split}").replace(", dropout: 0.1", "")
    spec = write_spec(text)
    assert main(["run", str(spec), *flags, "--tracking-uri", migrated_tracking_uri]) == 0
    client = MlflowClient(tracking_uri=migrated_tracking_uri)
    [parent] = [r for r in runs(client, "tiny") if "mlflow.parentRunId" not in r.data.tags]
    capsys.readouterr()

    assert main(["reproduce", parent.info.run_id, "--tracking-uri", migrated_tracking_uri, "--exact"]) == 0
    assert "bit-identical" in capsys.readouterr().out
    [rerun] = [r for r in runs(client, "tiny") if "mlflow.parentRunId" not in r.data.tags and r.info.run_id != parent.info.run_id]
    assert rerun.data.tags["specrun.reproduces"] == parent.info.run_id
    assert (
        rerun.data.tags["specrun.cv.mode"]
        == parent.data.tags["specrun.cv.mode"]
        == ("sequential" if "--sequential" in flags else "batched")
    )
    assert rerun.data.metrics == parent.data.metrics
