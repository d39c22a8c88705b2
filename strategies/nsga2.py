"""NSGA-II multi-objective search (DEAP's non-dominated sorting): accuracy against network
size, compute or latency.

A failed candidate's costs are infinite. DEAP's crowding distance divides by each objective's
range on a front, which is then infinite (or infinity minus infinity), and gives NaN distances
that make the crowded sort and tournaments arbitrary; :func:`assign_crowding` is DEAP's
computation with non-finite values kept out of the ranges.
"""

from __future__ import annotations

import math
import random
from itertools import chain
from typing import Any

import attrs
from deap import tools

from .base import Strategy, StrategyError
from .spec import hookimpl

#: Objectives a run can minimise beside validation accuracy.
COSTS = ("params", "size_bytes", "flops", "latency_ms")


def _objectives(inst: NSGA2, attribute: attrs.Attribute, value: tuple) -> None:
    if len(value) < 2 or value[0] != "val_accuracy" or any(v not in COSTS for v in value[1:]):
        raise StrategyError(
            "strategies.nsga2.objectives: must be val_accuracy followed by one or more of"
            f" {', '.join(COSTS)}, got {list(value)!r}"
        )


@attrs.define
class NSGA2(Strategy):
    """Non-dominated sorting with crowding distance for survival, crowded binary tournaments
    for parents; the run keeps its Pareto front."""

    name = "nsga2"
    #: Validation accuracy (maximised) and the costs minimised against it.
    objectives: tuple[str, ...] = attrs.field(
        default=("val_accuracy", "params"), converter=tuple, validator=_objectives
    )

    @hookimpl
    def ecogen_objectives(self) -> list[str]:
        return list(self.objectives)

    @hookimpl
    def ecogen_select_survivors(self, candidates: list, count: int) -> list:
        return select_nsga2(candidates, min(count, len(candidates)))

    @hookimpl
    def ecogen_select_parents(self, population: list, count: int) -> list:
        # The crowded binary tournament of DEAP's selTournamentDCD, one draw per child: DEAP's
        # version takes at most len(population) at once and fails on counts that are not
        # multiples of 4, while children may outnumber the population.
        for front in tools.sortNondominated(population, len(population)):
            assign_crowding(front)
        if len(population) == 1:
            return population * count
        return [_crowded(*random.sample(population, 2)) for _ in range(count)]


def _crowded(a: Any, b: Any) -> Any:
    if a.fitness.dominates(b.fitness):
        return a
    if b.fitness.dominates(a.fitness):
        return b
    if a.fitness.crowding_dist != b.fitness.crowding_dist:
        return a if a.fitness.crowding_dist > b.fitness.crowding_dist else b
    return a if random.random() <= 0.5 else b


def select_nsga2(individuals: list, k: int) -> list:
    """DEAP's ``selNSGA2`` (standard variant) with :func:`assign_crowding`: whole fronts in
    order, then the most isolated of the front that does not fit."""
    fronts = tools.sortNondominated(individuals, k)
    for front in fronts:
        assign_crowding(front)
    chosen = list(chain(*fronts[:-1]))
    left = k - len(chosen)
    if left > 0:
        ranked = sorted(fronts[-1], key=lambda ind: ind.fitness.crowding_dist, reverse=True)
        chosen.extend(ranked[:left])
    return chosen


def assign_crowding(front: list) -> None:
    """Set ``fitness.crowding_dist`` on each member of ``front``, as DEAP's
    ``assignCrowdingDist`` does, but never NaN: per objective, the range is that of the
    finite values, a member with a non-finite value adds nothing, and a finite member next to
    a non-finite one is a boundary (infinite distance)."""
    if not front:
        return
    distances = [0.0] * len(front)
    crowd = [(ind.fitness.values, i) for i, ind in enumerate(front)]
    objectives = len(front[0].fitness.values)
    for j in range(objectives):
        crowd.sort(key=lambda element: element[0][j])
        distances[crowd[0][1]] = math.inf
        distances[crowd[-1][1]] = math.inf
        finite = [values[j] for values, _ in crowd if math.isfinite(values[j])]
        span = max(finite) - min(finite) if finite else 0.0
        if span == 0:
            continue
        norm = objectives * span
        for before, member, after in zip(crowd[:-2], crowd[1:-1], crowd[2:], strict=True):
            if not math.isfinite(member[0][j]):
                continue
            gap = after[0][j] - before[0][j]
            distances[member[1]] += gap / norm if math.isfinite(gap) else math.inf
    for i, distance in enumerate(distances):
        front[i].fitness.crowding_dist = distance
