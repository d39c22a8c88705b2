"""Regularized evolution (Real, Aggarwal, Huang, Le, AAAI 2019) as an ecogen strategy.

Each child's parent is the best of ``sample`` individuals drawn at random from the population;
survival is by age, not fitness: the oldest individuals die, whatever their accuracy. Ageing
keeps the population young, so a network that was lucky once cannot stay forever.
"""

from __future__ import annotations

import random

from strategies import Strategy, StrategyError, best_first, hookimpl


class Ageing(Strategy):
    """Regularized (ageing) evolution: tournament-sampled parents, the oldest die."""

    name = "ageing"

    def __init__(self, sample: int = 3) -> None:
        if not isinstance(sample, int) or sample < 1:
            raise StrategyError(
                f"strategies.ageing.sample: must be an integer >= 1, got {sample!r}"
            )
        self.sample = sample

    @hookimpl
    def ecogen_select_parents(self, population: list, count: int) -> list:
        # ecogen runs every hook with `random` set to the run's own saved stream, so these
        # draws are reproducible and resume exactly.
        size = min(self.sample, len(population))
        return [best_first(random.sample(population, size))[0] for _ in range(count)]

    @hookimpl
    def ecogen_select_survivors(self, candidates: list, count: int) -> list:
        # Candidates arrive as the last population followed by this generation's children;
        # the youngest `count` live on (newest generation first, then the latest made).
        by_age = sorted(
            range(len(candidates)), key=lambda i: (candidates[i].generation, i), reverse=True
        )
        return [candidates[i] for i in sorted(by_age[:count])]
