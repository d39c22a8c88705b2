"""Mutation operators as DEAP operators: the 15 mutations of the thesis table, their registry
(built-ins and ``ecogen.operators`` entry points), ``mutate``, the toolbox factory, and EIGEN's
gene duplication (:mod:`operators.duplication`).

Imports genomics and deap, never torch. Hypothesis strategies for testing operators are in
:mod:`operators.testing`.
"""

from . import mutations
from .config import DEFAULT_CONFIG, MutationConfig
from .duplication import Block, duplicate_blocks, duplication_candidates, feature_blocks
from .individual import Fitness, Individual, same_genome
from .mutations import THESIS_MUTATIONS
from .registry import (
    ENTRY_POINT_GROUP,
    KINDS,
    Effect,
    NotApplicable,
    OperatorInfo,
    PluginError,
    admits,
    get,
    layer_census,
    mutation,
    names,
    registered,
)
from .toolbox import make_toolbox, mutate

__all__ = [
    "DEFAULT_CONFIG",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "THESIS_MUTATIONS",
    "Block",
    "Effect",
    "Fitness",
    "Individual",
    "MutationConfig",
    "NotApplicable",
    "OperatorInfo",
    "PluginError",
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
    "registered",
    "same_genome",
]
