"""Gene duplication (EIGEN-D, Ren et al. 2019): cut a genome into blocks of one feature-map size
and build candidates that repeat blocks in different combinations.

A block is a maximal run of consecutive nodes (in the genome's topological order) that read and
produce feature maps of one spatial size. No block holds the input, a node whose output size
differs from its primary input's (strided convolution, pooling with stride > 1, a "valid"
convolution: these stay single and are never repeated), a join whose inputs differ in size, or
the classifier part (global pooling, dense layers, the classifier layer, the output and
everything reading them); each of these ends the run before it. A block is kept only when it can
be chained after itself: every edge into it comes from one node (its *entry*) and only its last
node (its *exit*) is read outside it.

Repeating a block ``r`` times inserts ``r - 1`` copies after it, with fresh ids: copy ``k`` reads
copy ``k - 1``'s exit wherever the block read its entry, and whatever read the exit reads the last
copy's exit. Joins keep their input order, so a residual block repeats as a residual block.
"""

from __future__ import annotations

import itertools
import random
import sys
from collections.abc import Iterator, Sequence

import attrs
from attrs import field, frozen

from genomics import (
    DEFAULT_BOUNDS,
    Bounds,
    Conv,
    Dense,
    Genome,
    GenomeError,
    Input,
    Node,
    Output,
    Pool,
    Shape,
    canonical_hash,
    classifier_node,
    infer_shapes,
)

from .config import DEFAULT_CONFIG, MutationConfig
from .effects import layer_census
from .errors import NotApplicable

__all__ = [
    "Block",
    "copied_nodes",
    "duplicate_blocks",
    "duplication_candidates",
    "feature_blocks",
]

# Blocks depend on shapes only; a genome over some run's bounds still has blocks, and the bounds
# are checked on what is built from them.
_NO_BOUNDS = Bounds(
    max_nodes=sys.maxsize,
    max_kernel=sys.maxsize,
    max_stride=sys.maxsize,
    max_channels=sys.maxsize,
    max_units=sys.maxsize,
    max_params=None,
)

#: Repeat combinations duplication_candidates tries: at least this many, or this many per
#: candidate asked for, whichever is more (each try builds and validates a genome).
_MIN_TRIES = 64
_TRIES_PER_CANDIDATE = 8


@frozen
class Block:
    """A repeatable run of nodes: their ids in genome order (the last is the exit) and the
    spatial size ``(H, W)`` of every map they read and produce."""

    nodes: tuple[str, ...] = field(converter=tuple)
    size: tuple[int, int] = field(converter=tuple)


def _head(genome: Genome, shapes: dict[str, Shape]) -> set[str]:
    """The classifier part: nodes producing vectors, global pools, dense layers, the classifier
    layer, the output, and every node reading one of them."""
    classifier = classifier_node(genome)
    head: set[str] = set()
    for node in genome.nodes:
        gene = node.gene
        if (
            len(shapes[node.id]) != 3
            or isinstance(gene, (Dense, Output))
            or (isinstance(gene, Pool) and gene.global_pool)
            or node.id == classifier
            or any(i in head for i in node.inputs)
        ):
            head.add(node.id)
    return head


def _runs(genome: Genome) -> list[Block]:
    """Maximal runs of consecutive same-size nodes, repeatable or not."""
    shapes = infer_shapes(genome, _NO_BOUNDS)
    head = _head(genome, shapes)
    runs: list[Block] = []
    current: list[str] = []
    size: tuple[int, ...] | None = None
    for node in genome.nodes:
        out = shapes[node.id][1:]
        eligible = (
            not isinstance(node.gene, Input)
            and node.id not in head
            and all(len(shapes[i]) == 3 and shapes[i][1:] == out for i in node.inputs)
        )
        if current and (not eligible or out != size):
            runs.append(Block(current, size))
            current = []
        if eligible:
            current.append(node.id)
            size = out
    if current:
        runs.append(Block(current, size))
    return runs


def _entry(genome: Genome, block: Block) -> str | None:
    """The one node outside ``block`` that it reads, or None when it reads several."""
    members = set(block.nodes)
    sources = {i for n in block.nodes for i in genome.node(n).inputs if i not in members}
    return sources.pop() if len(sources) == 1 else None


def _repeatable(genome: Genome, block: Block, consumers: dict[str, list[str]]) -> bool:
    members = set(block.nodes)
    inner_only = all(c in members for n in block.nodes[:-1] for c in consumers[n])
    return inner_only and _entry(genome, block) is not None


def feature_blocks(genome: Genome) -> list[Block]:
    """The repeatable blocks of ``genome``, in genome order (see the module docstring).

    A run that reads two outside nodes (a skip from before the block) or whose inner nodes are
    read outside it cannot be chained after itself and is left out. Raises GenomeError when
    ``genome`` is invalid.
    """
    consumers: dict[str, list[str]] = {n.id: [] for n in genome.nodes}
    for node in genome.nodes:
        for i in node.inputs:
            consumers[i].append(node.id)
    return [b for b in _runs(genome) if _repeatable(genome, b, consumers)]


class _Ids:
    """Fresh ids ``<gene type><n>``, numbered on from the genome's ``id_counter`` (as the
    mutations name the nodes they insert), so that none is an id its lineage has had."""

    def __init__(self, genome: Genome) -> None:
        self.last = genome.id_counter

    def __call__(self, prefix: str) -> str:
        self.last += 1
        return f"{prefix}{self.last}"


def _repeat(
    genome: Genome, block: Block, times: int, ids: _Ids, sources: dict[str, str] | None = None
) -> Genome:
    """``genome`` with ``times - 1`` copies of ``block`` chained after it; ``sources`` gets
    each copy's id -> the id of the node it copies."""
    members = set(block.nodes)
    # Read the block from the genome as it is now: an earlier repeat may have rewired its entry.
    entry = _entry(genome, block)
    exit_ = previous = block.nodes[-1]
    copies: list[Node] = []
    for _ in range(times - 1):
        renamed: dict[str, str] = {}
        for node_id in block.nodes:
            node = genome.node(node_id)
            renamed[node_id] = ids(node.gene.TYPE)
            if sources is not None:
                sources[renamed[node_id]] = sources.get(node_id, node_id)
            inputs = tuple(
                renamed[i] if i in members else previous if i == entry else i for i in node.inputs
            )
            copies.append(Node(renamed[node_id], node.gene, inputs))
        previous = renamed[exit_]
    at = next(k for k, n in enumerate(genome.nodes) if n.id == exit_) + 1
    # Nodes before the exit cannot read it (topological order), so only the rest is rewired.
    rest = [
        attrs.evolve(n, inputs=tuple(previous if i == exit_ else i for i in n.inputs))
        for n in genome.nodes[at:]
    ]
    return attrs.evolve(genome, nodes=(*genome.nodes[:at], *copies, *rest))


def _label(index: int, block: Block) -> str:
    return f"block {index} ({', '.join(block.nodes)}; {block.size[0]}x{block.size[1]})"


def _duplicate(
    genome: Genome,
    blocks: list[Block],
    repeats: Sequence[int],
    bounds: Bounds,
    sources: dict[str, str] | None = None,
) -> Genome:
    if len(repeats) != len(blocks):
        raise NotApplicable(
            f"gene duplication: {len(repeats)} repeat counts for {len(blocks)} blocks"
        )
    for index, (block, times) in enumerate(zip(blocks, repeats, strict=True)):
        if times < 1:
            raise NotApplicable(
                f"gene duplication: {_label(index, block)}: repeat count must be >= 1, got {times}"
            )
    ids = _Ids(genome)
    out = genome
    # One block at a time, validating each step, so that the error names the block whose copies
    # broke the genome (given the repeats before it).
    for index, (block, times) in enumerate(zip(blocks, repeats, strict=True)):
        if times == 1:
            continue
        out = _repeat(out, block, times, ids, sources)
        try:
            infer_shapes(out, bounds)
        except GenomeError as exc:
            problems = "; ".join(exc.problems)
            raise NotApplicable(
                f"gene duplication: {_label(index, block)} repeated {times} times gives an"
                f" invalid genome: {problems}"
            ) from None
    return out


def duplicate_blocks(
    genome: Genome, repeats: Sequence[int], *, bounds: Bounds = DEFAULT_BOUNDS
) -> Genome:
    """``genome`` with block ``i`` of :func:`feature_blocks` repeated ``repeats[i]`` times
    (1 leaves it as it is; EIGEN uses 1 to 3), copies chained one after another.

    Returns ``genome`` itself when every count is 1. Raises NotApplicable naming the block when
    the result is invalid within ``bounds`` (a grouped convolution whose groups do not divide the
    channels the copy now reads, too many parameters or nodes), and when ``len(repeats)`` is not
    the number of blocks or a count is below 1.
    """
    return _duplicate(genome, feature_blocks(genome), repeats, bounds)


def copied_nodes(
    genome: Genome, repeats: Sequence[int], *, bounds: Bounds = DEFAULT_BOUNDS
) -> dict[str, str]:
    """Which node of ``genome`` each node :func:`duplicate_blocks` adds copies: ``{copy id:
    original id}`` (weight inheritance gives a copy its original's weights)."""
    sources: dict[str, str] = {}
    _duplicate(genome, feature_blocks(genome), repeats, bounds, sources)
    return sources


def _combinations(rng: random.Random, blocks: int, max_repeat: int, tries: int) -> Iterator:
    """At most ``tries`` distinct repeat tuples other than all ones, in an order drawn by
    ``rng``: a shuffle of all of them when there are few, random draws otherwise."""
    if max_repeat**blocks - 1 <= tries:
        every = list(itertools.product(range(1, max_repeat + 1), repeat=blocks))[1:]
        rng.shuffle(every)
        yield from every
        return
    seen: set[tuple[int, ...]] = {(1,) * blocks}
    for _ in range(tries):
        repeats = tuple(rng.randint(1, max_repeat) for _ in range(blocks))
        if repeats not in seen:
            seen.add(repeats)
            yield repeats


def duplication_candidates(
    genome: Genome,
    rng: random.Random,
    count: int,
    max_repeat: int = 3,
    config: MutationConfig = DEFAULT_CONFIG,
) -> list[tuple[Genome, tuple[int, ...]]]:
    """Up to ``count`` gene-duplication candidates of ``genome``, each with its repeat counts
    (one per block of :func:`feature_blocks`, each in ``1..max_repeat``).

    Candidates have distinct canonical hashes, all different from ``genome``'s, and are valid
    within ``config.bounds`` with at most ``config.max_convolutions`` convolutions. The
    combinations are drawn by ``rng`` alone and at most ``max(64, 8 * count)`` are tried, so
    fewer than ``count`` may come back; none when ``genome`` has no repeatable block.
    """
    blocks = feature_blocks(genome)
    if not blocks or count < 1 or max_repeat < 2:
        return []
    convs = layer_census(genome)["conv"]
    block_convs = [
        sum(isinstance(genome.node(n).gene, Conv) for n in block.nodes) for block in blocks
    ]
    seen = {canonical_hash(genome)}
    found: list[tuple[Genome, tuple[int, ...]]] = []
    tries = max(_MIN_TRIES, _TRIES_PER_CANDIDATE * count)
    for repeats in _combinations(rng, len(blocks), max_repeat, tries):
        # The depth limit is known before building anything.
        added = sum((r - 1) * c for r, c in zip(repeats, block_convs, strict=True))
        if convs + added > config.max_convolutions:
            continue
        try:
            candidate = _duplicate(genome, blocks, repeats, config.bounds)
        except NotApplicable:
            continue
        digest = canonical_hash(candidate)
        if digest in seen:
            continue
        seen.add(digest)
        found.append((candidate, repeats))
        if len(found) == count:
            break
    return found
