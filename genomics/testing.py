"""Hypothesis strategies for genomes, for ecogen's tests and for users testing their own code.

Needs ``hypothesis`` (the ``dev`` extra); importing :mod:`genomics` alone does not import it.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from .builders import random_genome
from .codec import to_dict
from .genes import DROPOUT_KINDS
from .genome import Genome
from .validation import DEFAULT_BOUNDS, Bounds

#: Input shapes small enough to compile and run quickly, large enough for pooling and strides.
SMALL_SHAPES = ((1, 8, 8), (3, 16, 16), (3, 12, 10), (1, 5, 5), (2, 1, 1))


@st.composite
def genomes(
    draw: st.DrawFn,
    input_shapes: st.SearchStrategy[tuple[int, int, int]] | None = None,
    num_classes: st.SearchStrategy[int] | None = None,
    max_convs: int = 6,
    bounds: Bounds = DEFAULT_BOUNDS,
    binarize: float = 0.2,
    dropout_kinds: tuple[str, ...] = DROPOUT_KINDS,
) -> Genome:
    """Valid genomes within ``bounds`` (input shapes from SMALL_SHAPES and 2-12 classes unless
    given), with every gene kind: some k x k convolutions pattern-binarized (probability
    ``binarize``), dropout of every kind. Every choice is a hypothesis draw, so failures
    shrink."""
    rng = draw(st.randoms(use_true_random=False))
    shape = draw(input_shapes if input_shapes is not None else st.sampled_from(SMALL_SHAPES))
    classes = draw(num_classes if num_classes is not None else st.integers(2, 12))
    return random_genome(
        rng,
        shape,
        classes,
        max_convs=max_convs,
        bounds=bounds,
        binarize=binarize,
        dropout_kinds=dropout_kinds,
    )


# Each corruption breaks one node of a valid document and names the field the error must name.
_CORRUPTIONS: dict[str, tuple[type | None, str, Any]] = {
    "even kernel": ("conv", "kernel", 4),
    "zero channels": ("conv", "out_channels", 0),
    "string channels": ("conv", "out_channels", "16"),
    "bool stride": ("conv", "stride", True),
    "unknown activation": ("conv", "activation", "swishy"),
    "negative units": ("dense", "units", -3),
    "rate of one": ("dropout", "rate", 1.0),
    "no samples": ("dropout", "samples", 0.0),
    "unknown dropout kind": ("dropout", "kind", "gaussian"),
    "unknown binary scale": ("conv", "binary_scale", "row"),
    "bad pool mode": ("pool", "mode", "median"),
    "unknown field": (None, "colour", "blue"),
    "unknown type": (None, "type", "lstm"),
    "dangling input": (None, "inputs", ["nowhere"]),
    "bad id": (None, "id", "Not An Id"),
}


@st.composite
def invalid_documents(draw: st.DrawFn, genome_strategy: st.SearchStrategy[Genome] | None = None):
    """``(document, expected_location)`` pairs: a valid genome's JSON with one node broken.

    ``expected_location`` is the prefix the GenomeError message must start with
    (``nodes[3].kernel``).
    """
    genome = draw(genome_strategy if genome_strategy is not None else genomes())
    doc = json.loads(json.dumps(to_dict(genome)))
    name = draw(st.sampled_from(sorted(_CORRUPTIONS)))
    gene_type, key, value = _CORRUPTIONS[name]
    candidates = [
        i
        for i, node in enumerate(doc["nodes"])
        if (gene_type is None and i > 0) or node["type"] == gene_type
    ]
    if not candidates:
        # This genome has no such node (no dropout, say): break a node it has instead.
        candidates, key, value = list(range(1, len(doc["nodes"]))), "colour", "blue"
    i = draw(st.sampled_from(candidates))
    if key == "inputs":  # keep the arity, so that the dangling reference is the only problem
        value = [value[0], *doc["nodes"][i]["inputs"][1:]]
    doc["nodes"][i][key] = value
    location = f"nodes[{i}].{key}" if key != "inputs" else f"nodes[{i}].inputs[0]"
    return doc, location
