"""How well each zero-cost proxy ranks genomes by the accuracy they reach when trained.

Genomes are drawn as a search makes them: the random first genomes of ``init = "random"`` (within
the FLOPs budget and ``--max-params``), and mutated children (1-2 mutations, as
``mutations_per_child``) of a genome drawn earlier, each made by ``runner.evolution.variation`` as
the engine makes its children; a genome drawn twice is drawn again. Each is scored by every
registered proxy exactly as screening scores a candidate (compiled with its seed, one minibatch of
the training split drawn with the run's seed, on the CPU), then trained from those same weights for
``--epochs`` epochs. Reported per proxy: Spearman's rank correlation with the validation accuracy
reached (scipy.stats.spearmanr) and its p-value, the share of the proxy's top half that is in the
accuracy's top half (what ``screen_keep = 0.5`` keeps; 50% by chance) and the milliseconds a score
takes; the parameter count is the baseline a proxy should beat.

Datasets as in bench/search_strategies.py: ``digits`` (8x8, bundled) or ``digitsN``, built in
memory (each digit upscaled, shifted at random in an N x N image, drowned in noise).

    python bench/proxy_correlation.py     # 40 genomes on digits16, 3 epochs each
    python bench/proxy_correlation.py --dataset digits28 --genomes 60 --epochs 4
    python bench/proxy_correlation.py --smoke    # seconds: 4 genomes, 1 epoch, digits
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from search_strategies import load

import operators as ops
import phenotypes as ph
import phenotypes.proxies as phx
from genomics import canonical_hash, parameter_counts
from runner import config as cfg
from runner import proxies
from runner import rng as rngs
from runner.evolution import variation
from runner.evolution.population import initial_genomes

#: ``--smoke``: the defaults of a run of seconds through the same code (figures mean nothing).
SMOKE = {"dataset": "digits", "genomes": 4, "epochs": 1}


def draw(experiment: cfg.Experiment, data: ph.Dataset, count: int, share: float) -> list[tuple]:
    """``count`` distinct ``(id, genome, origin)``: ``1 - share`` of them random first
    genomes, the rest mutated children of genomes drawn before them."""
    rng = random.Random(experiment.seed)
    config = experiment.mutation_config()
    first = max(1, round(count * (1 - share)))
    genomes = initial_genomes(experiment, data, rng, config, first)
    drawn: list[tuple] = []
    seen: set[str] = set()
    for genome in genomes:
        if canonical_hash(genome) not in seen:
            seen.add(canonical_hash(genome))
            drawn.append((f"g0_{len(drawn)}", genome, "random"))
    while len(drawn) < count:
        _, parent, _ = rng.choice(drawn)
        child = ops.Individual(parent, id=f"g1_{len(drawn)}")
        mutations = experiment.mutations_per_child
        failure = variation.vary(child, None, rng, config, experiment, mutations)
        if failure is None and (canonical_hash(child.genome) not in seen):
            seen.add(canonical_hash(child.genome))
            drawn.append((child.id, child.genome, "child"))
    return drawn


def top_half_hits(scores: list[float], accuracies: list[float]) -> float:
    """The share of the top half by ``scores`` that is in the top half by ``accuracies``."""
    half = len(scores) // 2
    if half == 0:
        return float("nan")
    best = set(np.argsort(-np.asarray(accuracies), kind="stable")[:half])
    chosen = np.argsort(-np.asarray(scores), kind="stable")[:half]
    return sum(i in best for i in chosen) / half


def table(trained: list[dict], names: list[str]) -> None:
    """Each proxy's figures over the ``trained`` genomes, the parameter count's first."""
    print(
        "\n| proxy | Spearman ρ with val accuracy | p | top half in top half | ρ with params"
        " | scored | ms per genome |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in ["params", *names]:
        scored = [r for r in trained if r[name] is not None]
        values = [float(r[name]) for r in scored]
        accuracy = [r["val_accuracy"] for r in scored]
        rho, p = spearmanr(values, accuracy) if len(scored) > 2 else (float("nan"),) * 2
        size = spearmanr(values, [r["params"] for r in scored])[0] if len(scored) > 2 else rho
        ms = "-"
        if name != "params" and scored:
            ms = f"{statistics.median(r[f'{name}_ms'] for r in scored):.0f}"
        print(
            f"| {name} | {rho:+.2f} | {p:.2g} | {top_half_hits(values, accuracy):.0%}"
            f" | {size:+.2f} | {len(scored)} of {len(trained)} | {ms} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits16")
    parser.add_argument("--genomes", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per genome")
    parser.add_argument("--children", type=float, default=0.5, help="share of mutated children")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-params", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="write every genome's figures here")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the same code at a tiny size, in seconds: checks that the script runs",
    )
    if parser.parse_known_args()[0].smoke:
        parser.set_defaults(**SMOKE)
    args = parser.parse_args()
    data = load(args.dataset, args.seed)
    experiment = cfg.from_dict(
        {"dataset": data.name, "seed": args.seed, "device": "cpu", "max_params": args.max_params}
    )
    names = proxies.names()
    x, y = phx.minibatch(data, experiment.batch_size, experiment.seed)
    print(
        f"## {data.name}: {args.genomes} genomes ({args.children:.0%} mutated children),"
        f" {args.epochs} epochs each, minibatch {len(y)}, max_params {args.max_params:,}",
        flush=True,
    )
    rows = []
    for gid, genome, origin in draw(experiment, data, args.genomes, args.children):
        seed = rngs.seed_for(experiment.seed, gid)
        row = {"id": gid, "origin": origin, "params": sum(parameter_counts(genome).values())}
        for name in names:
            t = time.perf_counter()
            score = phx.score(genome, proxies.get(name).function, x, y, seed=seed, name=name)
            row[name] = score.value
            row[f"{name}_ms"] = (time.perf_counter() - t) * 1000
            if not score.ok:
                row[f"{name}_failure"] = score.failure
        spec = ph.TrainSpec(
            epochs=args.epochs,
            batch_size=experiment.batch_size,
            lr=experiment.lr,
            schedule=experiment.schedule,
            device="cpu",
            seed=seed,
        )
        t = time.perf_counter()
        result = ph.train(ph.compile_genome(genome, seed=seed), data, spec)
        row["train_ms"] = (time.perf_counter() - t) * 1000
        row["val_accuracy"] = result.val_accuracy if result.status == "completed" else None
        rows.append(row)
        print(
            f"  {gid} {origin:<6} params {row['params']:>7,} val {row['val_accuracy'] or 0:.4f} "
            + " ".join(f"{n} {row[n]:.4g}" if row[n] is not None else f"{n} -" for n in names),
            flush=True,
        )
    trained = [r for r in rows if r["val_accuracy"] is not None]
    if not trained:
        raise SystemExit("no genome trained to the end: nothing to correlate")
    accuracies = [r["val_accuracy"] for r in trained]
    print(
        f"\n{len(trained)} of {len(rows)} trained; validation accuracy median"
        f" {statistics.median(accuracies):.2%}, range {min(accuracies):.2%}-{max(accuracies):.2%};"
        f" training {statistics.median(r['train_ms'] for r in trained) / 1000:.2f} s per genome"
    )
    table(trained, names)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    main()
