"""Dataset loaders, on small files written here in the formats torchvision reads."""

import math
import pickle
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import phenotypes as ph


def write_idx(path, array: np.ndarray) -> None:
    """MNIST's IDX format: magic (0, 0, type 0x08 = ubyte, ndim), big-endian sizes, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root, folder: str, rng, n_train=60, n_test=20) -> None:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")]
)
def test_mnist_style_loaders(tmp_path, name, folder):
    write_mnist(tmp_path, folder, np.random.default_rng(0))
    data = ph.load_dataset(name, tmp_path)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert data.sizes() == {"train": 54, "val": 6, "test": 20}
    assert abs(float(data.x_train.mean())) < 1e-4  # normalised with the training statistics
    assert data.augment == "translate"  # shifted digits and garments stay what they are


def test_the_bundled_digits_train_without_augmentation():
    # At 8x8 a one-pixel shift is an eighth of the image: translate cost test accuracy there.
    assert ph.load_dataset("digits").augment == "none"


def write_cifar(root, hundred: bool, rng, per_batch=20) -> None:
    """CIFAR's python pickles: rows of 3072 uint8 (R, G, B planes) and label lists."""
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    key = "fine_labels" if hundred else "labels"
    classes = 100 if hundred else 10
    names = ["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    for name in [*names, "test" if hundred else "test_batch"]:
        batch = {
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            key: [int(v) for v in rng.integers(0, classes, per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = (
        {"fine_label_names": [f"c{i}" for i in range(100)]}
        if hundred
        else {"label_names": [f"c{i}" for i in range(10)]}
    )
    (folder / ("meta" if hundred else "batches.meta")).write_bytes(pickle.dumps(meta))


@pytest.mark.parametrize("hundred", [False, True])
def test_cifar_loaders(tmp_path, monkeypatch, hundred):
    # The files are real CIFAR pickles but not the published ones, so their MD5 sums differ;
    # torchvision's own tests stub the checksum the same way. Everything else is real.
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(
        cifar, "check_integrity", lambda path, md5=None: __import__("os").path.isfile(path)
    )
    write_cifar(tmp_path, hundred, np.random.default_rng(1))
    data = ph.load_dataset("cifar100" if hundred else "cifar10", tmp_path)
    assert data.input_shape == (3, 32, 32)
    assert data.num_classes == (100 if hundred else 10)
    assert data.augment == "crop-flip"
    assert data.sizes()["test"] == 20
    assert data.sizes()["train"] + data.sizes()["val"] == (20 if hundred else 100)


def test_missing_torchvision_dataset_says_where_and_how(tmp_path):
    with pytest.raises(ph.DatasetError) as info:
        ph.load_dataset("cifar10", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in message and "--download" in message


@pytest.mark.parametrize("layout", ["nhwc", "nchw", "nhw"])
def test_npz_loader(tmp_path, layout):
    rng = np.random.default_rng(2)
    shape = {"nhwc": (40, 6, 6, 3), "nchw": (40, 3, 6, 6), "nhw": (40, 6, 6)}[layout]
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    if layout == "nchw":
        x = x.astype(np.float32) / 255
    y = np.arange(40) % 4
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:10], y_test=y[:10], x_val=x[:8], y_val=y[:8])
    data = ph.load_dataset(str(path))
    assert data.input_shape == ((1, 6, 6) if layout == "nhw" else (3, 6, 6))
    assert data.sizes() == {"train": 40, "val": 8, "test": 10}
    assert data.num_classes == 4


def test_npz_errors_name_the_problem(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((4, 2, 2)), y_train=np.zeros(4))
    with pytest.raises(ph.DatasetError, match="missing arrays x_test, y_test"):
        ph.load_dataset(f"npz:{path}")
    with pytest.raises(ph.DatasetError, match=r"no such \.npz file"):
        ph.load_dataset(str(tmp_path / "absent.npz"))


def write_images(folder, classes=("cat", "dog"), per_class=6, size=(10, 12)) -> None:
    rng = np.random.default_rng(3)
    for name in classes:
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")


def test_imagefolder_with_train_and_test(tmp_path):
    write_images(tmp_path / "train")
    write_images(tmp_path / "test", per_class=2)
    data = ph.load_dataset(f"imagefolder:{tmp_path}")
    assert data.input_shape == (3, 10, 12) and data.num_classes == 2
    assert data.sizes()["test"] == 4


def test_imagefolder_single_tree_is_split(tmp_path):
    write_images(tmp_path, per_class=10)
    data = ph.load_dataset(str(tmp_path))
    assert sum(data.sizes().values()) == 20 and data.sizes()["test"] == 4


def test_digits_and_fake():
    digits = ph.load_dataset("digits")
    assert digits.input_shape == (1, 8, 8) and sum(digits.sizes().values()) == 1797
    fake = ph.load_dataset("fake:1,5,7,50")
    assert fake.input_shape == (1, 5, 7) and fake.sizes()["train"] + fake.sizes()["val"] == 50


@pytest.mark.parametrize("name", ["nope", "fake:3,x,3", "fake:2,8,8"])
def test_unknown_or_malformed_names(name):
    with pytest.raises(ph.DatasetError):
        ph.load_dataset(name)


def write_npz(path, n=(20, 8, 10), shape=(6, 6, 3), **changes) -> str:
    """A valid .npz of n = (train, val, test) images of ``shape``, with ``changes`` applied
    (an array, or None to leave it out)."""
    rng = np.random.default_rng(4)
    arrays = {}
    for split, size in zip(("train", "val", "test"), n, strict=True):
        arrays[f"x_{split}"] = rng.integers(0, 256, (size, *shape), dtype=np.uint8)
        arrays[f"y_{split}"] = np.arange(size) % 4
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return str(path)


def test_npz_labels_of_shape_n_by_1_are_labels_in_every_split(tmp_path):
    labels = {
        f"y_{s}": (np.arange(n) % 4)[:, None] for s, n in (("train", 20), ("val", 8), ("test", 10))
    }
    data = ph.load_dataset(write_npz(tmp_path / "d.npz", **labels))
    for y in (data.y_train, data.y_val, data.y_test):
        assert y.ndim == 1 and y.dtype == torch.int64
    assert data.sizes() == {"train": 20, "val": 8, "test": 10} and data.num_classes == 4


def test_npz_float_labels_holding_integers_are_labels(tmp_path):
    data = ph.load_dataset(write_npz(tmp_path / "d.npz", y_val=np.arange(8.0) % 4))
    assert data.y_val.dtype == torch.int64 and data.y_val.tolist() == [0, 1, 2, 3] * 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"y_val": np.zeros((8, 2), int)}, "y_val: must be one label per image"),
        ({"y_test": np.zeros((10, 1, 1), int)}, "y_test: must be one label per image"),
        ({"y_train": np.arange(20) % 4 + 0.5}, "y_train: labels must be whole numbers"),
        ({"y_val": np.array([0, 1, 2, 3, 0, 1, 2, np.nan])}, "y_val: labels must be whole numbers"),
        ({"y_test": np.arange(10) - 1}, "y_test: labels must be class indices >= 0, got -1"),
        ({"y_val": np.array(["a"] * 8)}, "y_val: labels must be integers"),
        ({"y_val": np.arange(7) % 4}, "y_val: 7 labels for the 8 images of x_val"),
        ({"y_train": np.arange(21) % 4}, "y_train: 21 labels for the 20 images of x_train"),
        ({"x_test": np.zeros((0, 6, 6, 3)), "y_test": np.zeros(0)}, "x_test: no images"),
        ({"x_val": np.zeros((0, 6, 6, 3)), "y_val": np.zeros(0)}, "x_val: no images"),
        ({"y_val": None}, "x_val without y_val"),
        ({"x_val": None}, "y_val without x_val"),
        ({"x_train": np.zeros((20, 6, 6, 3, 1))}, "x_train: images must be NHW, NHWC or NCHW"),
        ({"x_val": np.zeros((8, 5, 5, 3))}, "x_val: images of shape (3, 5, 5) differ from"),
        ({"x_test": np.array([["a"]] * 10)}, "x_test: images must be numbers"),
        ({"x_val": np.full((8, 6, 6, 3), np.nan)}, "x_val: images hold NaN or infinite values"),
        ({"x_test": np.full((10, 6, 6, 3), 1e300)}, "x_test: values too large to normalise"),
        (
            {"x_train": np.arange(2160, dtype=np.float32).reshape(20, 6, 6, 3) * 1e20},
            "x_train: values too large to normalise",
        ),
        (
            {"y_train": np.zeros(20), "y_val": np.zeros(8), "y_test": np.zeros(10)},
            "labels: every label is 0",
        ),
    ],
)
def test_npz_arrays_that_mean_nothing_are_named(tmp_path, changes, message):
    path = write_npz(tmp_path / "bad.npz", **changes)
    with pytest.raises(ph.DatasetError) as info:
        ph.load_dataset(path)
    assert str(info.value).startswith(f"{path}: {message}"), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("train", [0, 1])
def test_npz_training_splits_too_small_to_split_are_named(tmp_path, train):
    path = write_npz(tmp_path / "small.npz", n=(train, 8, 10), x_val=None, y_val=None)
    with pytest.raises(ph.DatasetError) as info:
        ph.load_dataset(path)
    assert str(info.value).startswith(f"{path}: x_train: "), str(info.value)


def test_npz_layout_ambiguity_is_refused_and_resolved_by_a_layout_entry(tmp_path):
    # 4x4 RGB images, NHWC: axis 1 (4) could be channels as well as axis 3 (3).
    path = write_npz(tmp_path / "small.npz", shape=(4, 4, 3))
    with pytest.raises(ph.DatasetError) as info:
        ph.load_dataset(path)
    message = str(info.value)
    assert (
        message.startswith(f"{path}: x_train: cannot tell NCHW from NHWC") and "layout" in message
    )
    nhwc = ph.load_dataset(
        write_npz(tmp_path / "nhwc.npz", shape=(4, 4, 3), layout=np.array("NHWC"))
    )
    assert nhwc.input_shape == (3, 4, 4)
    nchw = ph.load_dataset(
        write_npz(tmp_path / "nchw.npz", shape=(3, 4, 4), layout=np.array("NCHW"))
    )
    assert nchw.input_shape == (3, 4, 4)
    # An explicit layout also takes channel counts the guess never would.
    many = ph.load_dataset(write_npz(tmp_path / "c6.npz", shape=(8, 8, 6), layout=np.array("NHWC")))
    assert many.input_shape == (6, 8, 8)


@pytest.mark.parametrize("layout", [np.array("CHW"), np.array(["NCHW", "NHWC"]), np.array(3)])
def test_npz_layout_must_name_one_layout(tmp_path, layout):
    path = write_npz(tmp_path / "d.npz", layout=layout)
    with pytest.raises(ph.DatasetError, match=r"layout: must be 'NCHW' or 'NHWC'"):
        ph.load_dataset(path)


def _broken(draw, key: str, arrays: dict):
    """Another value for ``key``: None (left out) or an array that breaks some rule."""
    if key == "layout":
        return draw(st.sampled_from(["NCHW", "NHWC", "nhwc", "CHW", 3, ["NCHW"], None]))
    array = arrays.get(key, np.zeros(0))
    if key.startswith("y"):
        edits = [
            lambda y: y[:, None],
            lambda y: np.stack([y, y], 1),
            lambda y: y + 0.5,
            lambda y: y * 1.0,
            lambda y: y - 1,
            lambda y: y + 2**40,
            lambda y: np.where(np.arange(len(y)) == 0, np.nan, y),
            lambda y: y[:-1],
            lambda y: np.append(y, 0),
            lambda y: y[:0],
            lambda y: y.astype(str),
            lambda y: y.astype(bool),
            lambda y: np.zeros_like(y),
            lambda y: y.astype(np.uint64),
        ]
    else:
        edits = [
            lambda x: x[:0],
            lambda x: x[:-1],
            lambda x: x[..., None],
            lambda x: x[:, 0],
            lambda x: x.reshape(len(x), math.prod(x.shape[1:])),
            lambda x: np.swapaxes(x, 1, -1),
            lambda x: np.where(x > 3, np.inf, x),
            lambda x: np.full(x.shape, np.nan),
            lambda x: x.astype(str),
            lambda x: x.astype(np.float64) * 1e300,
        ]
    if draw(st.integers(0, len(edits))) == len(edits):
        return None
    return draw(st.sampled_from(edits))(array)


@st.composite
def npz_files(draw) -> dict:
    """The arrays of an .npz: a valid dataset of any layout, then some arrays broken."""
    # Empty splits, one class and the like come from the breakages below.
    sizes = {"train": draw(st.integers(1, 12)), "val": draw(st.integers(0, 5))}
    sizes["test"] = draw(st.integers(1, 5))
    shape = draw(
        st.sampled_from([(5, 5, 3), (3, 5, 5), (5, 5), (4, 4, 3), (3, 4, 4), (2, 6), (5, 5, 7)])
    )
    dtype = draw(st.sampled_from([np.uint8, np.float32, np.int16, np.bool_]))
    classes = draw(st.integers(2, 4))
    arrays = {}
    for split, n in sizes.items():
        if split == "val" and n == 0:
            continue  # split off x_train
        arrays[f"x_{split}"] = (
            (np.arange(n * math.prod(shape)) % 7).astype(dtype).reshape(n, *shape)
        )
        arrays[f"y_{split}"] = np.arange(n) % classes
    keys = [*arrays, "layout"]
    for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
        arrays[key] = _broken(draw, key, arrays)
    return {k: np.asarray(v) for k, v in arrays.items() if v is not None}


@settings(max_examples=300)
@given(npz_files())
def test_npz_files_load_consistent_or_fail_in_one_line(arrays):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.npz"
        np.savez(path, **arrays)
        try:
            data = ph.load_dataset(str(path))
        except ph.DatasetError as exc:
            message = str(exc)
            assert message.startswith(f"{path}: ") and "\n" not in message, message
            return
    assert data.num_classes >= 2
    for split, n in data.sizes().items():
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        assert y.ndim == 1 and y.dtype == torch.int64 and len(x) == n > 0
        assert 0 <= int(y.min()) and int(y.max()) < data.num_classes
        assert x.dtype == torch.float32 and tuple(x.shape[1:]) == data.input_shape
        assert torch.isfinite(x).all()
