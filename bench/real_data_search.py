"""A hand-written CNN, an Optuna search and ecogen on one .npz, on the same split.

The comparison a user makes before choosing ecogen: for each seed, on the train, validation
and test split that ecogen's loader makes of ``DATA.npz`` for that seed (``phenotypes``'
``.npz`` reader: ``x_train y_train x_test y_test``, optional ``x_val y_val``),

- **hand CNN**: conv-BN-ReLU x2, max pool, conv-BN-ReLU x2 (twice as wide), max pool, global
  average pool, linear, as a PyTorch user writes it, its width the widest multiple of 8 within
  ``--max-params``; trained ``--epochs`` epochs with ecogen's trainer (``phenotypes.train``)
  and the recipe ecogen's candidates train with (an experiment's defaults: batch 64, one-cycle
  SGD at lr 0.05, label smoothing 0.1, weight decay 5e-4), no search;
- **optuna**: TPE sampler and median pruner over a plain CNN space (blocks, convolutions per
  block, widths, kernel size, dropout, learning rate), each trial trained ``--search-epochs``
  epochs with the same trainer and recipe (its own learning rate) and reported epoch by epoch
  (``trial.report``, ``trial.should_prune``), a trial over ``--max-params`` pruned before it
  trains; the study runs for ``--budget`` seconds (``study.optimize(timeout=...)``), then its
  best is trained again from scratch for ``--epochs`` epochs;
- **ecogen**: a search with ``--preset`` (``eigen`` by default: the strategies' benchmark's
  best), ``time_budget = --budget``, ``max_params``, ``--search-epochs`` per candidate, then its
  final training of ``--epochs`` epochs.

Each is measured on the test split: test accuracy, parameters, and wall seconds including the
final training. The table gives medians over seeds and each contestant's test accuracy as a
ratio of the hand CNN's (per seed, then the median).

    python bench/real_data_search.py DATA.npz --budget 600 --max-params 100000 --seeds 0 1 2
    python bench/real_data_search.py --make digits28 digits28.npz     # 28x28 noisy digits
    python bench/real_data_search.py --make cifar-like cifar-like.npz  # 32x32 RGB, textured
    python bench/real_data_search.py --smoke    # seconds: a tiny generated .npz, tiny budgets

Needs optuna (``pip install 'ecogen[bench]'``; the ``dev`` extra has it).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import phenotypes as ph
from runner import config as cfg

#: ``--make`` kinds.
KINDS = ("digits28", "cifar-like")
#: ``--smoke``: the same code at a tiny size, in seconds (its figures mean nothing).
SMOKE = {
    "seeds": [0],
    "budget": 3.0,
    "max_params": 5_000,
    "epochs": 1,
    "search_epochs": 1,
    "population": 3,
}


# --- the contestants' networks, written as a PyTorch user would --------------------------------


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class HandCNN(nn.Module):
    """Two blocks of two 3x3 convolutions, the second block twice as wide, then a linear layer
    on globally pooled features."""

    def __init__(self, channels: int, classes: int, width: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(channels, width),
            conv_bn_relu(width, width),
            nn.MaxPool2d(2),
            conv_bn_relu(width, 2 * width),
            conv_bn_relu(2 * width, 2 * width),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class PlainCNN(nn.Module):
    """Optuna's space: ``blocks`` of ``convs`` conv-BN-ReLU layers of ``widths[i]`` channels,
    each block ending in a 2x2 max pool, then dropout and a linear layer on pooled features."""

    def __init__(
        self,
        channels: int,
        classes: int,
        widths: list[int],
        convs: int,
        kernel: int,
        dropout: float,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = channels
        for width in widths:
            for _ in range(convs):
                layers.append(conv_bn_relu(c, width, kernel))
                c = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(self.dropout(x))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def hand_width(channels: int, classes: int, max_params: int) -> int:
    """The widest multiple of 8 (up to 256) whose hand CNN keeps ``max_params``; below 8, the
    widest that does."""
    fits = []
    for w in range(1, 257):  # parameters grow with the width
        if count_params(HandCNN(channels, classes, w)) > max_params:
            break
        fits.append(w)
    if not fits:
        raise SystemExit(f"error: --max-params {max_params:,}: not even a hand CNN of width 1 fits")
    round_ones = [w for w in fits if w % 8 == 0]
    return max(round_ones or fits)


# --- the contestants ----------------------------------------------------------------------------


def recipe(args: argparse.Namespace, seed: int, epochs: int, **overrides) -> ph.TrainSpec:
    """ecogen's training recipe (an experiment's defaults: batch size, learning rate, schedule,
    decay, smoothing, augmentation), so that the hand CNN and Optuna's trials train as ecogen's
    candidates do and only the networks (and Optuna's learning rate) differ."""
    return cfg.Experiment().train_spec(args.device, epochs=epochs, seed=seed, **overrides)


def hand_cnn(data: ph.Dataset, args: argparse.Namespace, seed: int) -> dict:
    start = time.perf_counter()
    channels, size = data.input_shape[0], min(data.input_shape[1:])
    width = hand_width(channels, data.num_classes, args.max_params)
    torch.manual_seed(seed)
    model = HandCNN(channels, data.num_classes, width)
    if size < 4:
        raise SystemExit(f"error: images of {size}x{size}: the hand CNN pools twice (needs >= 4)")
    ph.train(model, data, recipe(args, seed, args.epochs))
    return {
        "test": ph.evaluate(model, data.x_test, data.y_test),
        "params": count_params(model),
        "seconds": time.perf_counter() - start,
        "searched": 0,
        "note": f"width {width}",
    }


def optuna_search(data: ph.Dataset, args: argparse.Namespace, seed: int) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    channels, classes = data.input_shape[0], data.num_classes
    # Every block halves the maps: as many as the images allow, at most 4.
    most_blocks = max(1, min(4, int(math.log2(min(data.input_shape[1:])))))

    def build(params: dict) -> PlainCNN:
        widths = [params[f"width_{i}"] for i in range(params["blocks"])]
        return PlainCNN(
            channels, classes, widths, params["convs"], params["kernel"], params["dropout"]
        )

    def objective(trial: optuna.Trial) -> float:
        blocks = trial.suggest_int("blocks", 1, most_blocks)
        trial.suggest_int("convs", 1, 2)
        for i in range(blocks):
            trial.suggest_int(f"width_{i}", 8, 128, log=True)
        trial.suggest_categorical("kernel", [3, 5])
        trial.suggest_float("dropout", 0.0, 0.5)
        lr = trial.suggest_float("lr", 1e-3, 0.3, log=True)
        torch.manual_seed(seed * 100_003 + trial.number)
        model = build(trial.params)
        if count_params(model) > args.max_params:
            raise optuna.TrialPruned(f"{count_params(model):,} parameters > --max-params")

        def on_epoch(metrics: ph.EpochMetrics) -> None:
            trial.report(metrics.val_accuracy, metrics.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        spec = recipe(args, seed, args.search_epochs, lr=lr)
        result = ph.train(model, data, spec, on_epoch=on_epoch)
        return result.val_accuracy if result.status == "completed" else 0.0

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    )
    study.optimize(objective, timeout=args.budget)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if done:
        best = study.best_trial.params
    else:
        # The budget ended before any trial finished: the best of those pruned after training
        # an epoch or more (a trial pruned before training was over --max-params).
        trained = [t for t in study.trials if t.intermediate_values]
        if not trained:
            raise SystemExit(
                f"error: optuna: no trial within --max-params {args.max_params:,} trained"
                f" in --budget {args.budget:g} s"
            )
        best = max(trained, key=lambda t: t.intermediate_values[max(t.intermediate_values)])
        best = best.params
    torch.manual_seed(seed)
    model = build(best)
    spec = recipe(args, seed, args.epochs, lr=best["lr"])
    ph.train(model, data, spec)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return {
        "test": ph.evaluate(model, data.x_test, data.y_test),
        "params": count_params(model),
        "seconds": time.perf_counter() - start,
        "searched": len(study.trials),
        "note": f"{len(done)} trials completed, {pruned} pruned",
    }


def ecogen_experiment(args: argparse.Namespace, seed: int, path: Path, workdir: Path):
    """The ecogen run of this comparison; SystemExit names a bad option in one line."""
    from operators import PluginError

    try:
        experiment = cfg.from_dict(
            {
                "dataset": str(path),
                "seed": seed,
                "run_dir": str(workdir / f"ecogen-{seed}"),
                "device": args.device,
                "strategy": [args.preset],
                "init": args.init,
                "population": args.population,
                "generations": 100_000,  # the time budget ends the search
                "time_budget": args.budget,
                "epochs": args.search_epochs,
                "final_epochs": args.epochs,
                "max_params": args.max_params,
            }
        )
        experiment.strategy_objects()
        experiment.zoo_names()
    except (cfg.ConfigError, PluginError) as exc:
        raise SystemExit(f"error: ecogen: {exc}") from None
    return experiment


def ecogen_search(
    data: ph.Dataset, args: argparse.Namespace, seed: int, path: Path, workdir: Path
) -> dict:
    from runner.errors import ConfigError, RunError
    from runner.session import start as start_run

    start = time.perf_counter()
    try:
        engine = start_run(ecogen_experiment(args, seed, path, workdir), data)
    except (ConfigError, RunError) as exc:  # a first population over --max-params, say
        raise SystemExit(f"error: ecogen: {exc}") from None
    try:
        summary = engine.run()
    finally:
        engine.store.close()
    return {
        "test": summary["best"]["test_accuracy"],
        "params": summary["best"]["params"],
        "seconds": time.perf_counter() - start,
        "searched": summary["evaluations"],
        "note": f"{args.preset}, init {args.init}",
    }


# --- the benchmark's own data sets --------------------------------------------------------------


def _splits(data: ph.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train (with the validation split back in: the loader draws its own) and test arrays."""
    x = torch.cat([data.x_train, data.x_val]).numpy()
    y = torch.cat([data.y_train, data.y_val]).numpy()
    return x, y, data.x_test.numpy(), data.y_test.numpy()


def make_digits28() -> dict[str, np.ndarray]:
    """bench/search_strategies.py's ``digits28``: the bundled digits upscaled to 20x20 at a
    random place in 28x28 images, with Gaussian noise (float32, NCHW)."""
    from search_strategies import harder_digits

    x, y, x_test, y_test = _splits(harder_digits(0, 28))
    return {"x_train": x, "y_train": y, "x_test": x_test, "y_test": y_test, "layout": "NCHW"}


def make_cifar_like() -> dict[str, np.ndarray]:
    """32x32 RGB images (uint8, NHWC, as CIFAR's): ``digits32`` (bench/search_strategies.py's
    ``harder_digits``, noise and all) as the shape of a digit in a random colour, over a
    background of smooth random colour blobs crossed by a random stripe texture."""
    from search_strategies import harder_digits

    x, y, x_test, y_test = _splits(harder_digits(0, 32))
    g = torch.Generator().manual_seed(4321)

    def colour(grey: np.ndarray) -> np.ndarray:
        n = len(grey)
        # Strokes are about 1.8 and a digit's background -0.8 there, noise 0.35: ink from 0 to 1.
        shape = torch.as_tensor(grey).div(1.5).clamp_(0, 1)
        blobs = F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=32, mode="bicubic")
        background = 0.2 + 0.6 * blobs.clamp(0, 1)
        yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        angle = math.pi * torch.rand(n, 1, 1, 1, generator=g)
        freq = 0.4 + 0.8 * torch.rand(n, 1, 1, 1, generator=g)
        phase = 2 * math.pi * torch.rand(n, 1, 1, 1, generator=g)
        stripes = torch.sin(freq * (angle.cos() * xx + angle.sin() * yy) + phase)
        background = background + 0.12 * stripes
        # Each channel of the digit's colour is 0.45 from its background's mean, toward the
        # far end: the digit stays visible on any background.
        mean = background.mean(dim=(2, 3), keepdim=True)
        jitter = 0.1 * (torch.rand(n, 3, 1, 1, generator=g) - 0.5)
        ink = (mean + torch.where(mean > 0.5, -0.45, 0.45) + jitter).clamp(0, 1)
        image = background * (1 - shape) + ink * shape
        image = image + 0.05 * torch.randn(image.shape, generator=g)
        return (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()

    return {"x_train": colour(x), "y_train": y, "x_test": colour(x_test), "y_test": y_test}


def make(kind: str, out: Path, limit: int | None = None) -> Path:
    """Write the ``kind`` data set to ``out`` (its first ``limit`` images of each split)."""
    arrays = make_digits28() if kind == "digits28" else make_cifar_like()
    if limit is not None:
        arrays = {k: v if k == "layout" else v[:limit] for k, v in arrays.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    return out


# --- the comparison -----------------------------------------------------------------------------

CONTESTANTS = ("hand CNN", "optuna", "ecogen")


def compare(path: Path, args: argparse.Namespace, workdir: Path) -> list[dict]:
    runs = []
    for seed in args.seeds:
        try:
            data = ph.load_dataset(str(path), seed=seed)
        except ph.DatasetError as exc:
            raise SystemExit(f"error: {exc}") from None
        print(
            f"## seed {seed}: {path.name}, {data.sizes()} images of {data.input_shape},"
            f" {data.num_classes} classes",
            flush=True,
        )
        for name in CONTESTANTS:
            if name == "hand CNN":
                r = hand_cnn(data, args, seed)
            elif name == "optuna":
                r = optuna_search(data, args, seed)
            else:
                r = ecogen_search(data, args, seed, path, workdir)
            r.update(contestant=name, seed=seed)
            runs.append(r)
            print(
                f"  {name}: test {r['test']:.2%}, {r['params']:,} params, {r['seconds']:.0f} s"
                f" ({r['note']})",
                flush=True,
            )
    return runs


def medians(runs: list[dict]) -> list[dict]:
    hand = {r["seed"]: r["test"] for r in runs if r["contestant"] == "hand CNN"}
    rows = []
    for name in CONTESTANTS:
        mine = [r for r in runs if r["contestant"] == name]
        ratios = [r["test"] / hand[r["seed"]] if hand[r["seed"]] else math.nan for r in mine]
        rows.append(
            {
                "contestant": name,
                "test": statistics.median(r["test"] for r in mine),
                "params": statistics.median(r["params"] for r in mine),
                "seconds": statistics.median(r["seconds"] for r in mine),
                "searched": statistics.median(r["searched"] for r in mine),
                "vs_hand": statistics.median(ratios),
                "tests": [r["test"] for r in mine],
            }
        )
    return rows


def table(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        f"budget {args.budget:g} s per search, max_params {args.max_params:,}, {args.epochs}"
        f" epochs (hand CNN, final trainings), {args.search_epochs} per trial or candidate,"
        f" seeds {' '.join(map(str, args.seeds))}; medians",
        "",
        "| contestant | test accuracy | params | seconds (search + final) | trials or candidates"
        " | test / hand CNN's | runs (test) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['contestant']} | {r['test']:.2%} | {r['params']:,.0f} | {r['seconds']:.0f}"
            f" | {r['searched']:.0f} | {r['vs_hand']:.3f}x"
            f" | {', '.join(format(t, '.2%') for t in r['tests'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, help="the .npz to compare on")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of each search")
    parser.add_argument("--max-params", type=int, default=100_000)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--epochs", type=int, default=15, help="of the hand CNN and of each search's best"
    )
    parser.add_argument("--search-epochs", type=int, default=8, help="per trial or candidate")
    parser.add_argument("--population", type=int, default=12, help="ecogen's")
    parser.add_argument("--preset", default="eigen", help="ecogen's strategy or preset")
    parser.add_argument("--init", default="random", help="ecogen's first population")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--json", type=Path, help="write every run's figures and the medians")
    parser.add_argument(
        "--make",
        nargs=2,
        metavar=("KIND", "OUT"),
        help=f"write a data set of the benchmark's to OUT.npz and stop: {', '.join(KINDS)}",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the same code at a tiny size, in seconds: checks that the script runs",
    )
    if parser.parse_known_args()[0].smoke:
        parser.set_defaults(**SMOKE)
    args = parser.parse_args()
    if args.make:
        kind, out = args.make
        if kind not in KINDS:
            parser.error(f"--make: KIND must be one of {', '.join(KINDS)}, got {kind!r}")
        print(f"wrote {make(kind, Path(out))}")
        return
    if args.data is None and not args.smoke:
        parser.error("DATA.npz: give the .npz to compare on (or --make KIND OUT.npz, --smoke)")
    if args.max_params < 1:
        parser.error("--max-params: must be >= 1 (the hand CNN's width is chosen to fit it)")
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise SystemExit(
            "bench/real_data_search.py needs optuna: pip install 'ecogen[bench]'"
        ) from None
    with tempfile.TemporaryDirectory() as tmp:
        ecogen_experiment(args, 0, Path(tmp), Path(tmp))  # a bad --preset or --init: now
        path = args.data
        if args.smoke:  # both data sets made, the RGB one compared on, 400 images of it
            make("digits28", Path(tmp) / "digits28.npz", limit=400)
            path = make("cifar-like", Path(tmp) / "cifar-like.npz", limit=400)
        runs = compare(path, args, Path(tmp))
    rows = medians(runs)
    print()
    print(table(rows, args))
    if args.json:
        figures = {"options": vars(args), "runs": runs, "medians": rows}
        args.json.write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
