"""Sub-graph templates: the SEP-Net building blocks as lists of ordinary nodes (docs/phenotypes.md).

A template returns nodes that read ``source`` and end in a node named ``prefix``, ready to be
placed in a genome (the zoo's builders and the ``add_sep_module`` mutation use them). Because
the blocks are made of ordinary genes, every mutation can alter their layers, gene duplication
can repeat them, and the compiled code names each layer after its place in the block::

    sep1_reduce -> sep1_prb1_pattern + sep1_prb1_transform -> sep1_prb1 -> ... -> sep1_restore
    sep1 = sep1_restore + source
"""

from __future__ import annotations

from .errors import GenomeError
from .genes import Add, Conv
from .genome import Node


def pattern_residual_block(
    prefix: str,
    source: str,
    channels: int,
    *,
    kernel: int = 3,
    groups: int = 1,
    binarized: bool = False,
    binary_scale: str = "filter",
) -> list[Node]:
    """Pattern Residual Block: a ``kernel`` x ``kernel`` convolution (the pattern, binarized
    when asked) and a 1x1 convolution (the transform) on the same input, each with batch norm,
    their outputs added, then ReLU. Output ``prefix`` has ``channels`` channels."""
    pattern = Conv(
        channels,
        kernel=kernel,
        groups=groups,
        activation="none",
        binarized=binarized and kernel > 1,
        binary_scale=binary_scale,
    )
    transform = Conv(channels, kernel=1, groups=groups, activation="none")
    return [
        Node(f"{prefix}_pattern", pattern, (source,)),
        Node(f"{prefix}_transform", transform, (source,)),
        Node(prefix, Add(activation="relu"), (f"{prefix}_pattern", f"{prefix}_transform")),
    ]


def sep_module(
    prefix: str,
    source: str,
    channels: int,
    *,
    reduced: int | None = None,
    kernel: int = 3,
    groups: int = 4,
    binarized: bool = False,
    binary_scale: str = "filter",
) -> list[Node]:
    """SEP-Net module on a ``channels``-channel map: a 1x1 group convolution reduces to
    ``reduced`` channels (default ``channels // 2``), two pattern residual blocks follow, a 1x1
    group convolution restores ``channels``, and an identity skip from ``source`` is added
    (then ReLU). ``groups`` (4 by default) applies to the two 1x1 convolutions, which hold most
    of the module's parameters; the pattern residual blocks mix all channels."""
    reduced = reduced if reduced is not None else channels // 2
    for name, value in (("channels", channels), ("reduced", reduced)):
        if value < groups or value % groups:
            raise GenomeError(f"sep_module {prefix}: {name} {value} is not a multiple of {groups}")
    nodes = [Node(f"{prefix}_reduce", Conv(reduced, kernel=1, groups=groups), (source,))]
    last = f"{prefix}_reduce"
    for i in (1, 2):
        block = f"{prefix}_prb{i}"
        nodes += pattern_residual_block(
            block, last, reduced, kernel=kernel, binarized=binarized, binary_scale=binary_scale
        )
        last = block
    restore = Conv(channels, kernel=1, groups=groups, activation="none")
    nodes.append(Node(f"{prefix}_restore", restore, (last,)))
    nodes.append(Node(prefix, Add(activation="relu"), (f"{prefix}_restore", source)))
    return nodes
