"""Mutation operators as DEAP operators: the 15 mutations of the thesis table and the two
SEP-Net phenotype mutations (off by default), their registry (built-ins and
``ecogen.operators`` entry points, on the plugin registry strategies share), ``mutate``, the
toolbox factory, and EIGEN's gene duplication (:mod:`operators.duplication`).

Imports genomics and deap, never torch. Hypothesis strategies for testing operators are in
:mod:`operators.testing`.
"""

from . import mutations
from .config import DEFAULT_CONFIG, MutationConfig
from .duplication import Block, duplicate_blocks, duplication_candidates, feature_blocks
from .effects import KINDS, Effect, layer_census
from .errors import NotApplicable, PluginError
from .individual import Fitness, Individual, same_genome
from .mutations import THESIS_MUTATIONS
from .plugins import Registry
from .registry import (
    ENTRY_POINT_GROUP,
    OPERATORS,
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
    "DEFAULT_CONFIG",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "OPERATORS",
    "THESIS_MUTATIONS",
    "Block",
    "Effect",
    "Fitness",
    "Individual",
    "MutationConfig",
    "NotApplicable",
    "OperatorInfo",
    "PluginError",
    "Registry",
    "admits",
    "duplicate_blocks",
    "duplication_candidates",
    "feature_blocks",
    "get",
    "layer_census",
    "make_toolbox",
    "mutate",
    "mutation",
    "mutations",
    "names",
    "refused",
    "registered",
    "same_genome",
]
