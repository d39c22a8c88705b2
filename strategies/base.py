"""A convenience base class for strategies, and helpers they share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from genomics import validators

from .spec import Context, hookimpl


class StrategyError(ValueError):
    """A strategy's option or output is wrong; the message names the strategy."""


class Strategy:
    """Base class for strategies: a ``name`` and state saved in checkpoints.

    Subclasses (usually ``attrs.define`` classes whose fields are the options) list the
    attributes that change during a run in ``state_fields``; the base class saves and restores
    them under the strategy's name. Override :meth:`get_state` and :meth:`set_state` for state
    that is not plain JSON.
    """

    name: ClassVar[str] = ""
    state_fields: ClassVar[tuple[str, ...]] = ()
    #: The phases a strategy can put a run in (its ``phase`` attribute); the config check plans
    #: the first generation in each, so options that one phase's plan cannot hold are refused
    #: before the run starts, not at the switch.
    phases: ClassVar[tuple[str, ...]] = ()

    def get_state(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.state_fields}

    def set_state(self, state: dict[str, Any]) -> None:
        for field, value in state.items():
            setattr(self, field, value)

    @hookimpl
    def ecogen_save_state(self, state: dict) -> None:
        own = self.get_state()
        if own:
            state[self.name] = own

    @hookimpl
    def ecogen_load_state(self, state: dict) -> None:
        if self.name in state:
            self.set_state(state[self.name])

    def record(self, context: Context, kind: str, individual: str | None = None, **data: Any):
        """Write an event, signed with this strategy's name, to the run store."""
        context.record(kind, source=self.name, individual=individual, **data)


def rank_key(individual: Any) -> tuple[float, float]:
    """Sort key, larger is better: the first fitness value, then the smaller network (validation
    accuracy saturates on small data, and then size is what tells candidates apart)."""
    params = individual.evaluation.get("params") if individual.evaluation else None
    return (individual.fitness.wvalues[0], -params if params is not None else -float("inf"))


def best_first(individuals: Sequence[Any]) -> list[Any]:
    """``individuals`` sorted best first by :func:`rank_key` (stable: earlier wins ties)."""
    return sorted(individuals, key=rank_key, reverse=True)


def accuracy_at(individual: Any, epoch: int) -> float | None:
    """The validation accuracy ``individual`` had after ``epoch`` epochs (None if it did not
    train that long)."""
    for row in (individual.evaluation or {}).get("history", ()):
        if row["epoch"] == epoch:
            return row["val_accuracy"]
    return None


def _option(strategy: Any) -> str:
    return f"strategies.{strategy.name}."


def at_least(low: float, kind: type = int) -> Any:
    """An attrs validator: a number of ``kind`` >= ``low`` (a float kind: finite); the error
    names the option."""
    return validators.at_least(low, kind=kind, error=StrategyError, prefix=_option)


def one_of(choices: tuple[str, ...]) -> Any:
    """An attrs validator: one of ``choices``; the error names the option."""
    return validators.one_of(choices, error=StrategyError, prefix=_option)


#: An attrs validator for ``[low, high]`` integer ranges (None allowed: not set).
pair = validators.pair(optional=True, error=StrategyError, prefix=_option)


def to_pair(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value
