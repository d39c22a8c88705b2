"""Variation of genomes: mutations and crossovers as DEAP operators, with their registries.

The 15 mutations of the thesis table and the two SEP-Net phenotype mutations (off by
default), their registry (built-ins and
``ecogen.operators`` entry points, on the plugin registry strategies share), ``mutate``, the
toolbox factory, and EIGEN's gene duplication (:mod:`operators.duplication`); crossovers
(homologous crossover and subgraph exchange, :mod:`operators.crossovers`), their registry
(``ecogen.crossovers`` entry points) and ``mate`` (:mod:`operators.mating`).

Imports genomics and deap, never torch. Hypothesis strategies for testing operators are in
:mod:`operators.testing`.
"""

from . import crossovers, mutations
from .config import DEFAULT_CONFIG, MutationConfig
from .duplication import (
    Block,
    copied_nodes,
    duplicate_blocks,
    duplication_candidates,
    feature_blocks,
)
from .effects import KINDS, Effect, layer_census
from .errors import NotApplicable, PluginError
from .individual import Fitness, Individual, same_genome
from .mating import (
    CROSSOVER_GROUP,
    CROSSOVERS,
    CrossoverInfo,
    cross,
    crossover,
    crossover_names,
    get_crossover,
    mate,
    refused_crossovers,
    registered_crossovers,
)
from .mutations import THESIS_MUTATIONS
from .plugins import Registry
from .registry import (
    ENTRY_POINT_GROUP,
    OPERATORS,
    PRESERVES,
    OperatorInfo,
    admits,
    get,
    mutation,
    names,
    refused,
    registered,
)
from .toolbox import make_toolbox, mutate

__all__ = [
    "CROSSOVERS",
    "CROSSOVER_GROUP",
    "DEFAULT_CONFIG",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "OPERATORS",
    "PRESERVES",
    "THESIS_MUTATIONS",
    "Block",
    "CrossoverInfo",
    "Effect",
    "Fitness",
    "Individual",
    "MutationConfig",
    "NotApplicable",
    "OperatorInfo",
    "PluginError",
    "Registry",
    "admits",
    "copied_nodes",
    "cross",
    "crossover",
    "crossover_names",
    "crossovers",
    "duplicate_blocks",
    "duplication_candidates",
    "feature_blocks",
    "get",
    "get_crossover",
    "layer_census",
    "make_toolbox",
    "mate",
    "mutate",
    "mutation",
    "mutations",
    "names",
    "refused",
    "refused_crossovers",
    "registered",
    "registered_crossovers",
    "same_genome",
]
