"""Canonical structural hash."""

from __future__ import annotations

import hashlib
import json

from .genes import canonical_fields
from .genome import Genome


def canonical_hash(genome: Genome) -> str:
    """A hex digest equal for genomes of the same structure whatever their node ids or order.

    Nodes are relabelled by a depth-first walk from the output that follows each node's inputs in
    order (input order is structure: it picks a join's primary input). Two nodes with identical
    genes and inputs still get distinct labels, so one shared layer and two twin layers differ.
    """
    labels: dict[str, int] = {}
    entries: list[list] = []
    # Iterative post-order walk: genomes may be deeper than Python's recursion limit.
    stack: list[tuple[str, bool]] = [(genome.nodes[-1].id, False)]
    while stack:
        node_id, expanded = stack.pop()
        if node_id in labels:
            continue
        node = genome.node(node_id)
        if expanded:
            labels[node_id] = len(entries)
            fields = canonical_fields(node.gene)
            entries.append([node.gene.TYPE, fields, [labels[i] for i in node.inputs]])
        else:
            stack.append((node_id, True))
            stack.extend((i, False) for i in reversed(node.inputs) if i not in labels)
    doc = [list(genome.input_shape), genome.num_classes, entries]
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
