"""The genome model: genes, genomes, JSON codec, validation, shapes, hashing and builders.

Imports neither torch nor deap, so that operators and strategies stay light.
"""

from .blocks import pattern_residual_block, sep_module
from .builders import classifier_node, minimal, random_genome, retarget
from .codec import dumps, from_dict, loads, to_dict
from .errors import GenomeError
from .genes import (
    ACTIVATIONS,
    BINARY_SCALES,
    DROPOUT_KINDS,
    GENE_TYPES,
    JOINS,
    POOL_MODES,
    Add,
    Concat,
    Conv,
    Dense,
    Dropout,
    Gene,
    Input,
    Output,
    Pool,
)
from .genome import SCHEMA_VERSION, Genome, Node
from .hashing import canonical_hash
from .validation import (
    DEFAULT_BOUNDS,
    Bounds,
    Shape,
    flop_counts,
    infer_shapes,
    parameter_counts,
    storage_bytes,
    validate,
)

__all__ = [
    "ACTIVATIONS",
    "BINARY_SCALES",
    "DEFAULT_BOUNDS",
    "DROPOUT_KINDS",
    "GENE_TYPES",
    "JOINS",
    "POOL_MODES",
    "SCHEMA_VERSION",
    "Add",
    "Bounds",
    "Concat",
    "Conv",
    "Dense",
    "Dropout",
    "Gene",
    "Genome",
    "GenomeError",
    "Input",
    "Node",
    "Output",
    "Pool",
    "Shape",
    "canonical_hash",
    "classifier_node",
    "dumps",
    "flop_counts",
    "from_dict",
    "infer_shapes",
    "loads",
    "minimal",
    "parameter_counts",
    "pattern_residual_block",
    "random_genome",
    "retarget",
    "sep_module",
    "storage_bytes",
    "to_dict",
    "validate",
]
