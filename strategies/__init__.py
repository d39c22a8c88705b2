"""Search strategies: a search's decisions (parents, survivors, training), as pluggy plugins.

The built-in strategies (selection, succession, extinction, duplication, mimicry, NSGA-II,
cost-aware selection, rungs), their registry and presets.

Imports genomics, operators and deap, never torch: a strategy sees metrics as numbers. The hook
specification is :class:`StrategySpec`; docs/writing-a-strategy.md walks through a plugin.
"""

from .aggressive import Aggressive
from .base import Strategy, StrategyError, accuracy_at, at_least, best_first, pair, rank_key
from .classic import Roulette, Tournament, UniformRandom, default_parents, default_survivors
from .cost import CostAware
from .eigen import Duplication, Extinction, Mimicry, Succession
from .nsga2 import NSGA2
from .registry import (
    ENTRY_POINT_GROUP,
    PRESETS,
    StrategyInfo,
    create,
    expand,
    get,
    names,
    options,
    plugin_manager,
    refused,
    register,
    registered,
)
from .rungs import Rungs, promoted_count
from .search import DEFAULT_RANKING, MEASURES, OBJECTIVES, Search
from .spec import (
    HOOKS,
    Context,
    Distill,
    GenerationPlan,
    Proposal,
    Ranking,
    Stop,
    StrategySpec,
    hookimpl,
    hookspec,
)

__all__ = [
    "DEFAULT_RANKING",
    "ENTRY_POINT_GROUP",
    "HOOKS",
    "MEASURES",
    "NSGA2",
    "OBJECTIVES",
    "PRESETS",
    "Aggressive",
    "Context",
    "CostAware",
    "Distill",
    "Duplication",
    "Extinction",
    "GenerationPlan",
    "Mimicry",
    "Proposal",
    "Ranking",
    "Roulette",
    "Rungs",
    "Search",
    "Stop",
    "Strategy",
    "StrategyError",
    "StrategyInfo",
    "StrategySpec",
    "Succession",
    "Tournament",
    "UniformRandom",
    "accuracy_at",
    "at_least",
    "best_first",
    "create",
    "default_parents",
    "default_survivors",
    "expand",
    "get",
    "hookimpl",
    "hookspec",
    "names",
    "options",
    "pair",
    "plugin_manager",
    "promoted_count",
    "rank_key",
    "refused",
    "register",
    "registered",
]
