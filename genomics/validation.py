"""Graph validation and shape inference.

Shapes are tuples: ``(C, H, W)`` for feature maps, ``(F,)`` for feature vectors.

The join rule (also in docs/genome.md): the first input of an ``add`` or ``concat`` is its primary
input and fixes the spatial size of the result; every other input is resampled to that size
(adaptive average pooling when it is at least as large in both dimensions, nearest-neighbour
interpolation otherwise). ``add`` keeps the primary's channels: other inputs are zero-padded or
truncated to them. ``concat`` stacks the channels of all inputs. Feature vectors follow the same
rule without the spatial part. Joins never add parameters, so a join always compiles.
"""

from __future__ import annotations

import math

from attrs import frozen

from .errors import GenomeError
from .genes import Add, Concat, Conv, Dense, Dropout, Input, Output, Pool
from .genome import Genome

Shape = tuple[int, ...]


@frozen
class Bounds:
    """Limits a genome must respect beyond what each gene checks alone; configurable per run."""

    max_nodes: int = 400
    max_kernel: int = 11
    max_stride: int = 4
    max_channels: int = 4096
    max_units: int = 16384
    max_params: int | None = None
    #: FLOPs of one forward pass on one image (:func:`flop_counts`).
    max_flops: int | None = None


DEFAULT_BOUNDS = Bounds()


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _pool_out(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    if not ceil_mode:
        return _conv_out(size, kernel, stride, padding)
    # PyTorch's rule: with ceil_mode the last window must start inside the (left-padded) input.
    out = math.ceil((size + 2 * padding - kernel) / stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _features(shape: Shape) -> int:
    return math.prod(shape)


def _node_shape(gene: object, in_shapes: list[Shape], num_classes: int) -> Shape:
    """Output shape of one node, or GenomeError naming the field at fault."""
    if isinstance(gene, (Conv, Pool)) and len(in_shapes[0]) != 3:
        raise GenomeError(f": {gene.TYPE} needs a (C, H, W) input, got features {in_shapes[0]}")
    if isinstance(gene, Conv):
        c, h, w = in_shapes[0]
        if c % gene.groups:
            raise GenomeError(f"groups: must divide the {c} input channels, got {gene.groups}")
        oh = _conv_out(h, gene.kernel, gene.stride, gene.padding)
        ow = _conv_out(w, gene.kernel, gene.stride, gene.padding)
        if oh < 1 or ow < 1:
            raise GenomeError(f": output would be {oh}x{ow} from a {h}x{w} input (must be >= 1x1)")
        return (gene.out_channels, oh, ow)
    if isinstance(gene, Pool):
        c, h, w = in_shapes[0]
        if gene.global_pool:
            return (c, 1, 1)
        size = [
            _pool_out(s, gene.kernel, gene.stride, gene.padding, gene.ceil_mode) for s in (h, w)
        ]
        if min(size) < 1:
            raise GenomeError(
                f": output would be {size[0]}x{size[1]} from a {h}x{w} input (must be >= 1x1)"
            )
        return (c, *size)
    if isinstance(gene, Dense):
        return (gene.units,)
    if isinstance(gene, Dropout):
        return in_shapes[0]
    if isinstance(gene, (Add, Concat)):
        ranks = {len(s) for s in in_shapes}
        if len(ranks) > 1:
            raise GenomeError(f": cannot join feature maps with feature vectors, got {in_shapes}")
        primary = in_shapes[0]
        if isinstance(gene, Add):
            return primary
        return (sum(s[0] for s in in_shapes), *primary[1:])
    if isinstance(gene, Output):
        got = _features(in_shapes[0])
        if got != num_classes:
            raise GenomeError(
                f": input has {got} features {in_shapes[0]}, expected num_classes = {num_classes}"
            )
        return (num_classes,)
    raise GenomeError(f": unknown gene {type(gene).__name__}")


def _arity(gene: object) -> tuple[int, int | None]:
    if isinstance(gene, Input):
        return (0, 0)
    if isinstance(gene, (Add, Concat)):
        return (2, None)
    return (1, 1)


def _gene_bounds(gene: object, bounds: Bounds) -> list[str]:
    if isinstance(gene, Pool) and gene.global_pool:
        return []  # its window fields are ignored
    problems = []
    limits = {
        "kernel": bounds.max_kernel,
        "stride": bounds.max_stride,
        "out_channels": bounds.max_channels,
        "units": bounds.max_units,
    }
    for name, limit in limits.items():
        value = getattr(gene, name, None)
        if value is not None and value > limit:
            problems.append(f"{name}: must be <= {limit}, got {value}")
    return problems


def _structure_problems(genome: Genome, bounds: Bounds) -> list[str]:
    nodes = genome.nodes
    problems: list[str] = []
    if len(nodes) < 2:
        return ["nodes: a genome needs at least an input and an output node"]
    if len(nodes) > bounds.max_nodes:
        problems.append(f"nodes: at most {bounds.max_nodes} nodes, got {len(nodes)}")
    if not isinstance(nodes[0].gene, Input):
        problems.append(f"nodes[0]: the first node must be the input, got {nodes[0].gene.TYPE}")
    if not isinstance(nodes[-1].gene, Output):
        problems.append(f"nodes[{len(nodes) - 1}]: the last node must be the output")
    seen: dict[str, int] = {}
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]"
        if i and isinstance(node.gene, Input):
            problems.append(f"{where}: a genome has exactly one input node (nodes[0])")
        if i < len(nodes) - 1 and isinstance(node.gene, Output):
            problems.append(f"{where}: a genome has exactly one output node (the last)")
        if node.id in seen:
            problems.append(f"{where}.id: duplicate id {node.id!r} (also nodes[{seen[node.id]}])")
        low, high = _arity(node.gene)
        n = len(node.inputs)
        if n < low or (high is not None and n > high):
            want = f"exactly {low}" if low == high else f"at least {low}"
            problems.append(f"{where}.inputs: {node.gene.TYPE} takes {want} inputs, got {n}")
        if len(set(node.inputs)) != n:
            problems.append(f"{where}.inputs: lists the same node twice {list(node.inputs)}")
        for j, ref in enumerate(node.inputs):
            if ref not in seen:
                later = any(m.id == ref for m in nodes[i:])
                why = (
                    "comes later (nodes must be in topological order, and the graph acyclic)"
                    if later
                    else "no such node"
                )
                problems.append(f"{where}.inputs[{j}]: {ref!r} {why}")
        problems += [f"{where}.{p}" for p in _gene_bounds(node.gene, bounds)]
        seen.setdefault(node.id, i)
    if problems:
        return problems
    # Everything is reachable from the input (each node reads earlier nodes, and only the input
    # reads none), so a node is off every input-output path exactly when it cannot reach the output.
    useful = {nodes[-1].id}
    for node in reversed(nodes):
        if node.id in useful:
            useful.update(node.inputs)
    for i, node in enumerate(nodes):
        if node.id not in useful:
            problems.append(f"nodes[{i}]: {node.id!r} does not lead to the output (unused)")
    return problems


def infer_shapes(genome: Genome, bounds: Bounds = DEFAULT_BOUNDS) -> dict[str, Shape]:
    """Validate ``genome`` and return the output shape of every node, by id.

    Raises GenomeError listing every problem found, each located (``nodes[3].kernel: ...``).
    """
    problems = _structure_problems(genome, bounds)
    if problems:
        raise GenomeError(problems)
    shapes: dict[str, Shape] = {}
    for i, node in enumerate(genome.nodes):
        if isinstance(node.gene, Input):
            shapes[node.id] = tuple(genome.input_shape)
            continue
        ins = [shapes.get(ref) for ref in node.inputs]
        if any(s is None for s in ins):
            continue  # an earlier node already failed; its problem is reported there
        try:
            shapes[node.id] = _node_shape(node.gene, ins, genome.num_classes)
        except GenomeError as exc:
            problems += exc.prefixed(f"nodes[{i}]").problems
    if not problems and bounds.max_params is not None:
        total = sum(parameter_counts(genome, shapes).values())
        if total > bounds.max_params:
            problems.append(f"params: at most {bounds.max_params:,}, got {total:,}")
    if not problems and bounds.max_flops is not None:
        total = sum(flop_counts(genome, shapes).values())
        if total > bounds.max_flops:
            problems.append(f"flops: at most {bounds.max_flops:,}, got {total:,}")
    if problems:
        raise GenomeError(problems)
    return shapes


def validate(genome: Genome, bounds: Bounds = DEFAULT_BOUNDS) -> Genome:
    """Return ``genome`` unchanged when it is valid; otherwise raise GenomeError."""
    infer_shapes(genome, bounds)
    return genome


def storage_bytes(genome: Genome, shapes: dict[str, Shape] | None = None) -> dict[str, int]:
    """Bytes needed to store each node's parameters, computed from the genes: float32 values,
    except a binarized convolution's weights at 1 bit each (rounded up per layer) plus a float32
    per scale (one per output filter, or one per layer with ``binary_scale="offset"``).
    Equals ``phenotypes.size_bytes`` of the compiled network."""
    shapes = shapes if shapes is not None else infer_shapes(genome)
    counts = parameter_counts(genome, shapes)
    sizes: dict[str, int] = {}
    for node in genome.nodes:
        gene = node.gene
        if isinstance(gene, Conv) and gene.binarized:
            cin = shapes[node.inputs[0]][0]
            weights = gene.out_channels * (cin // gene.groups) * gene.kernel**2
            scales = gene.out_channels if gene.binary_scale == "filter" else 1
            sizes[node.id] = -(-weights // 8) + 4 * (counts[node.id] - weights + scales)
        else:
            sizes[node.id] = 4 * counts[node.id]
    return sizes


def parameter_counts(genome: Genome, shapes: dict[str, Shape] | None = None) -> dict[str, int]:
    """Trainable parameters per node id, computed from the genes (no torch needed)."""
    shapes = shapes if shapes is not None else infer_shapes(genome)
    counts: dict[str, int] = {}
    for node in genome.nodes:
        gene = node.gene
        n = 0
        if isinstance(gene, Conv):
            cin = shapes[node.inputs[0]][0]
            n = gene.out_channels * (cin // gene.groups) * gene.kernel**2
            n += gene.out_channels * (int(gene.bias) + 2 * int(gene.batch_norm))
        elif isinstance(gene, Dense):
            n = _features(shapes[node.inputs[0]]) * gene.units + gene.units * int(gene.bias)
        counts[node.id] = n
    return counts


def flop_counts(genome: Genome, shapes: dict[str, Shape] | None = None) -> dict[str, int]:
    """FLOPs of one forward pass on one image, per node id, computed from the genes (no torch
    needed): a multiply-add is 2 FLOPs, and only convolutions and dense layers count (their
    biases, batch norm, activations, pooling, joins and dropout do not), as
    ``torch.utils.flop_counter`` counts them. Equals ``phenotypes.count_flops`` of the compiled
    network."""
    shapes = shapes if shapes is not None else infer_shapes(genome)
    counts: dict[str, int] = {}
    for node in genome.nodes:
        gene = node.gene
        n = 0
        if isinstance(gene, Conv):
            cin = shapes[node.inputs[0]][0]
            _, oh, ow = shapes[node.id]
            n = 2 * oh * ow * gene.out_channels * (cin // gene.groups) * gene.kernel**2
        elif isinstance(gene, Dense):
            n = 2 * _features(shapes[node.inputs[0]]) * gene.units
        counts[node.id] = n
    return counts
