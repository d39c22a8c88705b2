"""The classic selections (thesis slide "classic selection methods"), with DEAP's tools."""

from __future__ import annotations

import attrs
from deap import tools

from .base import Strategy, at_least, best_first
from .spec import hookimpl


@attrs.define
class Tournament(Strategy):
    """Tournament selection of parents (DEAP ``selTournament``); the fittest survive."""

    name = "tournament"
    #: Individuals drawn for each tournament.
    size: int = attrs.field(default=3, validator=at_least(1))

    @hookimpl
    def ecogen_select_parents(self, population: list, count: int) -> list:
        return tools.selTournament(population, count, min(self.size, len(population)))


@attrs.define
class UniformRandom(Strategy):
    """Uniform random sampling of parents (DEAP ``selRandom``)."""

    name = "random"

    @hookimpl
    def ecogen_select_parents(self, population: list, count: int) -> list:
        return tools.selRandom(population, count)


@attrs.define
class Roulette(Strategy):
    """Fitness-proportional sampling of parents (DEAP ``selRoulette``)."""

    name = "roulette"

    @hookimpl
    def ecogen_select_parents(self, population: list, count: int) -> list:
        if not any(ind.fitness.values[0] > 0 for ind in population):
            return tools.selRandom(population, count)  # all zero: proportional is uniform
        return tools.selRoulette(population, count)


def default_parents(population: list, count: int) -> list:
    """The engine's parent selection when no strategy chooses: a tournament of 3."""
    return tools.selTournament(population, count, min(3, len(population)))


def default_survivors(candidates: list, count: int) -> list:
    """The engine's survival when no strategy chooses: the ``count`` best, (mu + lambda)."""
    return best_first(candidates)[:count]
