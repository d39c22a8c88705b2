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
import strategies as st
from genomics import canonical_hash

from ..failures import failed_evaluation, mutation_failure
from ..records import Evaluation
from .candidate import Candidate


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
) -> Evaluation | None:
    """Make ``child`` (a copy of its first parent): crossed with ``mate`` when given, then
    mutated. A crossover or mutation that raises (a plugin's, say) fails this child, not the
    run: the failed evaluation is returned (the child is stored with it, never trained)."""
    if mate is not None and mate.id not in child.parents:  # with itself: itself, no crossover
        try:
            genome, name = ops.cross(
                child.genome, mate.genome, rng=rng, config=config,
                weights=experiment.crossover_weights,
            )  # fmt: skip
        except Exception as exc:
            return failed_evaluation(
                exc, time.perf_counter(), metrics={"stage": "mutation"}, prefix="crossover: "
            )
        if name is not None:
            child.genome = genome
            child.operators.append(name)
            child.parents.append(mate.id)
    try:
        ops.mutate(child, rng=rng, config=config, weights=experiment.weights, count=mutations)
    except Exception as exc:
        return mutation_failure(exc)
    return None


def children(engine: Any, gen: int, context: st.Context) -> list[Candidate]:
    """Generation ``gen``'s children: the strategies' proposals, then mutated parents, some of
    them crossed with a mate first; with ``screen``, the ``screen_keep`` share of them its
    proxy scores best (``runner.evolution.screening``)."""
    e = engine.experiment
    count = engine.state.plan.children
    if not e.screen:
        return _made(engine, gen, context, count)
    from . import screening  # with torch, imported where used as elsewhere in the runner

    made = _made(engine, gen, context, screening.pool_size(count, e.screen_keep))

    def refusal(candidate: Candidate) -> str | None:
        genome = candidate.individual.genome
        refused = engine.costs.refusal(genome, canonical_hash(genome))
        return None if refused is None else refused.reason

    limited = e.max_params or e.max_flops or e.max_latency_ms
    kept, records = screening.screen(
        made, count, e.screen, engine.data, e.batch_size, e.seed, refusal if limited else None
    )
    for record in records:
        engine.events.record("screened", "engine", record.pop("id"), {"proxy": e.screen, **record})
    return kept


def proposed(engine: Any, gen: int, context: st.Context, count: int) -> list[Candidate]:
    """Generation ``gen``'s first children: up to ``count`` of the strategies' proposals
    (gene duplication), each recorded with its note."""
    made: list[Candidate] = []
    for proposal in engine.search.propose(engine.state.population, context)[:count]:
        child = engine.individual(
            proposal.genome, f"g{gen}_{len(made)}", list(proposal.parents), gen
        )
        child.operators = list(proposal.operators)
        engine.events.record("proposed", proposal.source or "strategy", child.id, proposal.note)
        made.append(Candidate(child, copies=dict(proposal.copies)))
    return made


def _made(engine: Any, gen: int, context: st.Context, count: int) -> list[Candidate]:
    search, population = engine.search, engine.state.population
    made = proposed(engine, gen, context, count)
    crossed = crossing(engine.rng, engine.experiment.crossover_rate, count - len(made))
    parents = iter(search.select_parents(population, crossed.count(False), context))
    mates = iter(search.select_mates(population, crossed.count(True), context))
    for cross in crossed:
        parent, mate = next(mates) if cross else (next(parents), None)
        child = engine.individual(parent.genome, f"g{gen}_{len(made)}", [parent.id], gen)
        failure = vary(
            child,
            mate,
            engine.rng,
            engine.mutation_config,
            engine.experiment,
            engine.state.plan.mutations,
        )
        made.append(Candidate(child, failure=failure))
    return made
