"""What cost limits and the FLOPs budget of the first population buy.

Part 1 (``--part init``): the first generation alone (``generations = 0``) of random genomes
with the default FLOPs budget for drawing them (``init_flops_per_pixel``, 10,000 FLOPs per
pixel) against none (0, what ecogen did before it had one). Reported per variant: the seconds
the first generation took, the FLOPs of its genomes (median, largest), the share of its training
time the two most expensive candidates took, and the best validation accuracy (median over
seeds).

Part 2 (``--part limit``): a search with ``max_flops`` against one without, at equal wall time
(``time_budget``): the best validation accuracy found, the test accuracy of the best after its
final training, the candidates evaluated and the FLOPs of the best.

Datasets as in bench/search_strategies.py: ``digitsN`` (``digits28``: MNIST-sized) is built in
memory from the bundled digits (upscaled, shifted at random, drowned in noise).

    python bench/cost_search.py --part init     # digits28, seeds 0-2
    python bench/cost_search.py --part limit    # digits28, seeds 0-2, 240 s per run
    python bench/cost_search.py --smoke         # seconds: both parts, one seed, tiny runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from search_strategies import load

from runner import config as cfg
from runner.session import start

#: ``--smoke``: the defaults of a run of seconds through the same code (figures mean nothing).
SMOKE = {
    "dataset": "digits16",
    "seeds": [0],
    "population": 3,
    "epochs": 1,
    "time_budget": 4.0,
    "final_epochs": 1,
}


def run_one(workdir: Path, data, seed: int, label: str, **config) -> dict:
    run_dir = workdir / f"{data.name}-{label}-{seed}"
    experiment = cfg.from_dict(
        {"dataset": data.name, "seed": seed, "run_dir": str(run_dir), "device": "cpu", **config}
    )
    engine = start(experiment, data)
    try:
        summary = engine.run()
        evaluations = [e for e in engine.store.evaluations() if e.epochs]
    finally:
        engine.store.close()
    seconds = sorted((e.seconds for e in evaluations), reverse=True)
    return {
        "label": label,
        "seed": seed,
        "seconds": summary["seconds"],
        "val": summary["best"]["search_val_accuracy"],
        "test": summary["best"]["test_accuracy"],
        "best_flops": summary["best"]["flops"],
        "evaluations": summary["evaluations"],
        "flops": [e.flops for e in evaluations],
        "top2_share": sum(seconds[:2]) / sum(seconds) if seconds else 0.0,
    }


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def first_generation(args, workdir: Path, results: list) -> None:
    print(
        f"\n## the first generation on {args.dataset}: population {args.population},"
        f" {args.epochs} epochs per candidate, random genomes"
    )
    variants = {"no budget": 0.0, "default budget": cfg.Experiment().init_flops_per_pixel}
    rows: dict[str, list] = {label: [] for label in variants}
    for seed in args.seeds:
        data = load(args.dataset, seed)
        for label, budget in variants.items():
            r = run_one(
                workdir,
                data,
                seed,
                label.replace(" ", "-"),
                population=args.population,
                epochs=args.epochs,
                generations=0,
                final_epochs=0,
                init="random",
                init_flops_per_pixel=budget,
            )
            r["part"] = "init"
            rows[label].append(r)
            results.append(r)
            print(
                f"  seed {seed} {label}: {r['seconds']:.0f} s, FLOPs median"
                f" {statistics.median(r['flops']):,.0f} max {max(r['flops']):,}, two costliest"
                f" {r['top2_share']:.0%} of the time, best val {r['val']:.4f}",
                flush=True,
            )
    print("| first population | seconds (median) | FLOPs median | FLOPs max | two costliest"
          " candidates' share of the time | best val (median) | seconds per seed |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for label, mine in rows.items():
        flops = [f for r in mine for f in r["flops"]]
        print(
            f"| {label} | {_median(mine, 'seconds'):.0f} | {statistics.median(flops):,.0f}"
            f" | {max(flops):,} | {_median(mine, 'top2_share'):.0%} | {_median(mine, 'val'):.2%}"
            f" | {', '.join(format(r['seconds'], '.0f') for r in mine)} |"
        )


def limit(args, workdir: Path, results: list) -> None:
    print(
        f"\n## max_flops {args.max_flops:,} against no limit on {args.dataset}: population"
        f" {args.population}, {args.epochs} epochs per candidate, {args.time_budget:g} s of"
        f" search each, final training {args.final_epochs} epochs"
    )
    variants = {"no limit": 0, f"max_flops {args.max_flops:,}": args.max_flops}
    rows: dict[str, list] = {label: [] for label in variants}
    for seed in args.seeds:
        data = load(args.dataset, seed)
        for label, max_flops in variants.items():
            t = time.perf_counter()
            r = run_one(
                workdir,
                data,
                seed,
                "limit" if max_flops else "free",
                population=args.population,
                epochs=args.epochs,
                generations=1000,
                time_budget=args.time_budget,
                final_epochs=args.final_epochs,
                max_flops=max_flops,
            )
            r["part"] = "limit"
            rows[label].append(r)
            results.append(r)
            print(
                f"  seed {seed} {label}: val {r['val']:.4f} test {r['test']:.4f}, evaluated"
                f" {r['evaluations']}, best FLOPs {r['best_flops']:,}"
                f" ({time.perf_counter() - t:.0f} s)",
                flush=True,
            )
    print("| variant | best val | best test | candidates evaluated | FLOPs of the best | runs"
          " (test, evaluated) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    ev = "evaluations"
    for label, mine in rows.items():
        print(
            f"| {label} | {_median(mine, 'val'):.2%} | {_median(mine, 'test'):.2%}"
            f" | {_median(mine, 'evaluations'):.0f} | {_median(mine, 'best_flops'):,.0f}"
            f" | {', '.join(format(r['test'], '.2%') + f' {r[ev]}' for r in mine)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["init", "limit", "all"], default="all")
    parser.add_argument("--dataset", default="digits28")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4, help="per candidate")
    parser.add_argument("--time-budget", type=float, default=240.0, help="seconds, limit part")
    parser.add_argument("--max-flops", type=int, default=2_000_000, help="limit part")
    parser.add_argument("--final-epochs", type=int, default=15, help="limit part")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the same code at a tiny size, in seconds: checks that the script runs",
    )
    if parser.parse_known_args()[0].smoke:
        parser.set_defaults(**SMOKE)
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    results: list = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("init", "all"):
            first_generation(args, Path(tmp), results)
        if args.part in ("limit", "all"):
            limit(args, Path(tmp), results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
