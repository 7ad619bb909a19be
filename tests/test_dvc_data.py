"""Datasets under DVC: ``runner data add``, md5 pins, reads at a git revision, offline remotes.

Every test works in a real git repository with a real DVC project in a temporary directory.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import registry
from registry import _npz
from runner.cli import main
from runner.data import file_records
from runner.data.dvc_files import materialize
from runner.data.prepare import fingerprint, prepare
from runner.spec import SpecError, load_spec
from runner.tracking import record
from tests.dvc_helpers import commit_all, dvc_recorded_md5, git, git_init

SPEC = """\
name: iris-dvc
seed: 0
data:
  dataset: {{type: dvc, path: data/iris.npz{extra}}}
  transforms: [standardize]
  split: {{test: 0.3, stratify: true}}
model: softmax
loss: cross_entropy
optimizer: {{type: sgd, lr: 0.5}}
train: {{epochs: 2, batch_size: full}}
metrics: [accuracy]
"""


@pytest.fixture(autouse=True)
def _no_dvc_analytics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_spec(directory: Path, extra: str = "", name: str = "spec.yaml") -> Path:
    path = directory / name
    path.write_text(SPEC.format(extra=extra))
    return path


def change_iris(path: Path) -> None:
    """A different version of the data: one label flipped."""
    table = _npz.read(path, str(path))
    table.y = table.y.copy()
    table.y[0] = (table.y[0] + 1) % 3
    _npz.write(table, path)


def test_materialized_file_round_trips_exactly_and_is_the_same_bytes_every_time(workdir: Path) -> None:
    for name in ("iris", "digits"):
        first = materialize(name, workdir / "a")
        second = materialize(name, workdir / "b")
        assert first.md5 == second.md5 == md5(first.path)
        built = registry.DATASETS.get(name).builder(registry.NoParams())
        read = _npz.read(first.path, name)
        assert fingerprint(read) == fingerprint(built)  # features, targets, dtypes and shapes
        assert read.task == built.task and read.class_names == built.class_names
        assert read.feature_names == built.feature_names and read.x.dtype == np.float32
    # digits' features are whole numbers in 0..16: stored as uint8, read back as float32.
    with np.load(workdir / "a" / "digits.npz") as archive:
        assert archive["x"].dtype == np.uint8


def test_data_add_tracks_with_dvc_and_a_run_logs_its_md5_then_refuses_other_content(
    workdir: Path, migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    git_init(workdir)
    assert main(["data", "add", "iris", "--remote", str(workdir.parent / "remote")]) == 0
    out = capsys.readouterr().out
    data = workdir / "data" / "iris.npz"
    recorded = dvc_recorded_md5(workdir / "data" / "iris.npz.dvc")
    assert recorded == md5(data)  # DVC 3's md5 of a file is the md5 of its bytes
    assert f"md5 {recorded}" in out and "initialised DVC" in out and "default DVC remote 'local'" in out
    assert "/iris.npz" in (workdir / "data" / ".gitignore").read_text()
    assert "remote = local" in (workdir / ".dvc" / "config").read_text()

    spec = write_spec(workdir, f", md5: {recorded}")
    assert main(["run", str(spec), "--tracking-uri", migrated_tracking_uri]) == 0
    client = MlflowClient(tracking_uri=migrated_tracking_uri)
    [run] = client.search_runs([client.get_experiment_by_name("iris-dvc").experiment_id])
    assert run.data.tags["specrun.data.data/iris.npz.md5"] == recorded
    logged = Path(client.download_artifacts(run.info.run_id, record.DATA_FILES_ARTIFACT, str(workdir)))
    assert json.loads(logged.read_text()) == [{"path": "data/iris.npz", "md5": recorded, "size": data.stat().st_size}]

    # Other content under the same name: refused before anything is logged.
    change_iris(data)
    capsys.readouterr()
    assert main(["run", str(spec), "--tracking-uri", migrated_tracking_uri]) == 2
    err = capsys.readouterr().err
    assert "data/iris.npz" in err and f"expected md5 {recorded}" in err and f"actual md5 {md5(data)}" in err
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_csv_md5_is_the_one_dvc_records_even_with_crlf_line_ends(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git_init(workdir)
    rng = np.random.default_rng(0)
    rows = ["a,b,label"] + [f"{x:.3f},{y:.3f},{'yes' if x + y > 0 else 'no'}" for x, y in rng.normal(size=(60, 2))]
    table = workdir / "table.csv"
    table.write_bytes(("\r\n".join(rows) + "\r\n").encode())
    assert main(["data", "add", "table.csv", "--remote", str(workdir.parent / "remote")]) == 0
    recorded = dvc_recorded_md5(workdir / "table.csv.dvc")
    assert recorded == md5(table)  # bytes as they are: DVC 3 does not normalise line ends
    spec = workdir / "csv.yaml"
    spec.write_text(SPEC.format(extra="").replace("path: data/iris.npz", f"path: table.csv, target: label, md5: {recorded}"))
    assert main(["run", str(spec), "--no-track"]) == 0


def test_a_revision_reads_the_committed_version_and_the_local_remote_works_offline(workdir: Path) -> None:
    git_init(workdir)
    remote = workdir.parent / "remote"
    assert main(["data", "add", "iris", "--remote", str(remote)]) == 0
    data = workdir / "data" / "iris.npz"
    v1 = md5(data)
    commit_all(workdir, "data v1")
    git("tag", "v1", cwd=workdir)
    change_iris(data)
    assert main(["data", "add", "data/iris.npz"]) == 0
    v2 = md5(data)
    commit_all(workdir, "data v2")
    assert v1 != v2

    # rev: v1 reads v1 through dvc.api although the working tree holds v2, and records v1.
    spec = load_spec(write_spec(workdir, f", md5: {v1}, rev: v1"))
    prepared = prepare(spec)
    [read] = file_records.records(prepared.table, spec.data.dataset)
    assert (read.path, read.md5, read.rev) == ("data/iris.npz", v1, "v1")
    assert main(["run", str(write_spec(workdir, f", md5: {v2}, rev: v1", "wrong.yaml")), "--no-track"]) == 2
    assert main(["run", str(write_spec(workdir, ", rev: no-such-tag", "norev.yaml")), "--no-track"]) == 2

    # push to the default (local directory) remote; lose the data and the cache; pull it back.
    from dvc.repo import Repo

    with Repo(str(workdir)) as repo:
        assert repo.push() >= 1
    shutil.rmtree(workdir / ".dvc" / "cache")
    data.unlink()
    with Repo(str(workdir)) as repo:
        repo.pull()
    assert md5(data) == v2


@pytest.mark.parametrize(
    "dataset,message",
    [
        ("path: x.csv", "a CSV file needs `target`"),
        ("path: data/iris.npz, md5: nothex", "data.dataset.md5: String should match pattern"),
        ("path: data/iris.npz, target: y", "`target`, `features` and `task` are for CSV and Parquet files"),
        ("path: data/iris.txt", "the file must end in one of .npz, .csv, .parquet, .pq"),
    ],
)
def test_dvc_dataset_params_are_checked_with_the_spec(tmp_path: Path, dataset: str, message: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.format(extra="").replace("path: data/iris.npz", dataset))
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    assert message in error.value.render() and f"{spec}:4:" in error.value.render()  # located in the file


def test_data_commands_refuse_unknown_names_and_file_datasets(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "materialize", "irsi"]) == 2
    assert "Did you mean 'iris'?" in capsys.readouterr().err
    assert main(["data", "add", "irsi"]) == 2
    assert "neither a registered dataset nor an existing file" in capsys.readouterr().err
    assert main(["data", "materialize", "file"]) == 2
    assert "reads a file" in capsys.readouterr().err
    assert main(["data", "materialize", "iris", "--set", "n=3"]) == 2
    assert "Extra inputs are not permitted" in capsys.readouterr().err
    assert not (workdir / ".dvc").exists()


def test_an_image_folder_run_records_the_md5_dvc_gives_the_folder(
    workdir: Path, migrated_tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    git_init(workdir)
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (workdir / "images" / label).mkdir(parents=True)
        for i in range(6):
            Image.fromarray((rng.random((8, 8)) * 255).astype("uint8")).save(workdir / "images" / label / f"{i}.png")
    assert main(["data", "add", "images", "--remote", str(workdir.parent / "remote")]) == 0
    assert "dataset: {type: image_folder, path: images}" in capsys.readouterr().out
    recorded = dvc_recorded_md5(workdir / "images.dvc")
    assert recorded.endswith(".dir")
    spec = workdir / "images.yaml"
    spec.write_text(
        "name: images\nseed: 0\ndata:\n  dataset: {type: image_folder, path: images, size: [8, 8], mode: L}\n"
        "  transforms: [flatten, standardize]\n  split: {test: 0.25, stratify: true}\n"
        "model: softmax\nloss: cross_entropy\noptimizer: {type: sgd, lr: 0.1}\ntrain: {epochs: 1, batch_size: full}\n"
    )
    assert main(["run", str(spec), "--tracking-uri", migrated_tracking_uri]) == 0
    client = MlflowClient(migrated_tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("images").experiment_id])
    assert run.data.tags[file_records.tag_key("images")] == recorded
