"""Image datasets (IDX, NPZ, image folder), shape transforms, augmentations, reconstruction targets."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import registry
from registry.datasets_images import read_idx
from runner.cli import main
from tests.registry.test_components import build

FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as the MNIST distribution writes it (uint8), gzip when the name ends in .gz."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    content = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)


def fake_mnist(directory: Path, n: int = 40, n_test: int = 10, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    images, labels = rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10
    write_idx(directory / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(directory / f"train-labels-idx1-ubyte{suffix}", labels)
    write_idx(directory / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(directory / f"t10k-labels-idx1-ubyte{suffix}", np.arange(n_test) % 10)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_files_gz_or_raw(tmp_path: Path, gz: bool) -> None:
    images, labels = fake_mnist(tmp_path, gz=gz)
    table = build(registry.DATASETS, {"type": "mnist", "directory": str(tmp_path)})
    assert table.x.shape == (40, 1, 28, 28) and table.x.dtype == np.float32
    np.testing.assert_array_equal(table.x[:, 0], images)
    np.testing.assert_array_equal(table.y, labels)
    assert table.test is not None and table.test[0].shape == (10, 1, 28, 28)
    assert table.task.n_classes == 10


def test_subset_is_seeded_and_limits_both_parts(tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    spec = {"type": "mnist", "directory": str(tmp_path), "limit": 12, "test_limit": 4}
    first, again = build(registry.DATASETS, spec), build(registry.DATASETS, spec)
    assert first.x.shape[0] == 12 and first.test[0].shape[0] == 4
    np.testing.assert_array_equal(first.x, again.x)
    other = build(registry.DATASETS, {**spec, "subset_seed": 1})
    assert not np.array_equal(first.y, other.y)


def test_missing_files_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        build(registry.DATASETS, {"type": "fashion_mnist", "directory": str(tmp_path)})


def test_not_an_idx_file(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ValueError, match="not an IDX"):
        read_idx(tmp_path / "x")


@pytest.mark.skipif(not FASHION.exists(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_official_split_and_balanced_classes() -> None:
    table = build(registry.DATASETS, {"type": "fashion_mnist", "limit": 100, "test_limit": 50})
    assert table.x.shape == (100, 1, 28, 28) and table.test[0].shape == (50, 1, 28, 28)
    full_labels = read_idx(FASHION / "t10k-labels-idx1-ubyte.gz")
    assert len(full_labels) == 10_000 and np.bincount(full_labels).tolist() == [1000] * 10
    assert table.class_names[0] == "T-shirt/top" and float(table.x.max()) <= 255


def test_npz_dataset_keeps_image_shape(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((20, 3, 4, 4)).astype(np.float64)
    np.savez(tmp_path / "a.npz", x=x, y=np.arange(20) % 2, x_test=x[:5], y_test=np.zeros(5, dtype=np.int64))
    table = build(registry.DATASETS, {"type": "npz", "path": str(tmp_path / "a.npz"), "limit": 10})
    assert table.x.shape == (10, 3, 4, 4) and table.x.dtype == np.float32
    assert table.task.kind == "binary" and table.test[0].shape == (5, 3, 4, 4)


def test_image_folder_reads_one_class_per_folder(tmp_path: Path) -> None:
    from PIL import Image

    for label, name in enumerate(["cat", "dog"]):
        (tmp_path / name).mkdir()
        for i in range(3):
            pixels = np.full((5, 6, 3), 40 * label + i, dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    table = build(registry.DATASETS, {"type": "image_folder", "path": str(tmp_path)})
    assert table.x.shape == (6, 3, 5, 6) and table.class_names == ["cat", "dog"]
    assert table.y.tolist() == [0, 0, 0, 1, 1, 1] and table.x[4, 0, 0, 0] == 41
    grey = build(registry.DATASETS, {"type": "image_folder", "path": str(tmp_path), "mode": "L", "size": [2, 3]})
    assert grey.x.shape == (6, 1, 2, 3)


# -- transforms ------------------------------------------------------------------------------


def test_flatten_and_reshape_round_trip() -> None:
    x = np.arange(2 * 1 * 3 * 4, dtype=np.float32).reshape(2, 1, 3, 4)
    flat = build(registry.TRANSFORMS, "flatten").fit_transform(x)
    np.testing.assert_array_equal(flat, x.reshape(2, 12))
    back = build(registry.TRANSFORMS, {"type": "reshape", "shape": [1, 3, 4]}).fit_transform(flat)
    np.testing.assert_array_equal(back, x)


def test_one_hot_matches_pandas_dummies() -> None:
    import pandas as pd

    x = np.array([[0, 1.5], [2, 2.5], [1, 3.5], [2, 4.5]], dtype=np.float32)
    encoded = build(registry.TRANSFORMS, {"type": "one_hot", "columns": [0]}).fit_transform(x)
    expected = np.column_stack([pd.get_dummies(x[:, 0]).to_numpy(dtype=np.float32), x[:, 1]])
    np.testing.assert_array_equal(encoded, expected)
    dropped = build(registry.TRANSFORMS, {"type": "one_hot", "columns": [0], "drop_first": True}).fit_transform(x)
    assert dropped.shape == (4, 3)


# -- augmentations ---------------------------------------------------------------------------


def test_flips_match_torch_flip() -> None:
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).reshape(2, 1, 2, 3)
    assert torch.equal(build(registry.AUGMENTATIONS, {"type": "hflip", "p": 1.0})(x), x.flip(-1))
    assert torch.equal(build(registry.AUGMENTATIONS, {"type": "vflip", "p": 1.0})(x), x.flip(-2))
    assert torch.equal(build(registry.AUGMENTATIONS, {"type": "hflip", "p": 0.0})(x), x)


def test_crop_is_a_translation_of_the_zero_padded_image() -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 2, 5, 5) + 1
    out = build(registry.AUGMENTATIONS, {"type": "crop", "padding": 2})(x)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for image, source in zip(out, padded):
        windows = [source[:, i : i + 5, j : j + 5] for i in range(5) for j in range(5)]
        assert any(torch.equal(image, w) for w in windows)


def test_rotation_by_a_right_angle_bound_is_small_and_keeps_the_centre() -> None:
    torch.manual_seed(0)
    x = torch.zeros(4, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    out = build(registry.AUGMENTATIONS, {"type": "rotate", "degrees": 10})(x)
    assert out.shape == x.shape and torch.allclose(out[:, :, 4, 4], torch.ones(4, 1), atol=0.2)


def tiny_image_spec(tmp_path: Path, extra: str) -> Path:
    fake_mnist(tmp_path, n=60, n_test=20)
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""\
name: images
seed: 0
data:
  dataset: {{type: mnist, directory: {tmp_path}}}
  transforms: [{{type: scale, factor: 0.00392156862745098}}]
  split: {{test: official}}
{extra}
loss: cross_entropy
optimizer: {{type: adam, lr: 0.01}}
train: {{epochs: 2, batch_size: 16}}
metrics: [accuracy]
""")
    return spec


@pytest.mark.slow
def test_augmented_training_runs_and_is_reproducible(tmp_path: Path, workdir: Path) -> None:
    spec = tiny_image_spec(
        tmp_path, "  augment: [hflip, {type: crop, padding: 2}, {type: rotate, degrees: 5}]\nmodel: {type: mlp, hidden: [8]}"
    )
    outs = []
    for i in range(2):
        out = workdir / f"m{i}.json"
        assert main(["run", str(spec), "--no-track", "--metrics-out", str(out)]) == 0
        outs.append(json.loads(out.read_text()))
    assert outs[0] == outs[1]


def test_augment_on_flat_inputs_is_refused_with_advice(tmp_path: Path, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tiny_image_spec(tmp_path, "  augment: [hflip]\nmodel: {type: mlp, hidden: [8]}")
    text = spec.read_text().replace("transforms: [", "transforms: [flatten, ")
    spec.write_text(text)
    assert main(["run", str(spec), "--no-track"]) == 1
    assert "reshape them to images" in capsys.readouterr().err
    with pytest.raises(ValueError, match="reshape them to images"):
        main(["--debug", "run", str(spec), "--no-track"])


@pytest.mark.slow
def test_target_input_trains_a_reconstruction(tmp_path: Path, workdir: Path) -> None:
    spec = tiny_image_spec(tmp_path, "  target: input\nmodel: {type: mlp, hidden: [8]}")
    text = spec.read_text().replace("loss: cross_entropy", "loss: mse").replace("[accuracy]", "[mse]")
    text = text.replace("transforms: [", "transforms: [flatten, ")
    spec.write_text(text)
    out = workdir / "m.json"
    assert main(["run", str(spec), "--no-track", "--metrics-out", str(out)]) == 0
    assert "test/mse" in json.loads(out.read_text())


def test_expect_may_bound_best_epoch_only_under_early_stopping(write_spec) -> None:  # type: ignore[no-untyped-def]
    from runner.spec import SpecError, load_spec
    from tests.conftest import TINY_SPEC

    expect = "expect: {source: a book, metrics: {best_epoch: {max: 150}, epochs: {min: 1}}}\n"
    with pytest.raises(SpecError, match="best_epoch"):
        load_spec(write_spec(TINY_SPEC + expect))
    stopping = TINY_SPEC.replace("train: {epochs: 3, batch_size: 64}", "train: {epochs: 3, batch_size: 64, early_stopping: {patience: 2}}")
    assert load_spec(write_spec(stopping + expect)).expect is not None


def test_augmentation_and_vae_fall_back_from_batched_fold_training(write_spec) -> None:  # type: ignore[no-untyped-def]
    from runner.spec import load_spec
    from runner.training.batched import spec_reason
    from tests.conftest import TINY_SPEC

    assert spec_reason(load_spec(write_spec(TINY_SPEC))) is None
    augmented = TINY_SPEC.replace("  split:", "  augment: [hflip]\n  split:")
    assert "augment" in (spec_reason(load_spec(write_spec(augmented))) or "")
