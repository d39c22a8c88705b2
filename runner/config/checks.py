"""The checks of single configuration values (a seed, a rate, a share, a device list), each
raising :class:`~runner.errors.ConfigError` with the key's name, and of the strategies' first
plans (:func:`first_plans`)."""

from __future__ import annotations

import difflib
import math
from typing import Any

import attrs

from genomics import validators

from .. import executors
from ..errors import ConfigError

_CHECKS = {"error": ConfigError}
_positive = validators.at_least(1, **_CHECKS)
_not_negative = validators.at_least(0, note=" (0: no limit)", **_CHECKS)
# "No limit" is 0: an infinite limit would overflow where the engine uses it.
_finite_limit = validators.at_least(0, kind=float, note=" (0: no limit)", **_CHECKS)
_per_child = validators.pair(**_CHECKS)
#: The config's ``executor`` choices: the registry's names (``runner.executors``).
EXECUTORS = executors.names()
#: Values of ``augment`` (phenotypes.training.AUGMENT_CHOICES, without importing torch here).
AUGMENTS = ("auto", "none", "crop-flip", "translate")


def _device_list(value: Any) -> tuple[str, ...]:
    """Devices from a list, or from ``cuda:0,cuda:1`` (a flag's text)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(value)


def _gpus(inst: Any, attribute: attrs.Attribute, value: tuple) -> None:
    for device in value:
        kind, _, index = device.partition(":")
        if kind != "cuda" or (index and not index.isdigit()):
            raise ConfigError(f"devices: each must be cuda or cuda:N, got {device!r}")


#: Seeds the data split's generators take (scikit-learn's and NumPy's are 32-bit).
MAX_SEED = 2**32 - 1


def _seed(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    number = isinstance(value, int) and not isinstance(value, bool)
    if not number or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"seed: must be an integer in [0, {MAX_SEED}], got {value!r}")


def _unknown_key(key: str, known: list[str], table: str = "") -> ConfigError:
    """The error for an unknown key: the closest known one, as click suggests an option."""
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        hint = f"; did you mean {close[0]!r}?"
    elif table:
        hint = f" (known: {', '.join(sorted(known))})"
    else:
        hint = " (a run's experiment.toml lists every key)"
    return ConfigError(f"{table}{key}: unknown key{hint}")


def _init_check(inst: Any, attribute: attrs.Attribute, value: str) -> None:
    if value in ("minimal", "random", "mixed") or value.startswith("zoo:"):
        return
    raise ConfigError(f"init: must be minimal, random, mixed or zoo:NAME[,NAME...], got {value!r}")


def _rate(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 <= value <= 1:
        raise ConfigError(f"{attribute.name}: must be a number in [0, 1], got {value!r}")


def _share(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 < value <= 1:
        raise ConfigError(f"{attribute.name}: must be a number in (0, 1], got {value!r}")


def _names(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _listed(inst: Any, attribute: attrs.Attribute, value: tuple) -> None:
    if not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"strategy: must name at least one strategy, got {list(value)!r}")


def _check_weight(name: str, weight: Any, table: str = "weights") -> None:
    number = isinstance(weight, (int, float)) and not isinstance(weight, bool)
    if not number or not math.isfinite(weight) or weight < 0:
        raise ConfigError(f"{table}.{name}: must be a finite number >= 0, got {weight!r}")


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def first_plans(experiment: Any) -> list[Any]:
    """The first generation's :class:`strategies.GenerationPlan` in each phase a strategy can put
    the run in (one plan without phases), so that what one phase's epochs cannot hold (rungs)
    is refused before anything is written; ConfigError names the strategies."""
    import strategies

    e = experiment
    base = strategies.GenerationPlan(
        e.population, e.children, tuple(e.mutations_per_child), e.epochs, e.population
    )
    phases = [p for o in e.strategy_objects() for p in o.phases] or [""]
    plans = []
    try:
        for phase in phases:
            objects = e.strategy_objects()
            for o in objects:
                if phase in o.phases:
                    o.phase = phase
            search = strategies.Search(objects, seed=e.seed)
            search.objectives()
            context = strategies.Context(e.seed, 0, phase, base, e.generations, e.mutation_config())
            plans.append(search.plan(base, context))
    except strategies.StrategyError as exc:
        raise ConfigError(str(exc)) from None
    return plans
