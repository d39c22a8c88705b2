"""Training recipes on fixed networks: what each setting of the trainer is worth.

A hand-written two-block CNN (conv 3x3, batch norm, ReLU, max-pool, twice: 32 then 64 channels;
then a linear classifier) and the zoo's ``lenet5`` are trained for the same epochs with each
recipe below, every other setting the trainer's default (one-cycle SGD, Nesterov momentum,
lr 0.05, batch 64, weight decay 5e-4), on each dataset, for every seed; the test accuracy of
each (mean over seeds) is printed with its ratio to the ``current`` recipe's.

Recipes: ``current`` is the trainer before these settings (weight decay on every parameter,
label smoothing 0.1, augmentation as it was: crop-flip for CIFAR-like images, none otherwise);
each other one changes one thing: ``no decay on norm/bias`` (``decay_norm_and_bias = false``),
``label smoothing 0``, ``augment auto`` (what ``auto`` picks for the kind of images: none for
the 8x8 digits, translate for the larger ones as for MNIST, crop-flip for colour32 as for
CIFAR), ``augment none`` and ``augment translate`` (on colour32: shifts without the flip);
``no decay on norm/bias + auto`` changes two things. A recipe that trains as one before it
(``augment none`` on digits is ``current``) is not trained again: on the CPU the result is the
same.

Datasets: ``digits`` (8x8, bundled), ``digits16`` and ``digits28`` (``search_strategies.py``'s
harder digits: shifted, noisy, upscaled) and ``colour32``, a CIFAR-like 32x32x3 set built here:
each digit upscaled to 24x24, mirrored with probability 1/2 (so that, as for natural images, a
mirrored image is as likely as the original), painted light on a dark random colourful
texture (smooth noise plus stripes) or dark on a light one, in random colours, at a random
offset. The images are the same for
every seed (only the validation split, the weights and the batch order follow it).

    python bench/training_recipe.py    # 15 epochs, seeds 0-2, every dataset
    python bench/training_recipe.py --datasets colour32 --recipes current "augment none"
    python bench/training_recipe.py --smoke    # seconds: one seed, one epoch, 128 images
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import attrs
import torch
import torch.nn.functional as F
from search_strategies import harder_digits
from torch import nn

import phenotypes as ph
import zoo

#: ``--smoke``: the defaults of a run of seconds through the same code, to check that the script
#: works (its figures mean nothing); options given still win.
SMOKE = {"seeds": [0], "epochs": 1, "train_images": 128, "datasets": ["digits", "colour32"]}

CURRENT = "current"
#: Each recipe's TrainSpec settings; ``augment`` None is the ``current`` one (see the docstring).
RECIPES = {
    CURRENT: {"decay_norm_and_bias": True, "label_smoothing": 0.1, "augment": None},
    "no decay on norm/bias": {
        "decay_norm_and_bias": False,
        "label_smoothing": 0.1,
        "augment": None,
    },
    "label smoothing 0": {"decay_norm_and_bias": True, "label_smoothing": 0.0, "augment": None},
    "augment auto": {"decay_norm_and_bias": True, "label_smoothing": 0.1, "augment": "auto"},
    "augment none": {"decay_norm_and_bias": True, "label_smoothing": 0.1, "augment": "none"},
    "augment translate": {
        "decay_norm_and_bias": True,
        "label_smoothing": 0.1,
        "augment": "translate",
    },
    "no decay on norm/bias + auto": {
        "decay_norm_and_bias": False,
        "label_smoothing": 0.1,
        "augment": "auto",
    },
}


class TwoBlockCNN(nn.Module):
    """Conv 3x3 - batch norm - ReLU - max-pool, twice (``width``, then twice as many channels),
    then a linear classifier over the flattened maps."""

    def __init__(self, shape: tuple[int, int, int], classes: int, width: int = 32) -> None:
        super().__init__()
        c, h, w = shape

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.features = nn.Sequential(block(c, width), block(width, 2 * width))
        self.classifier = nn.Linear(2 * width * (h // 4) * (w // 4), classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def colour32(seed: int, size: int = 32) -> ph.Dataset:
    """``digits`` as CIFAR-like colour images (see the module docstring), normalised per
    channel by the training split; the same images for every ``seed``."""
    base = ph.load_dataset("digits", seed=seed)
    g = torch.Generator().manual_seed(4321)
    digit = round(size * 3 / 4)
    low = min(x.min() for x in (base.x_train, base.x_val, base.x_test))
    high = max(x.max() for x in (base.x_train, base.x_val, base.x_test))

    def transform(x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        ink = F.interpolate((x - low) / (high - low), size=(digit, digit), mode="bilinear")
        mirror = torch.rand(n, generator=g) < 0.5
        ink = torch.where(mirror[:, None, None, None], ink.flip(3), ink).clamp_(0, 1)
        smooth = F.interpolate(
            torch.rand(n, 3, 4, 4, generator=g), size=(size, size), mode="bilinear"
        )
        angle = torch.rand(n, 1, 1, generator=g) * math.pi
        freq = 0.3 + 0.5 * torch.rand(n, 1, 1, generator=g)
        ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        wave = torch.sin(freq * (xs * torch.cos(angle) + ys * torch.sin(angle)))[:, None]
        texture = 0.7 * smooth + 0.3 * (0.5 + 0.5 * wave) * torch.rand(n, 3, 1, 1, generator=g)
        # A light digit on a dark texture or a dark one on a light texture, in any colours.
        light = (torch.rand(n, 1, 1, 1, generator=g) < 0.5).float()
        background = 0.55 * texture + 0.45 * (1 - light)
        paint = 0.6 * torch.rand(n, 3, 1, 1, generator=g) + 0.4 * light
        mask = torch.zeros(n, 1, size, size)
        shifts = torch.randint(0, size - digit + 1, (n, 2), generator=g)
        for i, (dy, dx) in enumerate(shifts.tolist()):
            mask[i, :, dy : dy + digit, dx : dx + digit] = ink[i]
        out = background * (1 - mask) + paint * mask
        return out + 0.03 * torch.randn(out.shape, generator=g)

    xs = [transform(x) for x in (base.x_train, base.x_val, base.x_test)]
    mean = xs[0].mean(dim=(0, 2, 3), keepdim=True)
    std = xs[0].std(dim=(0, 2, 3), keepdim=True)
    xs = [(x - mean) / std for x in xs]
    return attrs.evolve(
        base, name="colour32", x_train=xs[0], x_val=xs[1], x_test=xs[2], augment="crop-flip"
    )


def load(name: str, seed: int) -> ph.Dataset:
    """The dataset ``name`` for ``seed``; its ``augment`` is what ``auto`` picks for its kind:
    the loader's for ``digits``, MNIST's (translate) for the larger digits, CIFAR's
    (crop-flip) for colour32."""
    if name == "colour32":
        return colour32(seed)
    if name == "digits":
        return ph.load_dataset("digits", seed=seed)
    return attrs.evolve(harder_digits(seed, int(name[6:])), augment="translate")


def network(kind: str, data: ph.Dataset, seed: int) -> nn.Module:
    if kind == "two-block CNN":
        torch.manual_seed(seed)
        return TwoBlockCNN(data.input_shape, data.num_classes)
    return ph.compile_genome(zoo.load(kind, data.input_shape, data.num_classes), seed=seed)


def spec_of(recipe: dict, data: ph.Dataset, args: argparse.Namespace, seed: int) -> ph.TrainSpec:
    settings = dict(recipe)
    if settings["augment"] is None:  # the trainer before augment kinds
        settings["augment"] = "crop-flip" if data.name == "colour32" else "none"
    return ph.TrainSpec(
        epochs=args.epochs, batch_size=args.batch_size, seed=seed, device="cpu", **settings
    )


def geometric_mean(values: list[float]) -> float:
    if not values or not all(v > 0 for v in values):  # a NaN fails the test too
        return float("nan")
    return math.exp(statistics.mean(math.log(v) for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", nargs="+", default=["digits", "digits16", "digits28", "colour32"]
    )
    parser.add_argument("--networks", nargs="+", default=["two-block CNN", "lenet5"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES), metavar="RECIPE"
    )
    parser.add_argument(
        "--train-images", type=int, default=0, help="train on the first N images only (0: all)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads [default: 1]")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the same code at a tiny size, in seconds: checks that the script runs",
    )
    if parser.parse_known_args()[0].smoke:
        parser.set_defaults(**SMOKE)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipes = [CURRENT, *[r for r in args.recipes if r != CURRENT]]
    start = time.perf_counter()
    print(
        f"{args.epochs} epochs, batch {args.batch_size}, seeds {args.seeds}, test accuracy"
        f" (mean over seeds; each seed's in brackets), ratio to {CURRENT!r}"
    )
    ratios: dict[tuple[str, str], list[float]] = {}
    for name in args.datasets:
        datasets = {seed: load(name, seed) for seed in args.seeds}
        if args.train_images:
            datasets = {
                seed: attrs.evolve(
                    d,
                    x_train=d.x_train[: args.train_images],
                    y_train=d.y_train[: args.train_images],
                )
                for seed, d in datasets.items()
            }
        shape = datasets[args.seeds[0]].input_shape
        print(f"\n{name} {shape}, augment auto = {datasets[args.seeds[0]].augment}")
        for kind in args.networks:
            print(f"  {kind}")
            baseline, done = None, {}
            for label in recipes:
                accuracies = []
                for seed, data in datasets.items():
                    spec = spec_of(RECIPES[label], data, args, seed)
                    if spec not in done:  # training on the CPU is exact: the same spec, once
                        model = network(kind, data, seed)
                        result = ph.train(model, data, spec)
                        assert result.status == "completed", result.reason
                        done[spec] = ph.evaluate(model, data.x_test, data.y_test)
                    accuracies.append(done[spec])
                mean = statistics.mean(accuracies)
                baseline = mean if baseline is None else baseline
                ratio = mean / baseline if baseline else float("nan")
                ratios.setdefault((kind, label), []).append(ratio)
                each = ", ".join(f"{a:.2%}" for a in accuracies)
                print(f"    {label:30} {mean:7.2%}  [{each}]  {ratio:.4f}")
    print("\nratio to current, geometric mean over datasets")
    for kind in args.networks:
        line = "  ".join(f"{label}: {geometric_mean(ratios[kind, label]):.4f}" for label in recipes)
        print(f"  {kind}: {line}")
    print(f"\n{time.perf_counter() - start:.0f} s on {args.threads} thread(s)")


if __name__ == "__main__":
    main()
