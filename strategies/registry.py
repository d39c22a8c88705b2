"""The strategy registry: built-ins, presets and ``ecogen.strategies`` entry points.

An entry point names a strategy class: ``ageing = "my_package:Ageing"``. The class is built with
the options of the experiment's ``[strategies.NAME]`` table as keyword arguments (its defaults
must make a working strategy) and is checked against the hook specification when it is
registered: a hook whose arguments do not match is refused with a message naming the plugin and
the hook. The registry is :class:`operators.Registry`, with the operators' refusal rule.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import pluggy
from attrs import frozen

from operators import PluginError, Registry
from operators.plugins import BUILTIN_PROVIDER

from .aggressive import Aggressive
from .base import StrategyError
from .classic import Roulette, Tournament, UniformRandom
from .cost import CostAware
from .eigen import Duplication, Extinction, Mimicry, Succession
from .nsga2 import NSGA2
from .rungs import Rungs
from .spec import PROJECT, StrategySpec

ENTRY_POINT_GROUP = "ecogen.strategies"


@frozen
class StrategyInfo:
    """A registered strategy: its name, class, the package that provides it and a summary."""

    name: str
    cls: type
    provider: str

    @property
    def summary(self) -> str:
        doc = " ".join((self.cls.__doc__ or "").split())
        return doc.split(". ")[0].rstrip(".")


_BUILTIN_CLASSES = (
    Tournament,
    UniformRandom,
    Roulette,
    Aggressive,
    Succession,
    Extinction,
    Duplication,
    Mimicry,
    NSGA2,
    CostAware,
    Rungs,
)

#: Named combinations of strategies with their options; ``[strategies.NAME]`` tables in the
#: experiment override these options.
PRESETS: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "tournament": (("tournament", {}),),
    "ag-evolution": (("aggressive", {"keep": 0.25, "mutations": (1, 3)}),),
    "eigen": (
        ("succession", {}),
        ("aggressive", {"keep": 0.25}),
        ("extinction", {}),
        # Duplicating the best while the community is still rough multiplies weak blocks; EIGEN
        # applies it to refine, in the secondary phase.
        ("duplication", {"phase": "secondary"}),
        ("mimicry", {}),
    ),
    "nsga2": (("nsga2", {}),),
    # Successive halving under the classic selection: parents by tournament among what the
    # rungs ranked (docs/rungs.md).
    "rungs": (("tournament", {}), ("rungs", {})),
}


def plugin_manager() -> pluggy.PluginManager:
    """A plugin manager that knows the hook specification."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(StrategySpec)
    return pm


def register(pm: pluggy.PluginManager, strategy: Any, name: str, provider: str) -> None:
    """Register ``strategy`` under ``name``; a hook that does not match the specification (or
    an ``ecogen_`` hook that does not exist) raises PluginError naming the plugin and the hook."""
    try:
        pm.register(strategy, name=name)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        if pm.is_registered(strategy):
            pm.unregister(strategy)
        detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise PluginError(f"strategy {name!r} of {provider} is refused: {detail}") from None
    except ValueError as exc:  # pluggy: the name or object is already registered
        raise PluginError(f"strategy {name!r} of {provider}: {exc}") from None


def _check(info: StrategyInfo) -> None:
    try:
        instance = info.cls()
    except Exception as exc:
        raise PluginError(
            f"strategy {info.name!r} of {info.provider} cannot be built with its defaults:"
            f" {type(exc).__name__}: {exc}"
        ) from None
    register(plugin_manager(), instance, info.name, info.provider)


def _load(ep_name: str, cls: Any, provider: str) -> tuple[str, StrategyInfo]:
    if not isinstance(cls, type):
        raise PluginError(f"strategy {ep_name!r} of {provider}: entry point is not a class")
    info = StrategyInfo(ep_name, cls, provider)
    _check(info)
    return ep_name, info


#: Every strategy: ecogen's and ``ecogen.strategies`` entry points'.
STRATEGIES: Registry[StrategyInfo] = Registry(
    "strategy", ENTRY_POINT_GROUP, _load, reserved=PRESETS
)
for _cls in _BUILTIN_CLASSES:
    STRATEGIES.add(_cls.name, StrategyInfo(_cls.name, _cls, BUILTIN_PROVIDER))


def registered(reload: bool = False) -> dict[str, StrategyInfo]:
    """Every usable strategy by name: built-ins, then plugins (entry points, checked and loaded
    once; ``reload`` scans them again)."""
    return STRATEGIES.registered(reload)


def refused(reload: bool = False) -> dict[str, str]:
    """Plugins that were refused, by entry-point name, with the reason."""
    return STRATEGIES.refused(reload)


def names() -> list[str]:
    """Names of every usable strategy."""
    return list(registered())


def get(name: str) -> StrategyInfo:
    """The strategy registered as ``name``; PluginError for a refused plugin."""
    try:
        return STRATEGIES.get(name)
    except KeyError:
        raise StrategyError(
            f"strategy: no strategy or preset named {name!r}"
            f" (strategies: {', '.join(registered())}; presets: {', '.join(PRESETS)})"
        ) from None


def expand(selected: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """Strategy names and preset options for a list of strategy and preset names, presets
    expanded in place; a strategy named twice is kept once. A preset that bears the name of one
    of its strategies (``rungs``: tournament + rungs) is the preset when named alone and that
    strategy when named with others: ``["eigen", "rungs"]`` is eigen with rungs, no
    tournament."""
    selected = list(selected)
    out: dict[str, dict[str, Any]] = {}
    for name in selected:
        members = PRESETS.get(name, ((name, {}),))
        if len(selected) > 1 and name in dict(members):
            members = ((name, dict(members)[name]),)
        for member, options in members:
            out.setdefault(member, {}).update(options)
    return list(out.items())


def create(
    selected: Iterable[str], options: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Any]:
    """The strategy objects for ``selected`` names (strategies or presets), built with the
    presets' options overridden by ``options[NAME]``. StrategyError names a bad option."""
    options = dict(options or {})
    members = expand(selected)
    unknown = sorted(set(options) - {name for name, _ in members})
    if unknown:
        raise StrategyError(
            f"strategies.{unknown[0]}: options for a strategy this run does not use"
            f" (it uses: {', '.join(name for name, _ in members)})"
        )
    made = []
    for name, preset in members:
        info = get(name)
        kwargs = {**preset, **dict(options.get(name, {}))}
        accepted = _options(info.cls)
        if accepted is not None:
            extra = sorted(set(kwargs) - set(accepted))
            if extra:
                raise StrategyError(
                    f"strategies.{name}.{extra[0]}: unknown option"
                    f" (options: {', '.join(accepted) or 'none'})"
                )
        try:
            made.append(info.cls(**kwargs))
        except StrategyError:
            raise
        except TypeError as exc:
            raise StrategyError(f"strategies.{name}: {exc}") from None
        except (ValueError, AttributeError) as exc:
            raise StrategyError(f"strategies.{name}: {exc}") from None
    return made


def _options(cls: type) -> list[str] | None:
    """The keyword options ``cls`` takes (None: any, it takes ``**kwargs``)."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def options(name: str) -> dict[str, Any]:
    """The options of strategy ``name`` with their defaults (as its class declares them)."""
    info = get(name)
    try:
        parameters = inspect.signature(info.cls).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {
        p.name: p.default for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


__all__ = [
    "BUILTIN_PROVIDER",
    "ENTRY_POINT_GROUP",
    "PRESETS",
    "STRATEGIES",
    "StrategyInfo",
    "create",
    "expand",
    "get",
    "names",
    "options",
    "plugin_manager",
    "refused",
    "register",
    "registered",
]
