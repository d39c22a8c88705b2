"""Genome builders: the minimal seed, a bounded random generator, and retargeting."""

from __future__ import annotations

import random

import attrs

from .errors import GenomeError
from .genes import Add, Concat, Conv, Dense, Dropout, Input, Output, Pool
from .genome import Genome, Node
from .validation import DEFAULT_BOUNDS, Bounds, infer_shapes, validate


def minimal(input_shape: tuple[int, int, int], num_classes: int, channels: int = 8) -> Genome:
    """The "poorly initialised" seed EIGEN starts from: one small convolution, global average
    pooling and the linear classifier."""
    return Genome(
        input_shape=input_shape,
        num_classes=num_classes,
        nodes=(
            Node("input", Input()),
            Node("conv1", Conv(channels, kernel=3), ("input",)),
            Node("pool1", Pool("avg", global_pool=True), ("conv1",)),
            Node("classifier", Dense(num_classes, activation="none"), ("pool1",)),
            Node("output", Output(), ("classifier",)),
        ),
    )


class _Ids:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, prefix: str) -> str:
        self.counts[prefix] = self.counts.get(prefix, 0) + 1
        return f"{prefix}{self.counts[prefix]}"


def random_genome(
    rng: random.Random,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    max_convs: int = 6,
    channels: tuple[int, ...] = (8, 16, 32, 64),
    kernels: tuple[int, ...] = (1, 3, 5),
    max_dense: int = 2,
    bounds: Bounds = DEFAULT_BOUNDS,
    binarize: float = 0.0,
    dropout_kinds: tuple[str, ...] = ("bernoulli",),
) -> Genome:
    """A random valid genome: a convolutional trunk with pooling, dropout and skip or
    concatenation joins, then a head of up to ``max_dense`` hidden dense layers. Each k x k
    convolution is pattern-binarized with probability ``binarize``; dropout layers draw their
    kind from ``dropout_kinds``.

    Every choice comes from ``rng``, so a hypothesis ``randoms()`` instance makes it shrinkable.
    A draw over ``bounds`` (too many parameters, say) is drawn again, up to 50 times; then the
    minimal genome is returned.
    """
    kwargs = dict(
        max_convs=max_convs,
        channels=channels,
        kernels=kernels,
        max_dense=max_dense,
        binarize=binarize,
        dropout_kinds=tuple(dropout_kinds),
    )
    for _ in range(50):
        try:
            return _random_genome(rng, input_shape, num_classes, bounds=bounds, **kwargs)
        except GenomeError:
            continue
    return validate(minimal(input_shape, num_classes), bounds)


def _random_genome(
    rng: random.Random,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    max_convs: int,
    channels: tuple[int, ...],
    kernels: tuple[int, ...],
    max_dense: int,
    bounds: Bounds,
    binarize: float,
    dropout_kinds: tuple[str, ...],
) -> Genome:
    ids = _Ids()

    # The defaults draw nothing extra, so a seed gives the genome it gave before these options.
    def dropout() -> Dropout:
        rate = round(rng.uniform(0.05, 0.5), 2)
        kind = rng.choice(dropout_kinds) if len(dropout_kinds) > 1 else dropout_kinds[0]
        if kind == "evolutional":
            return Dropout(kind=kind, samples=round(1.0 - rate, 2), per_channel=rng.random() < 0.5)
        return Dropout(rate, kind=kind)

    nodes = [Node("input", Input())]
    c, h, w = input_shape
    trunk: list[tuple[str, tuple[int, int, int]]] = [("input", (c, h, w))]
    cur = "input"
    kernels = tuple(k for k in kernels if k <= bounds.max_kernel) or (1,)
    channels = tuple(ch for ch in channels if ch <= bounds.max_channels) or (bounds.max_channels,)

    def emit(
        prefix: str, gene: object, inputs: tuple[str, ...], shape: tuple[int, int, int]
    ) -> str:
        node_id = ids(prefix)
        nodes.append(Node(node_id, gene, inputs))
        trunk.append((node_id, shape))
        return node_id

    for _ in range(rng.randint(1, max_convs)):
        k = rng.choice([k for k in kernels if k <= min(h, w) + 2 * (k // 2)])
        stride = 2 if min(h, w) >= 2 and rng.random() < 0.2 else 1
        out = rng.choice(channels)
        h, w = (h + 2 * (k // 2) - k) // stride + 1, (w + 2 * (k // 2) - k) // stride + 1
        c = out
        binarized = k > 1 and binarize > 0 and rng.random() < binarize
        scale = rng.choice(["filter", "offset"]) if binarized else "filter"
        conv = Conv(out, kernel=k, stride=stride, binarized=binarized, binary_scale=scale)
        cur = emit("conv", conv, (cur,), (c, h, w))
        if rng.random() < 0.25 and len(trunk) > 2:
            other, _shape = rng.choice(trunk[:-1])
            if rng.random() < 0.5:
                cur = emit("add", Add(), (cur, other), (c, h, w))
            elif c + _shape[0] <= bounds.max_channels:
                c += _shape[0]
                cur = emit("concat", Concat(), (cur, other), (c, h, w))
        if min(h, w) >= 2 and rng.random() < 0.3:
            mode = rng.choice(["max", "avg"])
            h, w = h // 2, w // 2
            cur = emit("pool", Pool(mode, kernel=2), (cur,), (c, h, w))
        if rng.random() < 0.15:
            cur = emit("dropout", dropout(), (cur,), (c, h, w))

    # Head: global pooling, or flattening (implicit in dense) when the map is small.
    if c * h * w > 1024 or rng.random() < 0.6:
        node_id = ids("pool")
        nodes.append(Node(node_id, Pool(rng.choice(["avg", "max"]), global_pool=True), (cur,)))
        cur = node_id
    for _ in range(rng.randint(0, max_dense)):
        node_id = ids("dense")
        nodes.append(Node(node_id, Dense(rng.choice([32, 64, 128])), (cur,)))
        cur = node_id
        if rng.random() < 0.3:
            node_id = ids("dropout")
            nodes.append(Node(node_id, dropout(), (cur,)))
            cur = node_id
    nodes.append(Node("classifier", Dense(num_classes, activation="none"), (cur,)))
    nodes.append(Node("output", Output(), ("classifier",)))
    return validate(Genome(input_shape, num_classes, tuple(nodes)), bounds)


def classifier_node(genome: Genome) -> str | None:
    """The id of the layer that produces the class scores: walking back from the output through
    parameter-free layers, the first dense layer or convolution."""
    node = genome.node(genome.nodes[-1].inputs[0]) if len(genome.nodes) > 1 else None
    while node is not None:
        if isinstance(node.gene, (Dense, Conv)):
            return node.id
        if isinstance(node.gene, (Pool, Dropout)) and node.inputs:
            node = genome.node(node.inputs[0])
        else:
            return None
    return None


def retarget(genome: Genome, input_shape: tuple[int, int, int], num_classes: int) -> Genome:
    """The same architecture for another input shape and class count.

    The classifier layer (see :func:`classifier_node`) gets ``num_classes`` outputs; fan-ins
    follow by themselves because genes never store input sizes. Raises GenomeError when the
    architecture does not fit the new input (a map would shrink below 1x1).
    """
    input_shape = tuple(input_shape)
    if input_shape == tuple(genome.input_shape) and num_classes == genome.num_classes:
        return genome
    nodes = list(genome.nodes)
    if num_classes != genome.num_classes:
        target = classifier_node(genome)
        if target is None:
            raise GenomeError("nodes: no classifier layer found before the output to retarget")
        i = next(i for i, n in enumerate(nodes) if n.id == target)
        gene = nodes[i].gene
        field = "units" if isinstance(gene, Dense) else "out_channels"
        nodes[i] = attrs.evolve(nodes[i], gene=attrs.evolve(gene, **{field: num_classes}))
    moved = attrs.evolve(
        genome, input_shape=input_shape, num_classes=num_classes, nodes=tuple(nodes)
    )
    try:
        infer_shapes(moved)
    except GenomeError as exc:
        raise GenomeError(
            [
                f"does not fit input {input_shape} with {num_classes} classes: {p}"
                for p in exc.problems
            ]
        ) from exc
    return moved
