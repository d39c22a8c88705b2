"""``mutate`` (several weighted mutations per child) and the DEAP toolbox factory."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from deap import base, tools

from genomics import Genome

from .config import DEFAULT_CONFIG, MutationConfig
from .errors import NotApplicable
from .individual import Individual
from .mating import mate, registered_crossovers
from .registry import registered


def mutate(
    individual: Individual | Genome,
    rng: random.Random | None = None,
    config: MutationConfig = DEFAULT_CONFIG,
    operators: Iterable[str] | None = None,
    weights: Mapping[str, float] | None = None,
    count: tuple[int, int] = (1, 1),
) -> tuple[Any]:
    """Apply ``count[0]`` to ``count[1]`` mutations (uniformly many), each drawn by ``weights``
    (default: each operator's registered weight, 1 for the thesis table) among ``operators``
    (default: every registered one). A drawn mutation that
    does not apply is set aside and another is drawn; when none applies the genome stays.
    DEAP's convention: returns a 1-tuple; an Individual is changed in place."""
    rng = rng if rng is not None else random.Random(random.getrandbits(64))
    table = registered()
    names = list(operators) if operators is not None else list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise KeyError(f"no operator named {', '.join(map(repr, unknown))}")
    weights = {n: table[n].weight for n in names} | dict(weights or {})
    genome = individual if isinstance(individual, Genome) else individual.genome
    applied = []
    for _ in range(rng.randint(*count)):
        pool = [n for n in names if weights[n] > 0]
        while pool:
            name = rng.choices(pool, weights=[weights[n] for n in pool])[0]
            try:
                genome = table[name].apply(genome, rng, config)
            except NotApplicable:
                pool.remove(name)
                continue
            applied.append(name)
            break
    if isinstance(individual, Genome):
        return (genome,)
    individual.genome = genome
    individual.operators.extend(applied)
    if applied:
        del individual.fitness.values
    return (individual,)


def make_toolbox(
    *,
    rng: random.Random | None = None,
    config: MutationConfig = DEFAULT_CONFIG,
    operators: Iterable[str] | None = None,
    weights: Mapping[str, float] | None = None,
    mutations_per_child: tuple[int, int] = (1, 1),
    evaluate: Callable[[Individual], tuple[float, ...]] | None = None,
    tournament_size: int = 3,
    fitness_weights: tuple[float, ...] = (1.0,),
    map: Callable = map,
    crossovers: Iterable[str] | None = None,
    crossover_weights: Mapping[str, float] | None = None,
) -> base.Toolbox:
    """A ``deap.base.Toolbox`` with every registered mutation and crossover under its name,
    plus ``mutate``, ``mate`` (a crossover drawn by ``crossover_weights`` among
    ``crossovers``, default: every registered one), ``clone``, ``select`` (tournament),
    ``individual`` (Individual from a genome), ``map`` and, when given, ``evaluate``. DEAP's
    ``eaSimple`` and ``eaMuPlusLambda`` run on it unchanged, crossover included (``cxpb > 0``).
    Everything registered is a module-level callable, so the toolbox pickles."""
    toolbox = base.Toolbox()
    for name, info in registered().items():
        toolbox.register(name, info.function, rng=rng, config=config)
    for name, info in registered_crossovers().items():
        if not hasattr(toolbox, name):  # a mutation's name wins
            toolbox.register(name, info.function, rng=rng, config=config)
    toolbox.register(
        "mate",
        mate,
        rng=rng,
        config=config,
        names=tuple(crossovers) if crossovers is not None else None,
        weights=dict(crossover_weights) if crossover_weights else None,
    )
    toolbox.register(
        "mutate",
        mutate,
        rng=rng,
        config=config,
        operators=tuple(operators) if operators is not None else None,
        weights=dict(weights) if weights else None,
        count=tuple(mutations_per_child),
    )
    toolbox.register("clone", copy.deepcopy)
    toolbox.register("select", tools.selTournament, tournsize=tournament_size)
    toolbox.register("individual", Individual, weights=fitness_weights)
    toolbox.register("map", map)
    if evaluate is not None:
        toolbox.register("evaluate", evaluate)
    return toolbox
