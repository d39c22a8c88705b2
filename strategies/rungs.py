"""Multi-fidelity evaluation by successive halving ("rungs"), as in ASHA, Hyperband and BOHB
and the pruners of Ray Tune and Optuna. The strategy plans the rungs; the engine trains them
(``runner.candidates``, docs/rungs.md)."""

from __future__ import annotations

import math
from typing import Any

import attrs

from .base import Strategy, StrategyError, at_least
from .spec import GenerationPlan, hookimpl


def _fractions(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise StrategyError(
            f"strategies.rungs.data_fraction: must be a list of shares in (0, 1], one per rung,"
            f" got {value!r}"
        )
    return tuple(value)


def _check_fractions(inst: Rungs, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    ok = bool(value) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1 for v in value
    )
    if not ok:
        raise StrategyError(
            "strategies.rungs.data_fraction: must be a list of shares in (0, 1], one per rung,"
            f" got {list(value)!r}"
        )


@attrs.define
class Rungs(Strategy):
    """Successive halving: every candidate of a generation trains to the first rung
    (``min_epochs``), the most accurate 1/``reduction`` of those that finished it go on to the
    next (``min_epochs * reduction**k`` epochs), and so on to ``max_epochs``; a promoted
    candidate goes on from its own weights at its rung, with a fresh learning-rate schedule
    over the epochs it adds. ``max_epochs`` 0: the run's epochs (as planned by the strategies
    listed before this one). ``data_fraction``: the share of the training split each rung
    trains on (a seeded subset, the same for every candidate; default: all of it)."""

    name = "rungs"
    min_epochs: int = attrs.field(default=1, validator=at_least(1))
    #: 0: the epochs the plan has when this strategy sees it (the run's ``epochs``).
    max_epochs: int = attrs.field(default=0, validator=at_least(0))
    reduction: int = attrs.field(default=3, validator=at_least(2))
    data_fraction: tuple[float, ...] | None = attrs.field(
        default=None, converter=_fractions, validator=_check_fractions
    )

    def __attrs_post_init__(self) -> None:
        if self.max_epochs:
            self.rungs(self.max_epochs)  # refused now, not as the run starts

    def rungs(self, epochs: int) -> tuple[int, ...]:
        """The epochs at each rung of a run that plans ``epochs`` per candidate: ``min_epochs``
        times powers of ``reduction`` below ``max_epochs`` (or ``epochs``), then that."""
        top = self.max_epochs or epochs
        if self.min_epochs > top:
            source = "max_epochs" if self.max_epochs else "the epochs planned per candidate"
            raise StrategyError(
                f"strategies.rungs.min_epochs: {self.min_epochs} is more than the last rung's"
                f" {top} epochs ({source}); lower min_epochs or raise max_epochs"
            )
        found, rung = [], self.min_epochs
        while rung < top:
            found.append(rung)
            rung *= self.reduction
        found.append(top)
        if self.data_fraction is not None and len(self.data_fraction) != len(found):
            raise StrategyError(
                f"strategies.rungs.data_fraction: {len(self.data_fraction)} shares for"
                f" {len(found)} rungs {found}; give one per rung"
            )
        return tuple(found)

    @hookimpl
    def ecogen_plan(self, plan: GenerationPlan) -> None:
        plan.rungs = self.rungs(plan.epochs)
        plan.epochs = plan.rungs[-1]
        plan.promote = 1 / self.reduction
        plan.data_fractions = tuple(float(f) for f in self.data_fraction or ())


def promoted_count(finished: int, promote: float) -> int:
    """How many of ``finished`` candidates a rung promotes: the ``promote`` share, rounded up
    (rounded first to 9 digits, so that 3 * (1/3) is 1, not 2)."""
    return min(finished, math.ceil(round(finished * promote, 9)))
