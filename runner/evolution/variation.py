"""How the engine makes a child from its parents: crossed with a mate with probability
``crossover_rate``, then mutated, as every child is.

This is DEAP's ``varAnd`` with ``mutpb`` 1: crossover and mutation both, crossover first. A
crossed child has both parents' ids (``[first, second]``; the first gave its structure) and the
crossover's name before the mutations' in ``operators``; a pair of mates that is one individual
twice is no crossover (a genome crossed with itself is itself), only a mutated copy. Every draw
comes from the engine's own generator (exact resumption depends on it); with ``crossover_rate``
0 nothing more is drawn than before crossover existed, so such a run, and every stored one, goes
as it went.
"""

from __future__ import annotations

import random
import time
from typing import Any

import operators as ops

from ..failures import failed_evaluation, mutation_failure


def crossing(rng: random.Random, rate: float, count: int) -> list[bool]:
    """Which of ``count`` children are made by crossover: one draw each, none at rate 0."""
    if not rate:
        return [False] * count
    return [rng.random() < rate for _ in range(count)]


def vary(
    child: ops.Individual,
    mate: ops.Individual | None,
    rng: random.Random,
    config: ops.MutationConfig,
    experiment: Any,
    mutations: tuple[int, int],
) -> None:
    """Make ``child`` (a copy of its first parent): crossed with ``mate`` when given, then
    mutated. A crossover or mutation that raises (a plugin's, say) fails this child, not the
    run: it is stored as failed (``child.mutation_failure``) and never trained."""
    if mate is not None and mate.id not in child.parents:  # with itself: itself, no crossover
        try:
            genome, name = ops.cross(
                child.genome, mate.genome, rng=rng, config=config,
                weights=experiment.crossover_weights,
            )  # fmt: skip
        except Exception as exc:
            child.mutation_failure = failed_evaluation(
                exc, time.perf_counter(), metrics={"stage": "mutation"}, prefix="crossover: "
            )
            return
        if name is not None:
            child.genome = genome
            child.operators.append(name)
            child.parents.append(mate.id)
    try:
        ops.mutate(child, rng=rng, config=config, weights=experiment.weights, count=mutations)
    except Exception as exc:
        child.mutation_failure = mutation_failure(exc)
