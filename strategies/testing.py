"""Hypothesis strategies and checks for property-testing search strategies, ecogen's own and
yours: :func:`generations` draws a population and its evaluated children (genomes from
:mod:`operators.testing`), :func:`decide` runs one generation's decisions through a
:class:`Search`, and :func:`check_strategy` asserts what every strategy must honour.

Needs ``hypothesis`` (the ``dev`` extra).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as hs

import operators as ops
from genomics import canonical_hash, parameter_counts
from operators.testing import genomes

from .search import Search
from .spec import Context, GenerationPlan

__all__ = ["check_strategy", "decide", "generations", "individuals", "make_context"]


@hs.composite
def individuals(
    draw: hs.DrawFn,
    id: str,
    generation: int,
    shape: tuple[int, int, int] = (1, 8, 8),
    classes: int = 10,
    epochs: int = 8,
) -> ops.Individual:
    """An evaluated individual: a valid genome, a per-epoch validation history and fitness as
    the engine would record them (sometimes failed or reused)."""
    genome = draw(genomes(input_shapes=hs.just(shape), num_classes=hs.just(classes)))
    ind = ops.Individual(genome, id=id, generation=generation)
    accuracies = draw(hs.lists(hs.floats(0, 1), min_size=epochs, max_size=epochs))
    status = draw(hs.sampled_from(["ok"] * 8 + ["failed"]))
    history = [
        {"epoch": e + 1, "train_loss": 1.0, "val_accuracy": a} for e, a in enumerate(accuracies)
    ]
    if status == "failed":
        history = history[: draw(hs.integers(0, epochs))]
    val = history[-1]["val_accuracy"] if history else None
    params = sum(parameter_counts(genome).values())
    ind.evaluation = {
        "status": status,
        "reason": "",
        "fitness": [val if status == "ok" else 0.0],
        "val_accuracy": val,
        "params": params,
        "size_bytes": 4 * params,
        "flops": 2 * params,
        "latency_ms": 0.05 + params / 1e5,
        "epochs": len(history),
        "planned_epochs": epochs,
        "history": history,
        "metrics": {"planned_epochs": epochs},
    }
    ind.reused = draw(hs.booleans()) if status == "ok" else False
    ind.fitness.values = (ind.evaluation["fitness"][0],)
    return ind


@hs.composite
def generations(
    draw: hs.DrawFn, min_size: int = 1, max_size: int = 10, epochs: int = 8
) -> tuple[list[ops.Individual], list[ops.Individual]]:
    """``(population, children)``: a population of generation 0 and evaluated children of
    generation 1, on one input shape."""
    shape = draw(hs.sampled_from([(1, 8, 8), (3, 16, 16)]))
    size = draw(hs.integers(min_size, max_size))
    population = [draw(individuals(f"g0_{i}", 0, shape=shape, epochs=epochs)) for i in range(size)]
    count = draw(hs.integers(min_size, max_size))
    children = [draw(individuals(f"g1_{i}", 1, shape=shape, epochs=epochs)) for i in range(count)]
    return population, children


def make_context(
    generation: int,
    population: Sequence[Any],
    plan: GenerationPlan | None = None,
    events: list[dict] | None = None,
) -> Context:
    """A context like the engine's, with the best of ``population`` as the best so far; events
    go to ``events`` when given."""
    from .base import best_first

    events = [] if events is None else events
    seen = {canonical_hash(i.genome) for i in population}
    context = Context(
        seed=0,
        generation=generation,
        phase="",
        plan=plan or GenerationPlan(len(population), len(population), (1, 2), 8, len(population)),
        generations=10,
        mutation_config=ops.DEFAULT_CONFIG,
        best=best_first(population)[0] if population else None,
        recorder=lambda **event: events.append(event),
        known=lambda genome: canonical_hash(genome) in seen,
    )
    return context


def decide(
    search: Search,
    population: list,
    children: list,
    generation: int = 1,
    base: GenerationPlan | None = None,
) -> dict[str, Any]:
    """One generation's decisions, as the engine asks for them, in comparable form: the plan,
    proposals (genome hashes), parents, two pairs of mates (for children made by crossover),
    per-epoch stops, training advice, survivors and the next phase."""
    base = base or GenerationPlan(len(population), len(population), (1, 2), 8, len(population))
    context = make_context(generation, population, base)
    if generation == 0:
        search.next_phase([], context)
    plan = search.plan(base, context)
    context.plan = plan
    proposals = search.propose(population, context)[: plan.children]
    parents = search.select_parents(population, plan.children - len(proposals), context)
    mates = search.select_mates(population, min(2, plan.children), context)
    stops = []
    advice = []
    for child in children:
        advice.append(search.training(child, context))
        for row in child.evaluation["history"]:
            stop = search.on_epoch(child, row["epoch"], plan.epochs, row["val_accuracy"], context)
            if stop is not None:
                stops.append((child.id, row["epoch"], stop.status))
                break
    survivors = search.select_survivors(population + children, plan.population, context)
    search.generation_end(survivors, children, context)
    phase = search.next_phase(survivors, context)
    return {
        "plan": (plan.population, plan.children, tuple(plan.mutations), plan.epochs),
        "proposals": [canonical_hash(p.genome) for p in proposals],
        "parents": [p.id for p in parents],
        "mates": [(a.id, b.id) for a, b in mates],
        "stops": stops,
        "advice": [a and (a.teacher, a.temperature, a.weight) for a in advice],
        "survivors": [s.id for s in survivors],
        "phase": phase,
    }


def check_strategy(
    make: Callable[[], Sequence[Any]],
    population: list,
    children: list,
    seed: int,
) -> None:
    """Assert what every strategy (or list of strategies) ``make()`` returns must honour:
    parents and pairs of mates come from the population and survivors from the candidates, in
    the planned numbers;
    the same seed gives the same decisions; its ranking (the run's best) gives comparable keys,
    the same each time; state saved (through JSON, as in a checkpoint) and
    restored gives the same next decisions."""
    first = Search(make(), seed=seed)
    gen1 = decide(first, population, children, generation=1)
    pop_ids = {i.id for i in population}
    candidate_ids = pop_ids | {c.id for c in children}
    planned_population, planned_children, _, _ = gen1["plan"]
    assert set(gen1["parents"]) <= pop_ids, "parents must come from the population"
    assert {i for pair in gen1["mates"] for i in pair} <= pop_ids, "mates too"
    assert len(gen1["mates"]) == min(2, planned_children)
    assert len(gen1["parents"]) + len(gen1["proposals"]) == planned_children
    assert set(gen1["survivors"]) <= candidate_ids, "survivors must come from the candidates"
    assert len(gen1["survivors"]) == min(planned_population, len(candidate_ids))
    assert len(set(gen1["survivors"])) == len(gen1["survivors"]), "a survivor is kept twice"

    again = Search(make(), seed=seed)
    assert decide(again, population, children, generation=1) == gen1, "same seed, same choices"

    ranking = first.ranking()
    assert isinstance(ranking.objective, str) and ranking.objective, "a ranking says what it is"
    keys = [ranking.key(i) for i in population + children]
    assert all(isinstance(k, tuple) for k in keys), "ranking keys must be tuples"
    sorted(keys)  # the run's best is a max over them: they must compare
    assert keys == [again.ranking().key(i) for i in population + children], "keys must repeat"

    saved = json.loads(json.dumps(first.save_state()))
    restored = Search(make(), seed=seed + 1)
    restored.load_state(saved)
    next_population = [i for i in population + children if i.id in gen1["survivors"]]
    assert decide(restored, next_population, children, generation=2) == decide(
        first, next_population, children, generation=2
    ), "restored state must give the same next decisions"
