"""Asynchronous (regularized) against generational evolution on two local workers, at equal wall
time.

Both searches get the same seconds of search (``time_budget``), the same data, seed, population,
epochs per candidate, size limit, parent choice (a tournament) and final training, and
``--workers`` local worker processes; ``generations`` is high enough that the time budget is
what stops both. ``generational`` waits for a generation's last child before it makes the next
generation's first; ``asynchronous`` (``asynchronous = true``, docs/asynchronous.md) makes a
child whenever a worker frees and the oldest of the population dies as each is accepted.
Reported per search: the candidates it evaluated, evaluations per minute of search, the
workers' idle seconds (summary.json's ``worker_idle_seconds``), the best validation accuracy of
the search, the best's test accuracy after its final training (from scratch) and its
parameters, and the median parameters and seconds of a training (the rate depends on what was
trained, not only on the waits); then asynchronous / generational for evaluations per minute
and idle seconds, and the difference in test accuracy. With several ``--seeds``: each seed,
then the medians.

Datasets as in bench/search_strategies.py: ``digits`` (8x8, bundled) or ``digitsN``, built in
memory (each digit upscaled, shifted at random in an N x N image, drowned in noise). Wall time
is the machine's: run it on a machine doing nothing else.

    python bench/asynchronous_search.py                 # digits28, 120 s per search, seed 0
    python bench/asynchronous_search.py --budget 600 --seeds 0 1 2
    python bench/asynchronous_search.py --smoke         # seconds: every code path, tiny runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from search_strategies import load

from runner import config as cfg
from runner.session import start

#: ``--smoke``: the defaults of a run of seconds through the same code (figures mean nothing):
#: one generation after the first, which a time budget of seconds would not reach (the workers'
#: start-up takes it), so that the asynchronous generation runs too.
SMOKE = {
    "dataset": "digits",
    "seeds": [0, 1],
    "population": 2,
    "epochs": 1,
    "generations": 1,
    "max_params": 20_000,
}

MODES = ("generational", "asynchronous")


def run_one(workdir: Path, data, seed: int, mode: str, args: argparse.Namespace) -> dict:
    """One search of ``mode``: its figures from the summary it wrote."""
    run_dir = workdir / f"{data.name}-{mode}-{seed}"
    values = {
        "dataset": data.name,
        "seed": seed,
        "run_dir": str(run_dir),
        "device": args.device,
        "executor": "local",
        "workers": args.workers,
        "population": args.population,
        "epochs": args.epochs,
        # By default far more than the budget allows: the time budget stops both searches.
        "generations": args.generations,
        "time_budget": args.budget,
        "final_epochs": args.final_epochs or args.epochs,
        "max_params": args.max_params,
        "strategy": ["tournament"],
        "asynchronous": mode == "asynchronous",
    }
    engine = start(cfg.from_dict(values), data)
    try:
        engine.run()
        individuals = sum(1 for _ in engine.store.individuals())
        # What was trained decides the rate as much as the barrier does: bigger networks train
        # longer, and the two searches need not drift to the same sizes.
        trained = [e for e in engine.store.evaluations() if e.status == "ok" and e.params]
    finally:
        engine.store.close()
    summary = json.loads((run_dir / "summary.json").read_text())
    best = summary["best"]
    return {
        "mode": mode,
        "seed": seed,
        "stopped_by": summary["stopped_by"],
        "generations": summary["generations"],
        "individuals": individuals,
        "evaluations": summary["evaluations"],
        "per_minute": 60 * summary["evaluations"] / summary["seconds"],
        "idle": summary["worker_idle_seconds"],
        "seconds": summary["seconds"],
        "val": best["search_val_accuracy"],
        "test": best["test_accuracy"],
        "params": best["params"],
        "trained_params": statistics.median(e.params for e in trained) if trained else 0,
        "training_seconds": statistics.median(e.seconds for e in trained) if trained else 0,
    }


def show(r: dict) -> str:
    idle = "-" if r["idle"] is None else f"{r['idle']:.1f} s"
    return (
        f"{r['evaluations']} evaluated ({r['individuals']} candidates, {r['generations']}"
        f" generations, stopped by {r['stopped_by']}), {r['per_minute']:.1f}/min, workers idle"
        f" {idle} in {r['seconds']:.0f} s, best val {r['val']:.4f}, test {r['test']:.4f},"
        f" {r['params']:,} params; median trained {r['trained_params']:,.0f} params in"
        f" {r['training_seconds']:.1f} s"
    )


def ratios(runs: dict, seed: int) -> tuple[float, float, float]:
    """Asynchronous / generational evaluations per minute and idle seconds, and the test
    accuracy's difference (asynchronous minus generational)."""
    a, g = runs["asynchronous", seed], runs["generational", seed]
    idle = a["idle"] / g["idle"] if a["idle"] is not None and g["idle"] else float("nan")
    return a["per_minute"] / g["per_minute"], idle, a["test"] - g["test"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="digits28")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3, help="every candidate's")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of search per run")
    parser.add_argument(
        "--generations", type=int, default=10_000, help="more than the budget allows"
    )
    parser.add_argument("--workers", type=int, default=2, help="local worker processes")
    parser.add_argument("--final-epochs", type=int, default=0, help="0: as many as --epochs")
    parser.add_argument("--max-params", type=int, default=100_000)
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
    runs: dict[tuple[str, int], dict] = {}
    print(
        f"## {args.dataset}: {args.budget:g} s of search per run, {args.workers} workers,"
        f" population {args.population}, {args.epochs} epochs per candidate, final training"
        f" {args.final_epochs or args.epochs} epochs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            data = load(args.dataset, seed)
            for mode in MODES:
                r = runs[mode, seed] = run_one(Path(tmp), data, seed, mode, args)
                print(f"  seed {seed} {mode:<12} {show(r)}", flush=True)
            speed, idle, test = ratios(runs, seed)
            print(
                f"  seed {seed} asynchronous / generational: evaluations per minute"
                f" {speed:.2f}x, idle seconds {idle:.2f}x, test accuracy {test:+.4f}",
                flush=True,
            )
    if len(args.seeds) > 1:
        print(f"\nmedian over seeds {args.seeds}")
        print("| mode | evaluated | per minute | idle s | best val | best test | params |")
        print("|---|---|---|---|---|---|---|")
        for mode in MODES:
            mine = [runs[mode, s] for s in args.seeds]
            idles = [r["idle"] for r in mine if r["idle"] is not None]
            print(
                f"| {mode} | {statistics.median(r['evaluations'] for r in mine):.0f}"
                f" | {statistics.median(r['per_minute'] for r in mine):.1f}"
                f" | {statistics.median(idles) if idles else float('nan'):.1f}"
                f" | {statistics.median(r['val'] for r in mine):.2%}"
                f" | {statistics.median(r['test'] for r in mine):.2%}"
                f" | {statistics.median(r['params'] for r in mine):,.0f} |"
            )
        each = [ratios(runs, s) for s in args.seeds]
        print(
            "asynchronous / generational, median: evaluations per minute"
            f" {statistics.median(e[0] for e in each):.2f}x, idle seconds"
            f" {statistics.median(e[1] for e in each):.2f}x, test accuracy"
            f" {statistics.median(e[2] for e in each):+.4f}"
        )
    if args.json:
        args.json.write_text(json.dumps(list(runs.values()), indent=1))


if __name__ == "__main__":
    main()
