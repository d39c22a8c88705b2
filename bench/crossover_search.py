"""Mutation alone against mutation plus crossover, at equal training epochs.

Each run is a tournament search with the same budget of training epochs (``max_epochs``) and
the same size limit; one variant makes every child by mutation (``crossover_rate = 0``), the
other crosses two parents first with probability ``--rate`` (then mutates, as every child is).
Reported per variant (median over seeds): the best validation accuracy the search found, the test
accuracy of the best after its final training, its parameters, and how many children were made
by crossover.

Datasets as in bench/search_strategies.py: ``digits`` (8x8, bundled) or ``digitsN``, built in
memory (each digit upscaled, shifted at random in an N x N image, drowned in noise).

    python bench/crossover_search.py      # digits16, seeds 0-2
    python bench/crossover_search.py --dataset digits28 --budget 240
    python bench/crossover_search.py --smoke    # seconds: one seed, tiny searches
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

import operators as ops
from runner import config as cfg
from runner.session import start

#: ``--smoke``: the defaults of a run of seconds through the same code (figures mean nothing).
SMOKE = {"seeds": [0], "population": 3, "epochs": 1, "budget": 6, "final_epochs": 1}


def run_one(workdir: Path, data, seed: int, rate: float, args) -> dict:
    run_dir = workdir / f"{data.name}-{rate}-{seed}"
    experiment = cfg.from_dict(
        {
            "dataset": data.name,
            "seed": seed,
            "run_dir": str(run_dir),
            "device": "cpu",
            "population": args.population,
            "epochs": args.epochs,
            "generations": 1000,
            "max_epochs": args.budget,
            "final_epochs": args.final_epochs,
            "max_params": args.max_params,
            "crossover_rate": rate,
        }
    )
    engine = start(experiment, data)
    try:
        summary = engine.run()
        rows = list(engine.store.individuals())
    finally:
        engine.store.close()
    crossovers = set(ops.crossover_names())
    crossed = sum(1 for r in rows if r["operators"] and r["operators"][0] in crossovers)
    return {
        "rate": rate,
        "seed": seed,
        "val": summary["best"]["search_val_accuracy"],
        "test": summary["best"]["test_accuracy"],
        "params": summary["best"]["params"],
        "epochs": summary["epochs_trained"],
        "evaluations": summary["evaluations"],
        "children": sum(1 for r in rows if r["generation"] > 0),
        "crossed": crossed,
        "seconds": summary["seconds"],
        "best_operators": summary["best"]["operators"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits16")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8, help="per candidate")
    parser.add_argument("--budget", type=int, default=160, help="training epochs per run")
    parser.add_argument("--rate", type=float, default=0.5, help="crossover_rate of the variant")
    parser.add_argument("--final-epochs", type=int, default=15)
    parser.add_argument("--max-params", type=int, default=100_000)
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
    print(
        f"## {args.dataset}: population {args.population}, {args.epochs} epochs per candidate,"
        f" {args.budget} training epochs per run, final training {args.final_epochs} epochs,"
        f" max_params {args.max_params:,}"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            data = load(args.dataset, seed)
            for rate in (0.0, args.rate):
                t = time.perf_counter()
                r = run_one(Path(tmp), data, seed, rate, args)
                results.append(r)
                print(
                    f"  seed {seed} crossover_rate {rate}: val {r['val']:.4f} test"
                    f" {r['test']:.4f} params {r['params']:,} epochs {r['epochs']} crossed"
                    f" {r['crossed']} of {r['children']} ({time.perf_counter() - t:.0f} s)",
                    flush=True,
                )
    print("\n| variant | best val | best test | best params | crossed children | runs (test) |")
    print("|---|---|---|---|---|---|")
    for rate in (0.0, args.rate):
        mine = [r for r in results if r["rate"] == rate]
        label = "mutation only" if rate == 0 else f"crossover_rate {rate}"
        print(
            f"| {label} | {statistics.median(r['val'] for r in mine):.2%}"
            f" | {statistics.median(r['test'] for r in mine):.2%}"
            f" | {statistics.median(r['params'] for r in mine):,.0f}"
            f" | {sum(r['crossed'] for r in mine)} of {sum(r['children'] for r in mine)}"
            f" | {', '.join(format(r['test'], '.2%') for r in mine)} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
