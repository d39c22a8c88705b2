"""Datasets as in-memory tensors with train, validation and test splits.

Fitness uses the validation split only; the test split is for reporting. Images are float32,
normalised per channel with the training split's mean and standard deviation.

Names ``load_dataset`` understands:

- ``digits``: scikit-learn's bundled 8x8 digits (no download, the embedded default);
- ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``: read by torchvision from ``data_dir``
  (fetched only with ``download=True``);
- ``fake:C,H,W`` or ``fake:C,H,W,N``: torchvision ``FakeData`` with N training images (1000);
- ``PATH.npz`` or ``npz:PATH``: arrays ``x_train y_train x_test y_test`` (optional ``x_val y_val``),
  NHWC or NCHW (or NHW), uint8 (scaled by 1/255) or float; labels are class indices >= 0, one
  per image (shape N or N x 1), integers or floats holding integers. The channel axis is the
  one of axes 1 and 3 that is 1-4 long; when both are (4x4 RGB images, say), or for more
  channels, an optional ``layout`` entry, a string array ``"NCHW"`` or ``"NHWC"``
  (``np.savez(..., layout="NHWC")``), says which for every x array;
- ``imagefolder:DIR`` or a directory: torchvision ``ImageFolder``, with ``train/`` and ``test/``
  (optional ``val/``) sub-folders or one class-per-folder tree that is split here. Images are
  resized to the size of the first one.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import numpy as np
import torch


class DatasetError(Exception):
    """A dataset cannot be found or read; the message says where and what to do."""


#: The augmentations a dataset can ask for: ``crop-flip`` (random crop by padding and horizontal
#: flip: natural images), ``translate`` (small random shifts, never a flip: digits are not
#: mirror-symmetric) or ``none``.
AUGMENTATIONS = ("none", "crop-flip", "translate")


def augmentation_kind(value: bool | str) -> str:
    """An augmentation of :data:`AUGMENTATIONS`; a bool, as datasets took before there were
    kinds, is ``crop-flip`` (True) or ``none`` (False)."""
    if isinstance(value, bool):
        return "crop-flip" if value else "none"
    if value not in AUGMENTATIONS:
        raise ValueError(f"augment: must be one of {', '.join(AUGMENTATIONS)}, got {value!r}")
    return value


@attrs.frozen
class Dataset:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    #: The augmentation that suits this data (:data:`AUGMENTATIONS`): crop-flip for CIFAR,
    #: translate for digits, none where the kind of images is unknown. True and False, as
    #: before kinds, are crop-flip and none.
    augment: str = attrs.field(default="none", converter=augmentation_kind)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


TORCHVISION = {
    "mnist": ("MNIST", "MNIST/raw"),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST/raw"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py"),
    "cifar100": ("CIFAR100", "cifar-100-python"),
}
#: What ``augment = "auto"`` trains each with: flips suit natural images, and small shifts keep
#: a digit (or a garment, centred as digits are) what it is.
TORCHVISION_AUGMENT = {
    "mnist": "translate",
    "fashion-mnist": "translate",
    "cifar10": "crop-flip",
    "cifar100": "crop-flip",
}
NAMES = ("digits", *TORCHVISION, "fake:C,H,W[,N]", "PATH.npz", "imagefolder:DIR")
#: Values of an .npz's ``layout`` entry.
LAYOUTS = ("NCHW", "NHWC")


def _split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, where: str, part: str):
    """Stratified split of ``fraction`` of (x, y) off the rest (scikit-learn's) for ``part``."""
    from sklearn.model_selection import train_test_split

    n_test = int(np.ceil(fraction * len(y)))
    if n_test >= len(y):
        raise DatasetError(
            f"{where}: too few images ({len(y)}) to split {n_test} off for {part} and train"
            " on the rest"
        )
    _, counts = np.unique(y, return_counts=True)  # not bincount: a label may be large
    classes = len(counts)
    # Stratifying needs two images per class and room for every class on both sides.
    can_stratify = counts.min() >= 2 and classes <= min(n_test, len(y) - n_test)
    stratify = y if can_stratify else None
    return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=stratify)


def _to_nchw(x: np.ndarray, where: str, layout: str | None = None) -> np.ndarray:
    """NCHW images from NHW, or from NCHW or NHWC as ``layout`` says (None: the axis of 1-4
    channels, when only one of axes 1 and 3 can be it)."""
    if x.ndim == 3:
        return x[:, None]
    if x.ndim != 4:
        raise DatasetError(f"{where}: images must be NHW, NHWC or NCHW, got shape {x.shape}")
    if layout is not None:
        return x if layout == "NCHW" else x.transpose(0, 3, 1, 2)
    first, last = x.shape[1] <= 4, x.shape[3] <= 4
    if first and last:
        raise DatasetError(
            f"{where}: cannot tell NCHW from NHWC in shape {x.shape} (axes 1 and 3 could both"
            " hold 1-4 channels); say which with a layout entry in the .npz, 'NCHW' or 'NHWC'"
        )
    if first:
        return x
    if last:
        return x.transpose(0, 3, 1, 2)
    raise DatasetError(
        f"{where}: cannot tell the channel axis of shape {x.shape} (1-4 channels); say which"
        " with a layout entry in the .npz, 'NCHW' or 'NHWC'"
    )


def _layout(arrays: dict[str, np.ndarray], where: str) -> str | None:
    """The .npz's ``layout`` entry (None when there is none)."""
    if "layout" not in arrays:
        return None
    value = arrays["layout"]
    text = value.item() if value.shape == () and value.dtype.kind in "US" else None
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    if text not in LAYOUTS:
        got = (
            repr(text) if text is not None else f"an array of {value.dtype} of shape {value.shape}"
        )
        raise DatasetError(f"{where}: layout: must be 'NCHW' or 'NHWC' (one string), got {got}")
    return text


def _as_float(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    return x.astype(np.float32)


def _build(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray] | None,
    *,
    val_fraction: float,
    seed: int,
    augment: str = "none",
    num_classes: int | None = None,
    where: str | None = None,
) -> Dataset:
    """The Dataset of these splits; without ``val``, ``val_fraction`` of ``train`` (drawn by
    ``seed``). Errors start with ``where`` (``name``)."""
    where = where or name
    x_train, y_train = train
    y_train = np.asarray(y_train, dtype=np.int64)
    if val is None:
        x_train, x_val, y_train, y_val = _split(
            x_train, y_train, val_fraction, seed, f"{where}: x_train", "validation"
        )
    else:
        x_val, y_val = val
    images = (x_train, x_val, test[0])
    with np.errstate(over="ignore", invalid="ignore"):  # checked below
        arrays = [np.ascontiguousarray(_as_float(a)) for a in images]
        mean = arrays[0].mean(axis=(0, 2, 3), keepdims=True)
        std = arrays[0].std(axis=(0, 2, 3), keepdims=True) + 1e-6
        normalised = [(a - mean) / std for a in arrays]
    finite = [np.isfinite(a).all() for a in normalised]
    finite[0] = finite[0] and np.isfinite(std).all()  # an infinite spread zeroes every image
    for split, x, ok in zip(("train", "val", "test"), images, finite, strict=True):
        if not ok:
            raise DatasetError(
                f"{where}: x_{split}: values too large to normalise in float32 (largest"
                f" magnitude {float(np.abs(x).max()):g})"
            )
    xs = [torch.from_numpy(a) for a in normalised]
    ys = [torch.as_tensor(np.asarray(y, dtype=np.int64)) for y in (y_train, y_val, test[1])]
    classes = num_classes or int(max(int(y.max()) for y in ys if len(y)) + 1)
    return Dataset(name, xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], classes, augment)


def _digits(val_fraction: float, seed: int) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images[:, None] / 16.0).astype(np.float32)
    # The test split is fixed (seed 0) so that every run reports on the same images.
    x_rest, x_test, y_rest, y_test = _split(x, bunch.target, 0.2, 0, "digits", "the test split")
    return _build(
        "digits",
        (x_rest, y_rest),
        (x_test, y_test),
        None,
        val_fraction=val_fraction,
        seed=seed,
        num_classes=10,
        # Not translate: at 8x8 the smallest shift, one pixel, is an eighth of the image, and it
        # costs test accuracy (docs/benchmarks.md, "Training recipe").
        augment="none",
    )


def _torchvision(name: str, root: Path, download: bool, val_fraction: float, seed: int) -> Dataset:
    import torchvision.datasets as tvd

    cls_name, folder = TORCHVISION[name]
    cls = getattr(tvd, cls_name)
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except RuntimeError as exc:
        if "not found" not in str(exc).lower() and "corrupted" not in str(exc).lower():
            raise
        raise DatasetError(
            f"{name}: not found or incomplete in {root / folder}; pass --download to fetch it "
            f"there, or copy the {cls_name} files into that folder"
        ) from None
    except OSError as exc:  # no network while downloading
        raise DatasetError(f"{name}: could not download into {root / folder}: {exc}") from None

    def arrays(ds) -> tuple[np.ndarray, np.ndarray]:
        data = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
        targets = ds.targets.numpy() if isinstance(ds.targets, torch.Tensor) else ds.targets
        return _to_nchw(data, name), np.asarray(targets)

    return _build(
        name,
        arrays(train),
        arrays(test),
        None,
        val_fraction=val_fraction,
        seed=seed,
        augment=TORCHVISION_AUGMENT[name],
        num_classes=len(train.classes),
    )


def _fake(spec: str, val_fraction: float, seed: int) -> Dataset:
    from torchvision.datasets import FakeData
    from torchvision.transforms import PILToTensor

    try:
        numbers = [int(v) for v in spec.split(",")]
        if len(numbers) not in (3, 4) or min(numbers) < 1:
            raise ValueError
    except ValueError:
        raise DatasetError(
            f"fake:{spec}: expected fake:C,H,W or fake:C,H,W,N with positive integers"
        ) from None
    c, h, w, n = (*numbers, 1000)[:4]
    if c not in (1, 3):
        raise DatasetError(f"fake:{spec}: FakeData makes 1- or 3-channel images, got {c}")

    def make(size: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
        ds = FakeData(size, (c, h, w), 10, transform=PILToTensor(), random_offset=offset)
        items = [ds[i] for i in range(size)]
        return np.stack([x.numpy() for x, _ in items]), np.array([int(y) for _, y in items])

    n_test = max(n // 5, 10)
    return _build(
        f"fake:{spec}",
        make(n, 0),
        make(n_test, n),
        None,
        val_fraction=val_fraction,
        seed=seed,
        num_classes=10,
    )


def _labels(y: np.ndarray, name: str, where: str) -> np.ndarray:
    """``y`` as 1-D int64 class indices; otherwise DatasetError naming the array."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(
            f"{where}: {name}: must be one label per image (shape (N,) or (N, 1)),"
            f" got shape {y.shape}"
        )
    if y.dtype.kind not in "iuf":
        raise DatasetError(
            f"{where}: {name}: labels must be integers (class indices), got dtype {y.dtype}"
        )
    if y.dtype.kind == "f":
        # 3.0 is class 3; truncating 3.5 would be a guess.
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            raise DatasetError(
                f"{where}: {name}: labels must be whole numbers (class indices),"
                f" got {y[~whole][0].item()!r}"
            )
    if len(y) and y.min() < 0:
        raise DatasetError(
            f"{where}: {name}: labels must be class indices >= 0, got {y.min().item()!r}"
        )
    if y.dtype.kind in "uf" and len(y) and y.max() >= 2.0**63:  # the int64 cast would wrap
        raise DatasetError(
            f"{where}: {name}: labels must be class indices < 2**63, got {y.max().item()!r}"
        )
    return y.astype(np.int64)


def _images(x: np.ndarray, name: str, where: str, layout: str | None) -> np.ndarray:
    """``x`` as NCHW images; otherwise DatasetError naming the array."""
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"{where}: {name}: images must be numbers, got dtype {x.dtype}")
    x = _to_nchw(x, f"{where}: {name}", layout)
    if len(x) == 0:
        raise DatasetError(f"{where}: {name}: no images (every split needs at least one)")
    if min(x.shape[1:]) < 1:
        raise DatasetError(f"{where}: {name}: images of shape {x.shape[1:]} hold no pixels")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DatasetError(f"{where}: {name}: images hold NaN or infinite values")
    return x


def _npz(path: Path, val_fraction: float, seed: int) -> Dataset:
    if not path.is_file():
        raise DatasetError(f"{path}: no such .npz file")
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({exc})") from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise DatasetError(f"{path}: missing arrays {', '.join(missing)} (has {', '.join(arrays)})")
    for a, b in (("x_val", "y_val"), ("y_val", "x_val")):
        if a in arrays and b not in arrays:
            raise DatasetError(f"{path}: {a} without {b} (give both, or neither to split x_train)")
    layout = _layout(arrays, str(path))
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in ("train", "val", "test"):
        if f"x_{split}" not in arrays:
            continue
        x = _images(arrays[f"x_{split}"], f"x_{split}", str(path), layout)
        y = _labels(arrays[f"y_{split}"], f"y_{split}", str(path))
        if len(y) != len(x):
            raise DatasetError(
                f"{path}: y_{split}: {len(y)} labels for the {len(x)} images of x_{split}"
            )
        train_shape = splits["train"][0].shape[1:] if splits else x.shape[1:]
        if x.shape[1:] != train_shape:
            raise DatasetError(
                f"{path}: x_{split}: images of shape {x.shape[1:]} differ from x_train's"
                f" {train_shape}"
            )
        splits[split] = (x, y)
    if max(int(y.max()) for _, y in splits.values()) < 1:
        raise DatasetError(
            f"{path}: labels: every label is 0; a classifier needs 2 classes or more"
        )
    return _build(
        path.stem,
        splits["train"],
        splits["test"],
        splits.get("val"),
        val_fraction=val_fraction,
        seed=seed,
        where=str(path),
    )


def _imagefolder(root: Path, val_fraction: float, seed: int) -> Dataset:
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import PILToTensor, Resize

    if not root.is_dir():
        raise DatasetError(f"{root}: no such image folder")
    size: tuple[int, int] | None = None  # set by the first image loaded

    def load(folder: Path, classes: list[str] | None = None):
        nonlocal size
        try:
            ds = ImageFolder(str(folder))
        except (FileNotFoundError, RuntimeError) as exc:
            raise DatasetError(f"{folder}: {exc}") from None
        if classes is not None and ds.classes != classes:
            raise DatasetError(
                f"{folder}: classes {ds.classes} differ from the training classes {classes}"
            )
        images = []
        for path, _ in ds.samples:
            image = ds.loader(path).convert("RGB")
            if size is None:
                size = (image.height, image.width)
            images.append(PILToTensor()(Resize(size)(image)).numpy())
        return np.stack(images), np.array(ds.targets), ds.classes

    if (root / "train").is_dir():
        x, y, classes = load(root / "train")
        test_dir = root / "test" if (root / "test").is_dir() else None
        if test_dir is None:
            raise DatasetError(f"{root}: has train/ but no test/ folder")
        x_test, y_test, _ = load(test_dir, classes)
        val = load(root / "val", classes)[:2] if (root / "val").is_dir() else None
    else:
        x_all, y_all, classes = load(root)
        x, x_test, y, y_test = _split(x_all, y_all, 0.2, 0, str(root), "the test split")
        val = None
    return _build(
        root.name,
        (x, y),
        (x_test, y_test),
        val,
        val_fraction=val_fraction,
        seed=seed,
        num_classes=len(classes),
    )


def load_dataset(
    name: str,
    data_dir: str | os.PathLike = "data",
    *,
    download: bool = False,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> Dataset:
    """Load a dataset by name (see the module docstring); ``seed`` picks the validation split."""
    root = Path(data_dir)
    if name == "digits":
        return _digits(val_fraction, seed)
    if name in TORCHVISION:
        return _torchvision(name, root, download, val_fraction, seed)
    if name.startswith("fake:"):
        return _fake(name[5:], val_fraction, seed)
    if name.startswith("npz:") or name.endswith(".npz"):
        return _npz(Path(name[4:] if name.startswith("npz:") else name), val_fraction, seed)
    if name.startswith("imagefolder:"):
        return _imagefolder(Path(name[12:]), val_fraction, seed)
    if Path(name).is_dir():
        return _imagefolder(Path(name), val_fraction, seed)
    raise DatasetError(f"{name}: unknown dataset (known: {', '.join(NAMES)})")
