"""The 15 mutations of the thesis table (AG-Evolution, Li et al. 2018, after Real et al.
2017), as registered DEAP operators, and two for the SEP-Net phenotypes (docs/phenotypes.md),
``add_sep_module`` and ``binarize_convolution``: registered with draw weight 0, so a search
uses the thesis table unless a run's ``[weights]`` turn them on.

Each transform yields candidate genomes in random order; the registry keeps the first that is
valid within the run's bounds. Insertions go on an edge (``src -> dst``), so they can land on a
skip branch as well as on the trunk. Removals rewire a layer's consumers to its (primary) input;
a removal that would leave a join reading one node twice, or a layer that no longer leads to the
output, gives an invalid candidate and is skipped. Joins never break shapes (docs/genome.md), so
most candidates are valid.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import attrs

from genomics import (
    Add,
    Concat,
    Conv,
    Dense,
    Dropout,
    Genome,
    Input,
    Node,
    Pool,
    Shape,
    classifier_node,
    infer_shapes,
    sep_module,
)

from .config import MutationConfig
from .effects import Effect
from .registry import mutation

Candidates = Iterator[Genome]


# --- graph edits ---------------------------------------------------------------------------


def _fresh_id(genome: Genome, prefix: str) -> str:
    # Numbered above every id the lineage has had, not only those left: a layer added after a
    # removal must not take the removed one's id (and with it, under inheritance, its weights).
    return genome.fresh_id(prefix)


def _insert(genome: Genome, src: str, dst: str, pos: int, node: Node) -> Genome:
    """``node`` (reading ``src``) placed on the edge into input ``pos`` of ``dst``."""
    assert genome.node(dst).inputs[pos] == src
    return _insert_block(genome, dst, pos, [node])


def _insert_block(genome: Genome, dst: str, pos: int, block: list[Node]) -> Genome:
    """``block`` (nodes reading an existing node, ending in ``block[-1]``) placed on the edge
    into input ``pos`` of ``dst``."""
    nodes = []
    for n in genome.nodes:
        if n.id == dst:
            nodes += block
            inputs = list(n.inputs)
            inputs[pos] = block[-1].id
            n = attrs.evolve(n, inputs=tuple(inputs))
        nodes.append(n)
    return attrs.evolve(genome, nodes=tuple(nodes))


def _remove(genome: Genome, node_id: str) -> Genome:
    """``node_id`` deleted; whatever read it reads its first (primary) input instead."""
    gone = genome.node(node_id)
    replacement = gone.inputs[0]
    nodes = []
    for n in genome.nodes:
        if n.id == node_id:
            continue
        if node_id in n.inputs:
            n = attrs.evolve(n, inputs=tuple(replacement if i == node_id else i for i in n.inputs))
        nodes.append(n)
    return attrs.evolve(genome, nodes=tuple(nodes))


def _replace(genome: Genome, node_id: str, gene: object) -> Genome:
    nodes = tuple(attrs.evolve(n, gene=gene) if n.id == node_id else n for n in genome.nodes)
    return attrs.evolve(genome, nodes=nodes)


def _shuffled(rng: random.Random, items: list) -> list:
    items = list(items)
    rng.shuffle(items)
    return items


def _tail(genome: Genome) -> set[str]:
    """The classifier and the nodes after it up to the output: nothing is inserted there."""
    tail = {genome.nodes[-1].id}
    classifier = classifier_node(genome)
    node = genome.nodes[-1]
    while node.inputs and node.id != classifier:
        node = genome.node(node.inputs[0])
        tail.add(node.id)
    return tail


def _edges(genome: Genome) -> list[tuple[str, str, int]]:
    """Every ``(src, dst, position)`` edge that does not start in the tail."""
    tail = _tail(genome)
    return [
        (src, n.id, pos)
        for n in genome.nodes
        for pos, src in enumerate(n.inputs)
        if src not in tail
    ]


def _of(genome: Genome, *types: type, where=lambda n: True) -> list[Node]:
    return [n for n in genome.nodes if isinstance(n.gene, types) and where(n)]


def _is_map(shape: Shape) -> bool:
    return len(shape) == 3


# --- the 15 mutations ----------------------------------------------------------------------


@mutation(
    changes="inserts a convolution (3x3, stride 1, channels of its input, BN+ReLU) on a trunk edge",
    effect=Effect("conv", +1),
    preserves="approximate",
)
def add_convolution(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    shapes = infer_shapes(genome, config.bounds)
    for src, dst, pos in _shuffled(rng, _edges(genome)):
        if _is_map(shapes[src]):
            channels = min(shapes[src][0], config.channel_range[1])
            gene = Conv(channels, kernel=config.new_conv_kernel)
            yield _insert(genome, src, dst, pos, Node(_fresh_id(genome, "conv"), gene, (src,)))


@mutation(
    changes="deletes a convolution (not the classifier); its consumers read its input",
    effect=Effect("conv", -1),
)
def remove_convolution(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    classifier = classifier_node(genome)
    for node in _shuffled(rng, _of(genome, Conv, where=lambda n: n.id != classifier)):
        yield _remove(genome, node.id)


@mutation(
    changes="multiplies a convolution's out-channels by 2**U(-1,1), clamped to channel_range",
    effect=Effect("conv", 0, "out_channels"),
    preserves="approximate",
)
def alter_channel_number(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    classifier = classifier_node(genome)  # its channels are the class count
    low, high = config.channel_range
    for node in _shuffled(rng, _of(genome, Conv, where=lambda n: n.id != classifier)):
        gene, old = node.gene, node.gene.out_channels
        factor = 2 ** rng.uniform(-1, 1)
        # A factor near 1 would round back to the same count; step one channel instead.
        wanted = round(old * factor)
        if wanted == old:
            wanted += 1 if factor >= 1 else -1
        # Then the smallest steps down and up: when the drawn count breaks a bound (parameters,
        # say), the mutation still applies wherever any change of this layer would.
        step = gene.groups
        for channels in (wanted, old - step, old + step):
            channels = max(low, min(high, channels))
            channels -= channels % step  # grouped convolutions need a multiple of groups
            if channels >= step and channels != old:
                yield _replace(genome, node.id, attrs.evolve(gene, out_channels=channels))


@mutation(
    changes="gives a convolution another odd kernel size from kernel_sizes ('same' padding)",
    effect=Effect("conv", 0, "kernel"),
    preserves="approximate",
)
def alter_filter_size(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    for node in _shuffled(rng, _of(genome, Conv)):
        gene = node.gene
        for k in _shuffled(rng, [k for k in config.kernel_sizes if k != gene.kernel]):
            if k % 2 == 1 and not (gene.binarized and k == 1):
                yield _replace(genome, node.id, attrs.evolve(gene, kernel=k, padding=k // 2))


@mutation(
    changes="toggles a convolution's stride between 1 and 2 (never below a 1x1 map)",
    effect=Effect("conv", 0, "stride"),
)
def alter_stride(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    for node in _shuffled(rng, _of(genome, Conv)):
        stride = 2 if node.gene.stride == 1 else 1
        yield _replace(genome, node.id, attrs.evolve(node.gene, stride=stride))


@mutation(
    changes="inserts dropout (rate from dropout_rates, kind from dropout_kinds) on an edge",
    effect=Effect("dropout", +1),
    preserves="exact",
)
def add_dropout(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    for src, dst, pos in _shuffled(rng, _edges(genome)):
        if isinstance(genome.node(src).gene, Dropout) or isinstance(genome.node(dst).gene, Dropout):
            continue  # two dropouts in a row are one dropout with a larger rate
        rate = min(round(rng.uniform(*config.dropout_rates), 2), 0.95)
        kind = rng.choice(config.dropout_kinds)
        # Evolutional dropout keeps k = samples * d draws; 1 - rate keeps as many as the
        # Bernoulli dropout of that rate would on average.
        gene = (
            Dropout(rate)
            if kind == "bernoulli"
            else Dropout(kind=kind, samples=round(1.0 - rate, 2))
        )
        yield _insert(genome, src, dst, pos, Node(_fresh_id(genome, "dropout"), gene, (src,)))


@mutation(changes="deletes a dropout layer", effect=Effect("dropout", -1), preserves="exact")
def remove_dropout(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    for node in _shuffled(rng, _of(genome, Dropout)):
        yield _remove(genome, node.id)


@mutation(
    changes="inserts max or avg pooling (pool_kernel, stride = kernel) on a trunk edge",
    effect=Effect("pool", +1),
)
def add_pooling(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    shapes = infer_shapes(genome, config.bounds)
    for src, dst, pos in _shuffled(rng, _edges(genome)):
        shape = shapes[src]
        if _is_map(shape) and min(shape[1:]) >= config.pool_kernel:
            gene = Pool(rng.choice(config.pool_modes), kernel=config.pool_kernel)
            yield _insert(genome, src, dst, pos, Node(_fresh_id(genome, "pool"), gene, (src,)))


@mutation(changes="deletes a (non-global) pooling layer", effect=Effect("pool", -1))
def remove_pooling(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    for node in _shuffled(rng, _of(genome, Pool, where=lambda n: not n.gene.global_pool)):
        yield _remove(genome, node.id)


def _add_join(genome: Genome, rng: random.Random, config: MutationConfig, join: object):
    """A join of an earlier trunk map ``a`` into a later trunk map ``b``, placed on one of
    ``b``'s outgoing edges with ``b`` as its primary input."""
    shapes = infer_shapes(genome, config.bounds)
    index = {n.id: i for i, n in enumerate(genome.nodes)}
    edges = _edges(genome)
    sources = {src for src, _, _ in edges}
    maps = [n.id for n in genome.nodes if n.id in sources and _is_map(shapes[n.id])]
    prefix = join.TYPE
    for b in _shuffled(rng, [m for m in maps if not isinstance(genome.node(m).gene, Input)]):
        outgoing = [(src, dst, pos) for src, dst, pos in edges if src == b]
        for a in _shuffled(rng, [m for m in maps if index[m] < index[b]]):
            if a in genome.node(b).inputs:
                continue  # that would join a layer with its own input, a no-op rewiring
            for _, dst, pos in _shuffled(rng, outgoing):
                yield _insert(genome, b, dst, pos, Node(_fresh_id(genome, prefix), join, (b, a)))


@mutation(
    changes="adds an element-wise sum (ResNet skip) from an earlier trunk layer to a later one",
    effect=Effect("add", +1),
)
def add_skip(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    return _add_join(genome, rng, config, Add())


@mutation(
    changes="deletes a sum join; its consumers read its primary input", effect=Effect("add", -1)
)
def remove_skip(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    for node in _shuffled(rng, _of(genome, Add)):
        yield _remove(genome, node.id)


@mutation(
    changes="adds a channel concatenation (DenseNet) from an earlier trunk layer to a later one",
    effect=Effect("concat", +1),
    preserves="approximate",
)
def add_concatenate(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    return _add_join(genome, rng, config, Concat())


@mutation(
    changes="deletes a concatenation; its consumers read its primary input",
    effect=Effect("concat", -1),
)
def remove_concatenate(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    for node in _shuffled(rng, _of(genome, Concat)):
        yield _remove(genome, node.id)


@mutation(
    changes=(
        "inserts a dense layer (units from dense_units, ReLU) in the head, before the classifier"
    ),
    effect=Effect("dense", +1),
    preserves="approximate",
)
def add_fully_connected(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    shapes = infer_shapes(genome, config.bounds)
    for src, dst, pos in _shuffled(rng, _edges(genome)):
        shape = shapes[src]
        # The head starts after global pooling or where a dense layer flattens a map.
        if len(shape) == 1 or shape[1:] == (1, 1) or isinstance(genome.node(dst).gene, Dense):
            # The drawn width, then the narrowest, which fits wherever any width would.
            for units in (rng.choice(config.dense_units), min(config.dense_units)):
                node = Node(_fresh_id(genome, "dense"), Dense(units), (src,))
                yield _insert(genome, src, dst, pos, node)


@mutation(changes="deletes a hidden dense layer (never the classifier)", effect=Effect("dense", -1))
def remove_fully_connected(
    genome: Genome, rng: random.Random, config: MutationConfig
) -> Candidates:
    classifier = classifier_node(genome)
    for node in _shuffled(rng, _of(genome, Dense, where=lambda n: n.id != classifier)):
        yield _remove(genome, node.id)


@mutation(
    changes="inserts a SEP-Net module (1x1 group reduce, two pattern residual blocks, 1x1 group "
    "restore, identity skip) on a trunk edge whose channels sep_groups divides",
    effect=Effect("conv", +6, also=(("add", +3),)),
    weight=0.0,
    preserves="approximate",
)
def add_sep_module(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    shapes = infer_shapes(genome, config.bounds)
    groups = config.sep_groups
    for src, dst, pos in _shuffled(rng, _edges(genome)):
        channels = shapes[src][0]
        if _is_map(shapes[src]) and channels % (2 * groups) == 0:
            prefix = _fresh_id(genome, "sep")
            block = sep_module(prefix, src, channels, kernel=config.sep_kernel, groups=groups)
            yield _insert_block(genome, dst, pos, block)


@mutation(
    changes="pattern-binarizes a k x k convolution (k > 1), or makes a binarized one full "
    "precision again",
    effect=Effect("conv", 0, "binarized"),
    weight=0.0,
)
def binarize_convolution(genome: Genome, rng: random.Random, config: MutationConfig) -> Candidates:
    for node in _shuffled(rng, _of(genome, Conv, where=lambda n: n.gene.kernel > 1)):
        yield _replace(genome, node.id, attrs.evolve(node.gene, binarized=not node.gene.binarized))


#: The thesis table, in its order.
THESIS_MUTATIONS = (
    "add_convolution",
    "remove_convolution",
    "alter_channel_number",
    "alter_filter_size",
    "alter_stride",
    "add_dropout",
    "remove_dropout",
    "add_pooling",
    "remove_pooling",
    "add_skip",
    "remove_skip",
    "add_concatenate",
    "remove_concatenate",
    "add_fully_connected",
    "remove_fully_connected",
)
