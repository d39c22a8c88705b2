"""Dataset loaders, on small files written here in the formats torchvision reads."""

import pickle
import struct

import numpy as np
import pytest
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
    assert data.augment is True
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
