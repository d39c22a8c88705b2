"""The two built-in crossovers: homologous crossover and subgraph exchange.

Both align the parents by node id. Ids are stable across mutations and new nodes get fresh ones,
numbered above every id their lineage has had (``Genome.id_counter``: a layer added after a
removal never takes the removed one's id), so in a population grown from common ancestors the
same id marks the same layer, as NEAT's historical markings mark the same gene (short of two
lines that each add a layer after their common ancestor: they number it alike); two nodes are
*aligned* when they share an id and the kind of gene. (Unrelated genomes align by name only:
``conv2`` of one is not the other's. The crossovers stay valid, they just exchange less
meaningful material.)

**Homologous crossover** (``homologous_crossover``): the child has the first parent's structure
(its nodes and edges); each aligned layer takes its settings (the whole gene) from either parent
with equal chance. Structure present in the second parent only comes with that parent's edges:
each connected group of its own nodes is spliced in with probability 1/2 where it fits, that is
where the edge it was inserted on exists in the child (a convolution the second parent added
between ``conv1`` and ``pool1`` goes between ``conv1`` and ``pool1``). Where the drawn child is
not valid within the run's bounds (a stride from one parent shrinks a map below 1x1, a splice
passes the parameter limit), the draws are applied one by one, each kept only while the child
stays valid: every child is made of its parents' genes, and the first parent itself is the child
of last resort.

**Subgraph exchange** (``subgraph_exchange``): a contiguous block of the second parent replaces
the block of the first parent between the same two cut points. A cut point is a node every path
from the input to the output goes through, so the block between two of them reads one tensor and
gives one; both cut points must be aligned and have the same shape in both parents, so the rest
of the first parent sees what it saw before. Blocks that differ are tried first (in random
order); nodes of the incoming block whose ids the first parent uses elsewhere get fresh ids.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import attrs

from genomics import Genome, Node, Output, infer_shapes

from .config import MutationConfig
from .mating import crossover
from .registry import admits

Candidates = Iterator[Genome]


def _kind(node: Node) -> type:
    return type(node.gene)


def _aligned(first: Genome, second: Genome, node_id: str) -> bool:
    return (
        node_id in first._index
        and node_id in second._index
        and _kind(first.node(node_id)) is _kind(second.node(node_id))
    )


def _ordered(nodes: dict[str, Node], roots: list[str]) -> list[Node] | None:
    """``nodes`` in a topological order that keeps the order of ``roots`` where it can (each
    node right after what it reads); None when they form a cycle or read a missing node."""
    out: list[Node] = []
    done: set[str] = set()
    for root in roots:
        if root in done:
            continue
        stack: list[tuple[str, bool]] = [(root, False)]
        visiting: set[str] = set()
        while stack:
            node_id, expanded = stack.pop()
            if node_id in done:
                continue
            if node_id not in nodes:
                return None
            if expanded:
                visiting.discard(node_id)
                done.add(node_id)
                out.append(nodes[node_id])
                continue
            if node_id in visiting:
                return None  # a cycle
            visiting.add(node_id)
            stack.append((node_id, True))
            for ref in reversed(nodes[node_id].inputs):
                if ref not in done:
                    if ref in visiting:
                        return None
                    stack.append((ref, False))
    return out


# --- homologous crossover -------------------------------------------------------------------


def _components(second: Genome, own: list[str]) -> list[list[str]]:
    """The second parent's own nodes (ids the first lacks) in connected groups, each in the
    second parent's order, the groups in the order of their first node."""
    group = {node_id: node_id for node_id in own}

    def find(x: str) -> str:
        while group[x] != x:
            group[x] = group[group[x]]
            x = group[x]
        return x

    for node_id in own:
        for ref in second.node(node_id).inputs:
            if ref in group:
                group[find(ref)] = find(node_id)
    members: dict[str, list[str]] = {}
    for node_id in own:
        members.setdefault(find(node_id), []).append(node_id)
    return list(members.values())


def _primary_root(second: Genome, node_id: str, spliced: set[str]) -> str:
    """Where the chain of spliced nodes ending at ``node_id`` starts: following first inputs
    back to a node that is not spliced."""
    while node_id in spliced:
        node_id = second.node(node_id).inputs[0]
    return node_id


def _homologous_child(
    first: Genome, second: Genome, genes: set[str], groups: list[list[str]]
) -> Genome | None:
    """``first`` with the genes of ``genes`` taken from ``second`` and the node groups of
    ``groups`` (the second parent's own) spliced in where they fit; None when that gives no
    graph."""
    nodes = {
        n.id: attrs.evolve(n, gene=second.node(n.id).gene) if n.id in genes else n
        for n in first.nodes
    }
    wanted = {node_id for g in groups for node_id in g}
    spliced: set[str] = set()
    for node in second.nodes:  # in the second parent's order: inputs before consumers
        if node.id in wanted and all(
            ref in spliced or _aligned(first, second, ref) for ref in node.inputs
        ):
            nodes[node.id] = node
            spliced.add(node.id)
    # Rewire: an edge the second parent inserted a spliced chain on is rerouted through it, when
    # the first parent has that edge.
    for consumer in second.nodes:
        if consumer.id in spliced or not _aligned(first, second, consumer.id):
            continue
        inputs = list(nodes[consumer.id].inputs)
        for pos, ref in enumerate(consumer.inputs):
            if ref in spliced and pos < len(inputs):
                root = _primary_root(second, ref, spliced)
                if inputs[pos] == root and ref not in inputs:
                    inputs[pos] = ref
        nodes[consumer.id] = attrs.evolve(nodes[consumer.id], inputs=tuple(inputs))
    # Spliced nodes that found no place lead nowhere: drop them.
    useful = {first.nodes[-1].id}
    order = _ordered(nodes, [n.id for n in first.nodes])
    if order is None:
        return None
    for node in reversed(order):
        if node.id in useful:
            useful.update(node.inputs)
    kept = {k: v for k, v in nodes.items() if k in useful or k not in spliced}
    order = _ordered(kept, [n.id for n in first.nodes])
    if order is None:
        return None
    return attrs.evolve(first, nodes=tuple(order))


@crossover(
    changes="the first parent's structure; each aligned layer's settings from either parent;"
    " the second parent's own layers spliced in, with probability 1/2, where their edge exists"
)
def homologous_crossover(
    first: Genome, second: Genome, rng: random.Random, config: MutationConfig
) -> Candidates:
    differ = [
        n.id
        for n in first.nodes
        if _aligned(first, second, n.id) and n.gene != second.node(n.id).gene
    ]
    genes = [node_id for node_id in differ if rng.random() < 0.5]
    own = [n.id for n in second.nodes if n.id not in first._index]
    groups = [g for g in _components(second, own) if rng.random() < 0.5]
    drawn = _homologous_child(first, second, set(genes), groups)
    if drawn is not None:
        yield drawn
    # Repair: the draws one by one, each kept while the child stays valid.
    kept_genes: set[str] = set()
    kept_groups: list[list[str]] = []
    for kind, item in [("gene", g) for g in genes] + [("group", g) for g in groups]:
        trial_genes = kept_genes | {item} if kind == "gene" else kept_genes
        trial_groups = [*kept_groups, item] if kind == "group" else kept_groups
        child = _homologous_child(first, second, trial_genes, trial_groups)
        if child is not None and admits(config, child):
            kept_genes, kept_groups = trial_genes, trial_groups
    yield _homologous_child(first, second, kept_genes, kept_groups) or first


# --- subgraph exchange ----------------------------------------------------------------------


def cut_points(genome: Genome) -> list[str]:
    """The nodes every path from the input to the output goes through (the input included, the
    output left out), in genome order."""
    index = {n.id: i for i, n in enumerate(genome.nodes)}
    reach = 0  # the furthest node read by a node before the current one
    points = []
    for i, node in enumerate(genome.nodes[:-1]):
        if reach <= i:
            points.append(node.id)
        for consumer in genome.consumers(node.id):
            reach = max(reach, index[consumer])
    return points


def _exchange(first: Genome, second: Genome, start: str, end: str) -> Genome:
    """``first`` with its nodes after ``start`` up to ``end`` replaced by ``second``'s."""
    i1, j1 = (next(k for k, n in enumerate(first.nodes) if n.id == x) for x in (start, end))
    i2, j2 = (next(k for k, n in enumerate(second.nodes) if n.id == x) for x in (start, end))
    head, tail = first.nodes[: i1 + 1], first.nodes[j1 + 1 :]
    removed = {n.id: n for n in first.nodes[i1 + 1 : j1 + 1]}
    outside = {n.id for n in head} | {n.id for n in tail}
    rename: dict[str, str] = {}
    # Fresh ids are numbered above every id either parent's lineage has had (id_counter), as
    # the mutations number theirs: a renamed node must not take an id a removed layer had.
    last = max(first.id_counter, second.id_counter)
    for node in second.nodes[i2 + 1 : j2 + 1]:
        # An id keeps its meaning: one the first parent uses outside the block, or for another
        # kind of layer inside it, is taken by this node under a fresh id.
        mine = removed.get(node.id)
        if node.id in outside or (mine is not None and _kind(mine) is not _kind(node)):
            last += 1
            rename[node.id] = f"{node.gene.TYPE}{last}"
    block = tuple(
        Node(rename.get(n.id, n.id), n.gene, tuple(rename.get(r, r) for r in n.inputs))
        for n in second.nodes[i2 + 1 : j2 + 1]
    )
    return attrs.evolve(first, nodes=(*head, *block, *tail))


@crossover(
    changes="replaces the block between two aligned cut points of the first parent (one tensor"
    " in, one out, the same shapes in both) with the second parent's block there"
)
def subgraph_exchange(
    first: Genome, second: Genome, rng: random.Random, config: MutationConfig
) -> Candidates:
    shapes1, shapes2 = infer_shapes(first), infer_shapes(second)
    theirs = set(cut_points(second))
    points = [
        p
        for p in cut_points(first)
        if p in theirs and _aligned(first, second, p) and shapes1[p] == shapes2[p]
    ]
    index1 = {n.id: i for i, n in enumerate(first.nodes)}
    index2 = {n.id: i for i, n in enumerate(second.nodes)}
    pairs = [
        (a, b)
        for a in points
        for b in points
        if index1[a] < index1[b]
        and index2[a] < index2[b]
        and not isinstance(first.node(b).gene, Output)
    ]
    rng.shuffle(pairs)
    same = []
    for a, b in pairs:
        block1 = first.nodes[index1[a] + 1 : index1[b] + 1]
        block2 = second.nodes[index2[a] + 1 : index2[b] + 1]
        if block1 == block2:
            same.append((a, b))
            continue
        yield _exchange(first, second, a, b)
    for a, b in same:  # an exchange of equal blocks gives the first parent back
        yield _exchange(first, second, a, b)
    if first == second:  # no block to exchange at all (the input feeds the output)
        yield first
