"""Search strategies at equal compute, and what accelerated extinction saves.

Part 1 (``--part compare``): ``tournament``, ``ag-evolution`` and ``eigen`` each get the same
budget of training epochs (``max_epochs``) on each dataset, for every seed. Reported per
strategy (median over seeds): best validation accuracy found by the search, test accuracy of the
best after its final training, and the training epochs each run spent before it first reached
the tournament's final validation accuracy on the same dataset and seed (the tournament's own
figure is its full budget's first-reach point; "-" counts runs that never reached it).

Part 2 (``--part extinction``): ``eigen`` against the same strategies without ``extinction``,
for the same number of generations (no epoch budget): the training epochs each spent and the
median best test accuracy.

Datasets: ``digits`` (8x8, bundled) and ``digitsN`` (``digits16``, ``digits28``, ...), built
here in memory: every digit upscaled to 5/7 of N x N, placed at a random offset in an N x N
image (up to 2/7 of N pixels in each direction) and drowned in Gaussian noise (sigma 0.35); a
harder task, of MNIST's size at N = 28.

    python bench/search_strategies.py    # both parts, digits and digits16, seeds 0-2
    python bench/search_strategies.py --part compare --datasets digits28 --seeds 0
    python bench/search_strategies.py --smoke    # seconds: both parts, one seed, tiny searches
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import attrs
import torch
import torch.nn.functional as F

import phenotypes as ph
from runner import config as cfg
from runner.session import start

EIGEN_WITHOUT_EXTINCTION = ["succession", "aggressive", "duplication", "mimicry"]
ARGS = argparse.Namespace(max_params=100_000)

#: ``--smoke``: the defaults of a run of seconds through the same code, both parts and both kinds
#: of dataset, to check that the script works (its figures mean nothing); options given still win.
SMOKE = {
    "seeds": [0],
    "population": 3,
    "epochs": 1,
    "budget": 6,
    "budget_hard": 6,
    "generations": 2,
    "final_epochs": 1,
}


def harder_digits(seed: int, size: int = 28) -> ph.Dataset:
    """``digits`` at ``size`` x ``size`` with random shifts and heavy noise; the same images for
    every seed of the search (only the validation split follows ``seed``)."""
    base = ph.load_dataset("digits", seed=seed)
    g = torch.Generator().manual_seed(1234)
    digit = round(size * 5 / 7)

    def transform(x: torch.Tensor) -> torch.Tensor:
        big = F.interpolate(x, size=(digit, digit), mode="bilinear", align_corners=False)
        out = torch.zeros(len(x), 1, size, size)
        shifts = torch.randint(0, size - digit + 1, (len(x), 2), generator=g)
        for i, (dy, dx) in enumerate(shifts.tolist()):
            out[i, :, dy : dy + digit, dx : dx + digit] = big[i]
        return (out + 0.35 * torch.randn(out.shape, generator=g)).clamp_(-1, 2)

    return attrs.evolve(
        base,
        name=f"digits{size}",
        x_train=transform(base.x_train),
        x_val=transform(base.x_val),
        x_test=transform(base.x_test),
    )


def load(name: str, seed: int) -> ph.Dataset:
    if name.startswith("digits") and name[6:].isdigit():
        return harder_digits(seed, int(name[6:]))
    return ph.load_dataset(name, seed=seed)


def run_one(workdir: Path, data: ph.Dataset, seed: int, label: str, **config) -> dict:
    # Each part has its own directory: both have an "eigen" run per dataset and seed.
    part = "budget" if "max_epochs" in config else "generations"
    run_dir = workdir / part / f"{data.name}-{label}-{seed}"
    experiment = cfg.from_dict(
        {
            "dataset": data.name,
            "seed": seed,
            "run_dir": str(run_dir),
            "device": "cpu",
            "max_params": ARGS.max_params,
            **config,
        }
    )
    engine = start(experiment, data)
    try:
        summary = engine.run()
        curve = [(e.epochs, e.val_accuracy, e.status) for e in engine.store.evaluations()]
    finally:
        engine.store.close()
    spent, points = 0, []
    for epochs, accuracy, status in curve:
        spent += epochs
        if status == "ok" and accuracy is not None:
            points.append((spent, accuracy))
    return {
        "label": label,
        "seed": seed,
        "dataset": data.name,
        "val": summary["best"]["search_val_accuracy"],
        "test": summary["best"]["test_accuracy"],
        "params": summary["best"]["params"],
        "epochs": summary["epochs_trained"],
        "epochs_saved": summary["epochs_saved"],
        "extinct": summary["extinct"],
        "evaluations": summary["evaluations"],
        "seconds": summary["seconds"],
        "curve": points,
    }


def _epochs_and_test(r: dict) -> str:
    return f"{r['epochs']} ep {r['test']:.2%}"


def first_reach(curve: list, target: float) -> int | None:
    for spent, accuracy in curve:
        if accuracy >= target:
            return spent
    return None


def median(values: list) -> float:
    return statistics.median(values) if values else float("nan")


def compare(args, workdir: Path, results: list) -> None:
    print(
        f"\n## equal compute: {args.budget} training epochs per run on digits, "
        f"{args.budget_hard} on the others; population {args.population}, {args.epochs} epochs "
        "per candidate"
    )
    for name in args.datasets:
        budget = args.budget if name == "digits" else args.budget_hard
        runs = {}
        for seed in args.seeds:
            data = load(name, seed)
            for strategy in ("tournament", "ag-evolution", "eigen"):
                t = time.perf_counter()
                r = run_one(
                    workdir,
                    data,
                    seed,
                    strategy,
                    strategy=[strategy],
                    population=args.population,
                    epochs=args.epochs,
                    generations=1000,
                    max_epochs=budget,
                    final_epochs=args.final_epochs,
                )
                runs[strategy, seed] = r
                results.append(r)
                print(
                    f"  {name} seed {seed} {strategy:<13} val {r['val']:.4f} test {r['test']:.4f}"
                    f" epochs {r['epochs']} ({time.perf_counter() - t:.0f} s)",
                    flush=True,
                )
        print(f"\n{name}: median over seeds {args.seeds}")
        print("| strategy | best val | best test | epochs to tournament's final val | runs |")
        print("|---|---|---|---|---|")
        for strategy in ("tournament", "ag-evolution", "eigen"):
            mine = [runs[strategy, s] for s in args.seeds]
            reach = [
                first_reach(runs[strategy, s]["curve"], runs["tournament", s]["val"])
                for s in args.seeds
            ]
            reached = [r for r in reach if r is not None]
            missed = len(reach) - len(reached)
            reach_text = f"{median(reached):.0f}" if reached else "-"
            if missed:
                reach_text += f" ({missed} of {len(reach)} never)"
            print(
                f"| {strategy} | {median([r['val'] for r in mine]):.2%}"
                f" | {median([r['test'] for r in mine]):.2%} | {reach_text}"
                f" | {', '.join(format(r['test'], '.2%') for r in mine)} |"
            )


def extinction(args, workdir: Path, results: list) -> None:
    print(f"\n## accelerated extinction: eigen with and without it, {args.generations} generations")
    print("| dataset | variant | training epochs (median) | extinct | best test (median) | runs |")
    print("|---|---|---|---|---|---|")
    for name in args.datasets:
        rows = {}
        for label, strategy in (("eigen", ["eigen"]), ("no-extinction", EIGEN_WITHOUT_EXTINCTION)):
            rows[label] = []
            for seed in args.seeds:
                data = load(name, seed)
                r = run_one(
                    workdir,
                    data,
                    seed,
                    label,
                    strategy=strategy,
                    strategies={
                        "aggressive": {"keep": 0.25},
                        "duplication": {"phase": "secondary"},
                    },
                    population=args.population,
                    epochs=args.epochs,
                    generations=args.generations,
                    final_epochs=args.final_epochs,
                )
                rows[label].append(r)
                results.append(r)
        for label, mine in rows.items():
            print(
                f"| {name} | {label} | {median([r['epochs'] for r in mine]):.0f}"
                f" | {median([r['extinct'] for r in mine]):.0f}"
                f" | {median([r['test'] for r in mine]):.2%}"
                f" | {', '.join(_epochs_and_test(r) for r in mine)} |"
            )
        saved = 1 - median([r["epochs"] for r in rows["eigen"]]) / median(
            [r["epochs"] for r in rows["no-extinction"]]
        )
        drop = median([r["test"] for r in rows["no-extinction"]]) - median(
            [r["test"] for r in rows["eigen"]]
        )
        print(
            f"| {name} | extinction saves | {saved:.0%} of the epochs | | {drop * 100:+.2f}"
            " points lower median test accuracy | |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["compare", "extinction", "all"], default="all")
    parser.add_argument("--datasets", nargs="+", default=["digits", "digits16"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--population", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--budget", type=int, default=800, help="epochs per run, digits")
    parser.add_argument(
        "--budget-hard", type=int, default=480, help="epochs per run, the other datasets"
    )
    parser.add_argument("--generations", type=int, default=8, help="extinction part")
    parser.add_argument("--final-epochs", type=int, default=30)
    parser.add_argument(
        "--max-params", type=int, default=100_000, help="the same size limit for every strategy"
    )
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the same code at a tiny size, in seconds: checks that the script runs",
    )
    if parser.parse_known_args()[0].smoke:
        parser.set_defaults(**SMOKE)
    global ARGS
    args = ARGS = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    results: list = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("compare", "all"):
            compare(args, Path(tmp), results)
        if args.part in ("extinction", "all"):
            extinction(args, Path(tmp), results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
