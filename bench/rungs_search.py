"""Rungs (successive halving) against the fixed-epochs search, at equal wall time.

Both searches get the same seconds of search (``time_budget``), the same data, seeds, population,
size limit, final training and selection (``--strategy``, ``tournament`` by default):
``fixed`` trains every candidate ``--epochs`` epochs; ``rungs`` (the strategy followed by
``rungs``; for ``tournament`` the ``rungs`` preset) trains every candidate to the first rung
(``--min-epochs``) and the best 1/``--reduction`` of each rung on, up to ``--epochs``. Reported
per search (median over seeds):

- the candidates it evaluated, its trainings (a promotion is one) and the epochs it trained;
- the best validation accuracy the search found (for rungs: at the last rung, the only place a
  best comes from) and the seconds until its best first reached the fixed search's final best
  (same seed; "-" counts runs that never did);
- the test accuracy of the best after its final training (from scratch in both).

Datasets as in bench/search_strategies.py: ``digits`` (8x8, bundled) or ``digitsN``, built in
memory (each digit upscaled, shifted at random in an N x N image, drowned in noise). Wall time
is the machine's: run it on a machine doing nothing else, or the figures say more about the load
than about the searches.

    python bench/rungs_search.py                    # digits16, 600 s per search, seeds 0-2
    python bench/rungs_search.py --dataset digits28 --budget 1200 --epochs 9
    python bench/rungs_search.py --strategy eigen   # eigen against eigen + rungs
    python bench/rungs_search.py --smoke            # seconds: one seed, tiny searches
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch
from search_strategies import load

from runner import config as cfg
from runner.session import start

#: ``--smoke``: the defaults of a run of seconds through the same code (figures mean nothing).
SMOKE = {"seeds": [0], "population": 3, "epochs": 2, "budget": 4.0, "final_epochs": 1}

SEARCHES = ("fixed", "rungs")


def run_one(workdir: Path, data, seed: int, search: str, args) -> dict:
    run_dir = workdir / f"{data.name}-{search}-{seed}"
    values = {
        "dataset": data.name,
        "seed": seed,
        "run_dir": str(run_dir),
        "device": args.device,
        "population": args.population,
        "epochs": args.epochs,
        "generations": 1000,
        "time_budget": args.budget,
        "final_epochs": args.final_epochs,
        "max_params": args.max_params,
        "strategy": [args.strategy],
    }
    if search == "rungs":
        values["strategy"] = [args.strategy, "rungs"]
        values["strategies"] = {
            "rungs": {"min_epochs": args.min_epochs, "reduction": args.reduction}
        }
    engine = start(cfg.from_dict(values), data)
    try:
        summary = engine.run()
        created = float(engine.store.get_meta("created"))
        rows = engine.store.db.execute(
            "SELECT created_at, val_accuracy, status FROM evaluations ORDER BY id"
        ).fetchall()
        individuals = sum(1 for _ in engine.store.individuals())
    finally:
        engine.store.close()
    # A best can only be a finished training (for rungs: one of the last rung).
    curve = [(at - created, acc) for at, acc, status in rows if status == "ok" and acc is not None]
    return {
        "search": search,
        "seed": seed,
        "dataset": data.name,
        "candidates": individuals,
        "trainings": summary["evaluations"],
        "epochs": summary["epochs_trained"],
        "val": summary["best"]["search_val_accuracy"],
        "test": summary["best"]["test_accuracy"],
        "params": summary["best"]["params"],
        "seconds": summary["seconds"],
        "curve": curve,
    }


def first_reach(curve: list, target: float) -> float | None:
    best = -1.0
    for seconds, accuracy in curve:
        best = max(best, accuracy)
        if best >= target:
            return seconds
    return None


def median(values: list) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits16")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--population", type=int, default=9)
    parser.add_argument("--epochs", type=int, default=9, help="fixed: every candidate's")
    parser.add_argument("--min-epochs", type=int, default=1, help="rungs: the first rung")
    parser.add_argument("--reduction", type=int, default=3, help="rungs: eta")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of search per run")
    parser.add_argument("--final-epochs", type=int, default=15)
    parser.add_argument("--max-params", type=int, default=100_000)
    parser.add_argument(
        "--strategy", default="tournament", help="the selection both searches use (or a preset)"
    )
    parser.add_argument("--device", default="cpu")
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
    runs: dict[tuple[str, int], dict] = {}
    print(
        f"## {args.dataset}, {args.strategy}: {args.budget:g} s of search per run, population"
        f" {args.population},"
        f" fixed {args.epochs} epochs against rungs from {args.min_epochs} epochs, reduction"
        f" {args.reduction}; final training {args.final_epochs} epochs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            data = load(args.dataset, seed)
            for search in SEARCHES:
                r = runs[search, seed] = run_one(Path(tmp), data, seed, search, args)
                print(
                    f"  seed {seed} {search:<5} candidates {r['candidates']} trainings"
                    f" {r['trainings']} epochs {r['epochs']} val {r['val']:.4f} test"
                    f" {r['test']:.4f} ({r['seconds']:.0f} s)",
                    flush=True,
                )
    print(f"\nmedian over seeds {args.seeds}")
    print(
        "| search | candidates | trainings | epochs | best val | s to fixed's final val"
        " | best test | runs |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for search in SEARCHES:
        mine = [runs[search, s] for s in args.seeds]
        reach = [first_reach(r["curve"], runs["fixed", r["seed"]]["val"]) for r in mine]
        reached = [t for t in reach if t is not None]
        reach_text = f"{median(reached):.0f}" if reached else "-"
        if len(reached) < len(reach):
            reach_text += f" ({len(reach) - len(reached)} of {len(reach)} never)"
        print(
            f"| {search} | {median([r['candidates'] for r in mine]):.0f}"
            f" | {median([r['trainings'] for r in mine]):.0f}"
            f" | {median([r['epochs'] for r in mine]):.0f}"
            f" | {median([r['val'] for r in mine]):.2%} | {reach_text}"
            f" | {median([r['test'] for r in mine]):.2%}"
            f" | {', '.join(format(r['test'], '.2%') for r in mine)} |"
        )
    if args.json:
        args.json.write_text(json.dumps(list(runs.values()), indent=1))


if __name__ == "__main__":
    main()
