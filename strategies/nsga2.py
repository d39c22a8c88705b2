"""NSGA-II multi-objective search (DEAP ``selNSGA2``): accuracy against network size."""

from __future__ import annotations

import random
from typing import Any

import attrs
from deap import tools

from .base import Strategy, StrategyError
from .spec import hookimpl

#: Objectives a run can minimise beside validation accuracy.
COSTS = ("params", "size_bytes", "flops")


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
        return tools.selNSGA2(candidates, min(count, len(candidates)))

    @hookimpl
    def ecogen_select_parents(self, population: list, count: int) -> list:
        # The crowded binary tournament of DEAP's selTournamentDCD, one draw per child: DEAP's
        # version takes at most len(population) at once and fails on counts that are not
        # multiples of 4, while children may outnumber the population.
        for front in tools.sortNondominated(population, len(population)):
            tools.emo.assignCrowdingDist(front)
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
