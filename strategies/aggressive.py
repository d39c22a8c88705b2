"""Aggressive selection (AG-Evolution): only the top k of each generation have children."""

from __future__ import annotations

import math

import attrs

from .base import Strategy, StrategyError, best_first, pair, to_pair
from .spec import Context, GenerationPlan, hookimpl


def _fraction(inst: Aggressive, attribute: attrs.Attribute, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise StrategyError(f"strategies.aggressive.keep: must be in (0, 1], got {value!r}")


@attrs.define
class Aggressive(Strategy):
    """Keep the top ``keep`` fraction (k = ceil(P * keep)) of the population, eliminate the
    rest, spread the P children evenly over the k survivors and, when ``mutations`` is set, give
    each child several mutations to win back the diversity aggressive selection removes."""

    name = "aggressive"
    #: Fraction of the population that survives (AG-Evolution default: 1/4).
    keep: float = attrs.field(default=0.25, validator=_fraction)
    #: Mutations per child, [low, high]; unset: the plan's (succession may set them).
    mutations: tuple[int, int] | None = attrs.field(default=None, converter=to_pair, validator=pair)

    def kept(self, population: int) -> int:
        return max(1, math.ceil(population * self.keep))

    @hookimpl(trylast=True)
    def ecogen_plan(self, plan: GenerationPlan) -> None:
        # After the other strategies: split whatever population they planned into k kept and P
        # children, so the compute per generation stays P evaluations.
        plan.children = max(plan.children, plan.population)
        plan.population = self.kept(plan.population)
        if self.mutations is not None:
            plan.mutations = self.mutations

    @hookimpl
    def ecogen_select_parents(self, population: list, count: int, context: Context) -> list:
        survivors = best_first(population)[: context.plan.population]
        return [survivors[i % len(survivors)] for i in range(count)]
