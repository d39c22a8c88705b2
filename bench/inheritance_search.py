"""The same search with and without weight inheritance, at equal training epochs.

Each run is a tournament search with the same budget of training epochs (``max_epochs``) and
the same size limit; one variant trains every candidate from scratch, the other lets every child
start from its parent's trained weights (``inherit = true``, ``inherit_epochs`` epochs each:
``--inherit-epochs``, 0 for a quarter of ``--epochs``). Reported per variant (median over seeds):

- the best validation accuracy the search found, and the training epochs it spent until its
  best first reached the from-scratch run's final best (same seed): the inherited run's share of
  the scratch run's is the "epochs to match" ratio;
- the test accuracy of the best after its final training (from scratch in both variants);
- the validation accuracy of children before any training: inherited children (their parent's
  weights, what they know at epoch 0) against scratch children (random weights).

Datasets as in bench/search_strategies.py: ``digits`` (8x8, bundled) or ``digitsN``, built in
memory (each digit upscaled, shifted at random in an N x N image, drowned in noise).

    python bench/inheritance_search.py      # digits16, seeds 0-2
    python bench/inheritance_search.py --dataset digits28 --budget 320
    python bench/inheritance_search.py --smoke    # seconds: one seed, tiny searches
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
from search_strategies import load

import phenotypes as ph
from runner import config as cfg
from runner import rng
from runner.session import start

#: ``--smoke``: the defaults of a run of seconds through the same code (figures mean nothing).
SMOKE = {"seeds": [0], "population": 3, "epochs": 2, "budget": 10, "final_epochs": 1}


def run_one(workdir: Path, data, seed: int, inherit: bool, args) -> dict:
    run_dir = workdir / f"{data.name}-{inherit}-{seed}"
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
            "inherit": inherit,
            "inherit_epochs": args.inherit_epochs,
        }
    )
    engine = start(experiment, data)
    try:
        summary = engine.run()
        rows = {r["evaluation"]: r for r in engine.store.individuals()}
        evaluations = list(engine.store.evaluations())
        spec = attrs.evolve(engine.spec, seed=seed, epochs=args.final_epochs)
    finally:
        engine.store.close()
    # What final_from = "weights" would give: the best's search weights trained on for the
    # same final epochs (the file is kept: it is the best's).
    from_weights = None
    if inherit:
        _, model = ph.load_model(run_dir / "weights" / f"{summary['best']['id']}.pt")
        ph.train(model, data, spec)
        from_weights = ph.evaluate(model, data.x_test, data.y_test)
    spent, curve, starts, scratch = 0, [], [], []
    for evaluation in evaluations:
        spent += evaluation.epochs
        if evaluation.ok and evaluation.val_accuracy is not None:
            curve.append((spent, evaluation.val_accuracy))
        if "start_val_accuracy" in evaluation.metrics:
            starts.append(evaluation.metrics["start_val_accuracy"])
        row = rows.get(evaluation.id)
        if not inherit and row is not None and row["generation"] > 0 and len(scratch) < 20:
            scratch.append(_start_accuracy(row, seed, data))
    return {
        "inherit": inherit,
        "seed": seed,
        "val": summary["best"]["search_val_accuracy"],
        "test": summary["best"]["test_accuracy"],
        "test_from_weights": from_weights,
        "params": summary["best"]["params"],
        "epochs": summary["epochs_trained"],
        "evaluations": summary["evaluations"],
        "curve": curve,
        "start": statistics.mean(starts or scratch) if (starts or scratch) else None,
        "inherited": len(starts),
        "weights_bytes": summary.get("weights_bytes", 0),
        "seconds": summary["seconds"],
    }


def _start_accuracy(row: dict, seed: int, data) -> float:
    """A scratch child's validation accuracy before training: its network as the search
    compiled it (the same seed)."""
    from genomics import loads

    model = ph.compile_genome(loads(row["genome"]), seed=rng.seed_for(seed, row["id"]))
    return ph.evaluate(model, data.x_val, data.y_val)


def _median_or_dash(values) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):.2%}" if known else "-"


def epochs_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    """Epochs spent when the run's best first reached ``target`` (None: never)."""
    for spent, accuracy in curve:
        if accuracy >= target - 1e-9:
            return spent
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits16")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8, help="per candidate")
    parser.add_argument("--inherit-epochs", type=int, default=0, help="0: a quarter of --epochs")
    parser.add_argument("--budget", type=int, default=240, help="training epochs per run")
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
        f"## {args.dataset}: population {args.population}, {args.epochs} epochs per candidate"
        f" (inherited children: {args.inherit_epochs or -(-args.epochs // 4)}), {args.budget}"
        f" training epochs per run, final training {args.final_epochs} epochs from scratch,"
        f" max_params {args.max_params:,}"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            data = load(args.dataset, seed)
            for inherit in (False, True):
                t = time.perf_counter()
                r = run_one(Path(tmp), data, seed, inherit, args)
                results.append(r)
                print(
                    f"  seed {seed} {'inherit' if inherit else 'scratch'}: val {r['val']:.4f}"
                    f" test {r['test']:.4f} params {r['params']:,} epochs {r['epochs']}"
                    + (
                        f" (final training from its weights: {r['test_from_weights']:.4f})"
                        if inherit
                        else ""
                    )
                    + f" evaluations {r['evaluations']} children at epoch 0"
                    f" {r['start'] or 0:.4f} ({time.perf_counter() - t:.0f} s)",
                    flush=True,
                )
    ratios = []
    for seed in args.seeds:
        scratch, inherited = (
            next(r for r in results if r["seed"] == seed and r["inherit"] is i)
            for i in (False, True)
        )
        target = scratch["val"]
        mine, theirs = (
            epochs_to_reach(inherited["curve"], target),
            epochs_to_reach(scratch["curve"], target),
        )
        ratio = mine / theirs if mine is not None and theirs else None
        ratios.append(ratio)
        inherited["to_match"], scratch["to_match"] = mine, theirs
        print(
            f"  seed {seed}: scratch's best {target:.4f} reached after {theirs} epochs from"
            f" scratch, {mine if mine is not None else 'never'} with inheritance"
            + (f" ({ratio:.2f}x)" if ratio is not None else "")
        )
    print(
        "\n| variant | best val | best test | best test, final from its weights | epochs to"
        " scratch's best | children's val at epoch 0 | evaluations | runs (test) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for inherit in (False, True):
        mine = [r for r in results if r["inherit"] is inherit]
        reached = [r["to_match"] for r in mine if r["to_match"] is not None]
        print(
            f"| {'inherit' if inherit else 'scratch'}"
            f" | {statistics.median(r['val'] for r in mine):.2%}"
            f" | {statistics.median(r['test'] for r in mine):.2%}"
            f" | {_median_or_dash(r['test_from_weights'] for r in mine)}"
            f" | {statistics.median(reached) if reached else 'never'}"
            f" ({len(reached)} of {len(mine)} runs)"
            f" | {statistics.median(r['start'] for r in mine if r['start'] is not None):.2%}"
            f" | {statistics.median(r['evaluations'] for r in mine):.0f}"
            f" | {', '.join(format(r['test'], '.2%') for r in mine)} |"
        )
    known = [r for r in ratios if r is not None]
    print(
        f"\nepochs to reach the scratch run's best, inherited / scratch: median"
        f" {statistics.median(known):.2f}x"
        if known
        else "\nthe inherited runs never reached the scratch runs' best",
        f"({', '.join('never' if r is None else f'{r:.2f}x' for r in ratios)})",
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
