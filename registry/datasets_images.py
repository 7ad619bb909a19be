"""Image datasets from files: Fashion-MNIST and MNIST (IDX), NPZ arrays, a folder per class.

Images load as float32 pixels in their stored range (0..255 for 8-bit files) shaped
``(n, C, H, W)``; a spec rescales with ``transforms: [{type: scale, factor: 0.00392156862745098}]``
and flattens for a dense model with ``transforms: [flatten]``. ``limit``/``test_limit`` take
a seeded random subset, so tests and CI train on a few thousand rows of the same files.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from registry import _npz
from registry._registry import Params
from registry._task import Task
from registry.datasets import DATASETS, Table

if TYPE_CHECKING:
    import numpy as np

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class SubsetParams(Params):
    """A seeded random subset of the rows, for quick runs on big files."""

    limit: int | None = Field(None, ge=1, description="Keep this many training rows (a seeded random subset); default: all.")
    test_limit: int | None = Field(None, ge=1, description="Keep this many official test rows; default: all.")
    subset_seed: int = Field(0, ge=0, description="Seed of the subset draw (independent of the spec's seed).")


def subset(x: np.ndarray, y: np.ndarray, limit: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``limit`` rows drawn without replacement by ``seed``, kept in file order."""
    import numpy as np

    if limit is None or limit >= len(y):
        return x, y
    rows = np.sort(np.random.default_rng(seed).permutation(len(y))[:limit])
    return x[rows], y[rows]


def _limited(table: Table, params: SubsetParams) -> Table:
    table.x, table.y = subset(table.x, table.y, params.limit, params.subset_seed)
    if table.test is not None:
        table.test = subset(*table.test, params.test_limit, params.subset_seed + 1)
    return table


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (the MNIST file format: magic, dims, big-endian data), gzip or raw."""
    import numpy as np

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        content = stream.read()
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim = content[3]
    dims = [int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(content, dtype=_IDX_TYPES[content[2]], offset=4 + 4 * ndim)
    return data.reshape(dims)


def _find(directory: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx")):  # t10k-images.idx3-ubyte too
        if (directory / name).exists():
            return directory / name
    return None


def _idx_pair(directory: Path, prefix: str, how_to_get: str) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    import numpy as np

    images, labels = _find(directory, f"{prefix}-images-idx3-ubyte"), _find(directory, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        raise FileNotFoundError(f"{directory} lacks {prefix}-images-idx3-ubyte(.gz) and {prefix}-labels-idx1-ubyte(.gz); {how_to_get}")
    x = read_idx(images).astype(np.float32)
    return x.reshape(len(x), 1, *x.shape[1:]), read_idx(labels).astype(np.int64), [images, labels]


def _idx_dataset(directory: Path, how_to_get: str, classes: list[str]) -> Table:
    x, y, files = _idx_pair(directory, "train", how_to_get)
    x_test, y_test, test_files = _idx_pair(directory, "t10k", how_to_get)
    task = Task("multiclass", n_classes=len(classes))
    return Table(x, y, task, [], classes, (x_test, y_test), files + test_files)


class FashionParams(SubsetParams):
    directory: Path = Field(Path("/usr/share/datasets/fashion-mnist"), description="Folder of the four IDX files (gz or raw).")


@DATASETS.register("fashion_mnist", params=FashionParams, task="multiclass")
def fashion_mnist(params: FashionParams) -> Table:
    """Zalando's Fashion-MNIST: 60,000 + 10,000 official test 28x28 grey images, 10 classes (Xiao et al. 2017)."""
    how = "install them with `apt-get install dataset-fashion-mnist` or set data.dataset.directory"
    return _limited(_idx_dataset(params.directory, how, FASHION_CLASSES), params)


class MnistParams(SubsetParams):
    directory: Path = Field(Path("/usr/share/datasets/mnist"), description="Folder of the four IDX files (gz or raw).")


@DATASETS.register("mnist", params=MnistParams, task="multiclass")
def mnist(params: MnistParams) -> Table:
    """LeCun's MNIST digits: 60,000 + 10,000 official test 28x28 grey images, 10 classes (the book's Tables 2.1, 3.1)."""
    how = (
        "copy the four MNIST IDX files (train-images-idx3-ubyte.gz, ...) from the MNIST distribution "
        "there, or set data.dataset.directory to where they are"
    )
    return _limited(_idx_dataset(params.directory, how, [str(d) for d in range(10)]), params)


class NpzParams(SubsetParams):
    path: Path = Field(..., description="An .npz with arrays x and y (and optionally x_test, y_test), as np.savez or `runner data` writes.")


@DATASETS.register("npz", params=NpzParams, task="any")
def npz(params: NpzParams) -> Table:
    """Arrays from an NPZ file: x (n, ...) features of any shape, y targets; x_test/y_test an official test part."""
    if not params.path.exists():
        raise FileNotFoundError(f"data file {params.path} does not exist")
    table = _npz.read(params.path, str(params.path))
    table.x = table.x.astype("float32", copy=False)
    if table.test is not None:
        table.test = (table.test[0].astype("float32", copy=False), table.test[1])
    table.files = [params.path]
    return _limited(table, params)


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class ImageFolderParams(SubsetParams):
    path: Path = Field(..., description="A folder with one sub-folder of images per class (the class name is the folder's).")
    size: tuple[int, int] | None = Field(None, description="Resize every image to (height, width); default: all must share one size.")
    mode: Literal["L", "RGB"] = Field("RGB", description="L: one grey channel; RGB: three channels.")


@DATASETS.register("image_folder", params=ImageFolderParams, task="multiclass")
def image_folder(params: ImageFolderParams) -> Table:
    """Images in ``path/<class>/*.png`` (torchvision's ImageFolder layout), read with Pillow, classes sorted by name."""
    import numpy as np
    from PIL import Image

    if not params.path.is_dir():
        raise FileNotFoundError(f"image folder {params.path} does not exist")
    classes = sorted(d.name for d in params.path.iterdir() if d.is_dir())
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        for file in sorted((params.path / name).iterdir()):
            if file.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            with Image.open(file) as image:
                image = image.convert(params.mode)
                if params.size is not None:
                    image = image.resize((params.size[1], params.size[0]))
                pixels = np.asarray(image, dtype=np.float32)
            images.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
            labels.append(label)
    if not images:
        raise ValueError(f"{params.path}: no images in class sub-folders (looked for {', '.join(sorted(_IMAGE_SUFFIXES))})")
    shapes = {i.shape for i in images}
    if len(shapes) > 1:
        raise ValueError(f"{params.path}: images differ in size ({sorted(shapes)[:3]}...); set `size: [H, W]`")
    task = Task("binary" if len(classes) == 2 else "multiclass", n_classes=len(classes))
    table = Table(np.stack(images), np.asarray(labels, dtype=np.int64), task, [], classes, files=[params.path])
    return _limited(table, params)
