"""Cost-aware selection: one objective that folds a network's cost into its accuracy, MnasNet's
reward (Tan et al. 2019, "MnasNet: Platform-Aware Neural Architecture Search for Mobile").

    reward = accuracy * (cost / target) ** weight

with ``weight`` negative (MnasNet: -0.07): a network at the ``target`` cost keeps its accuracy,
one twice as expensive loses about 5% of it (2 ** -0.07 = 0.953), one half as expensive gains
about 5%. Parents are drawn by tournament on the reward and the best rewards survive; a failed
candidate's reward is 0. The run's limits (``max_params``, ``max_flops``, ``max_latency_ms``)
still hold; the reward only says which of the networks within them to prefer.
"""

from __future__ import annotations

import math
import random
from typing import Any

import attrs

from .base import Strategy, StrategyError, at_least, rank_key
from .nsga2 import COSTS
from .spec import Context, Ranking, hookimpl


def _cost(inst: CostAware, attribute: attrs.Attribute, value: str) -> None:
    if value not in COSTS:
        raise StrategyError(
            f"strategies.cost-aware.cost: must be one of {', '.join(COSTS)}, got {value!r}"
        )


def _target(inst: CostAware, attribute: attrs.Attribute, value: Any) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise StrategyError(
            f"strategies.cost-aware.target: must be a finite number > 0, got {value!r}"
        )


def _weight(inst: CostAware, attribute: attrs.Attribute, value: Any) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value > 0:
        raise StrategyError(
            f"strategies.cost-aware.weight: must be a finite number <= 0 (MnasNet: -0.07), got"
            f" {value!r}"
        )


@attrs.define
class CostAware(Strategy):
    """Selection by accuracy times (cost / target) ** weight, MnasNet's reward: tournament
    parents and the best rewards survive."""

    name = "cost-aware"
    #: The cost folded in: params, size_bytes, flops (per image) or latency_ms.
    cost: str = attrs.field(default="flops", validator=_cost)
    #: The cost at which the reward is the accuracy.
    target: float = attrs.field(default=1_000_000.0, validator=_target)
    #: The exponent: how much accuracy a doubling of the cost is worth (negative).
    weight: float = attrs.field(default=-0.07, validator=_weight)
    #: Individuals drawn for each parent's tournament.
    size: int = attrs.field(default=3, validator=at_least(1))

    def reward(self, individual: Any) -> float:
        """The individual's accuracy times ``(cost / target) ** weight``; 0 when it failed,
        and its accuracy when its cost is unknown (an evaluation from before it was measured)."""
        evaluation = individual.evaluation or {}
        if evaluation.get("status") == "failed":
            return 0.0
        accuracy = individual.fitness.values[0]
        cost = evaluation.get(self.cost)
        if cost is None or not math.isfinite(cost):
            return accuracy
        return accuracy * (max(float(cost), 1e-9) / self.target) ** self.weight

    def _key(self, individual: Any) -> tuple:
        return (self.reward(individual), *rank_key(individual))

    @hookimpl
    def ecogen_select_parents(self, population: list, count: int) -> list:
        size = min(self.size, len(population))
        return [
            max((random.choice(population) for _ in range(size)), key=self._key)
            for _ in range(count)
        ]

    @hookimpl
    def ecogen_select_survivors(self, candidates: list, count: int) -> list:
        return sorted(candidates, key=self._key, reverse=True)[:count]

    @hookimpl
    def ecogen_ranking(self) -> Ranking:
        # The run delivers the network this strategy searched for, not the most accurate at
        # any cost.
        return Ranking(
            f"cost-aware reward: val_accuracy * ({self.cost} / {self.target:g}) ** "
            f"{self.weight:g}, then val_accuracy, then fewer params",
            self._key,
        )

    @hookimpl
    def ecogen_measures(self) -> list[str]:
        return [self.cost] if self.cost == "latency_ms" else []

    @hookimpl
    def ecogen_generation_end(self, population: list, context: Context) -> None:
        if population:
            best = max(population, key=self._key)
            self.record(
                context,
                "reward",
                individual=best.id,
                reward=self.reward(best),
                cost=self.cost,
                value=(best.evaluation or {}).get(self.cost),
            )
