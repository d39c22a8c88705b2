"""Mutation and compilation speed, each against a baseline measured in the same run.

- Mutations per second, each mutation including the validation of its result (drawn by
  ``operators.mutate`` among all registered operators, along chains so genomes keep changing).
  Baseline: ``genomics.validate`` alone on the same genomes; the ratio says how many
  validations one mutation costs.
- Genome-to-module compile time per genome (``phenotypes.compile_genome``). Baseline: one
  training step (forward and backward, batch 64) of the compiled module; the ratio says how many
  training steps a compilation costs.

    python bench/mutation_speed.py                    # digits-shaped genomes (1, 8, 8)
    python bench/mutation_speed.py --shape 3,32,32    # CIFAR-shaped genomes
    python bench/mutation_speed.py --smoke            # seconds: a few genomes
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
import torch.nn.functional as F

import genomics as G
import operators as ops
import phenotypes as ph

#: ``--smoke``: the defaults of a run of seconds through the same code, to check that the script
#: works (its figures mean nothing); options given still win.
SMOKE = {"mutations": 40, "compiles": 4}


def genomes_along_chains(shape, classes, count: int, seed: int) -> list[G.Genome]:
    rng = random.Random(seed)
    out = []
    genome = G.random_genome(rng, shape, classes)
    for i in range(count):
        if i % 20 == 0:  # a fresh start now and then, so that depth stays typical
            genome = G.random_genome(rng, shape, classes)
        (genome,) = ops.mutate(genome, rng=rng)
        out.append(genome)
    return out


def time_mutations(genomes: list[G.Genome], seed: int) -> tuple[float, float]:
    """Seconds per mutation (with validation) and per bare validation, on the same genomes."""
    rng = random.Random(seed)
    start = time.perf_counter()
    for genome in genomes:
        ops.mutate(genome, rng=rng)
    mutation = (time.perf_counter() - start) / len(genomes)
    start = time.perf_counter()
    for genome in genomes:
        G.validate(genome)
    validation = (time.perf_counter() - start) / len(genomes)
    return mutation, validation


def time_compile(genomes: list[G.Genome]) -> tuple[float, float]:
    """Median seconds to compile a genome and to run one training step of the result."""
    compile_s, step_s = [], []
    for genome in genomes:
        start = time.perf_counter()
        model = ph.compile_genome(genome, seed=0)
        compile_s.append(time.perf_counter() - start)
        x = torch.randn(64, *genome.input_shape)
        y = torch.randint(0, genome.num_classes, (64,))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        F.cross_entropy(model(x), y).backward()  # warm-up
        start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        step_s.append(time.perf_counter() - start)
    return statistics.median(compile_s), statistics.median(step_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="1,8,8", help="input shape C,H,W")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--mutations", type=int, default=2000)
    parser.add_argument("--compiles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the same code at a tiny size, in seconds: checks that the script runs",
    )
    if parser.parse_known_args()[0].smoke:
        parser.set_defaults(**SMOKE)
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    torch.set_num_threads(max(torch.get_num_threads(), 1))

    genomes = genomes_along_chains(shape, args.classes, args.mutations, args.seed)
    nodes = statistics.mean(len(g) for g in genomes)
    mutation, validation = time_mutations(genomes, args.seed)
    print(f"genomes {shape}, {args.classes} classes, {nodes:.1f} nodes on average")
    print(
        f"mutations (with validation): {1 / mutation:,.0f}/s ({mutation * 1e3:.3f} ms each);"
        f" validation alone {validation * 1e3:.3f} ms; ratio {mutation / validation:.2f}"
    )
    sample = genomes[:: max(len(genomes) // args.compiles, 1)][: args.compiles]
    compile_s, step_s = time_compile(sample)
    print(
        f"compile: {compile_s * 1e3:.2f} ms per genome (median of {len(sample)});"
        f" one training step (batch 64) {step_s * 1e3:.2f} ms; ratio {compile_s / step_s:.2f}"
    )


if __name__ == "__main__":
    main()
