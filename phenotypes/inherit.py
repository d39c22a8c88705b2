"""Weight inheritance: a child network starts from its parent's trained weights.

Layers are matched by node id, which mutations keep (a new layer gets an id no ancestor had:
``genomics.Genome.id_counter``). Every
parameter and buffer of a matched layer is copied where shapes agree; where a mutation changed
a shape, what overlaps is copied and the rest is set so that the child computes what its parent
did wherever that is possible (network morphisms, Net2Net):

- more output channels: the old filters are kept, the new ones keep their random start, and
  every layer reading them gets zero weights from them; fewer: the first ones are kept;
- more input channels (a wider producer, a concatenation): the weights from the new channels
  are zero; fewer: those of the first channels are kept;
- another kernel size: the old kernel is centred in the new one with a zero border (exact for
  "same" padding), or its centre is cropped;
- stride and pooling changes: the weights carry over as they are.

Added layers start as the identity where one exists: a convolution as a Dirac kernel with its
batch norm passing its input through (in evaluation mode), a dense layer as an identity matrix
(when it is at least as wide as its input); the branch an added join brings in that ends in a
new convolution starts at zero (its last scale zeroed), so the sum is the old path. For an
input that can be negative the ReLU of an added layer is not the identity: that is why those
operators are declared ``approximate`` (``operators.OperatorInfo.preserves``). Blocks that gene
duplication repeats under new ids inherit their originals' weights, given the copy map.
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import nn

from genomics import Add, Conv, Dense, Genome, infer_shapes


@attrs.frozen
class Inheritance:
    """What a child took from its parent: ``copied`` of its ``total`` parameter values came
    from the parent; ``identity`` lists the added layers started as the identity, ``zeroed``
    the added branches started at zero, ``fresh`` the layers that start random."""

    copied: int
    total: int
    identity: tuple[str, ...] = ()
    zeroed: tuple[str, ...] = ()
    fresh: tuple[str, ...] = ()

    @property
    def fraction(self) -> float:
        """The share of the child's parameter values copied from its parent."""
        return self.copied / self.total if self.total else 0.0


def inherit_weights(
    child: nn.Module,
    child_genome: Genome,
    parent: nn.Module,
    parent_genome: Genome,
    copies: dict[str, str] | None = None,
) -> Inheritance:
    """Copy ``parent``'s weights (``parent_genome``'s compiled module) into ``child`` (just
    compiled from ``child_genome``) in place, as the module docstring describes. ``copies``
    maps nodes of the child that copy a parent's node under another id (gene duplication's
    repeated blocks) to that node: they get its weights."""
    c_names, p_names = child.meta["module_names"], parent.meta["module_names"]
    c_mods, p_mods = dict(child.named_modules()), dict(parent.named_modules())
    c_shapes, p_shapes = infer_shapes(child_genome), infer_shapes(parent_genome)
    old = {n.id: n for n in parent_genome.nodes}
    source_of = {n.id: n.id for n in child_genome.nodes if n.id in old}
    source_of.update(
        (copy, original) for copy, original in (copies or {}).items() if original in old
    )
    new_ids = {n.id for n in child_genome.nodes if n.id not in source_of}
    copied = 0
    identity: list[str] = []
    fresh: list[str] = []

    def module(names: dict, mods: dict, key: str) -> nn.Module | None:
        return mods.get(names[key]) if key in names else None

    with torch.no_grad():
        for node in child_genome.nodes:
            gene, nid = node.gene, node.id
            if not isinstance(gene, (Conv, Dense)):
                continue
            layer = module(c_names, c_mods, nid)
            pid = source_of.get(nid)
            before = old.get(pid) if pid is not None else None
            if before is None:
                if _start_as_identity(gene, layer, module(c_names, c_mods, f"{nid}_bn")):
                    identity.append(nid)
                else:
                    fresh.append(nid)
                continue
            if type(before.gene) is not type(gene):
                fresh.append(nid)
                continue
            source = module(p_names, p_mods, pid)
            if isinstance(gene, Conv):
                if before.gene.groups != gene.groups:
                    fresh.append(nid)
                    continue
                copied += _copy_conv(source, layer)
                bn, old_bn = (
                    module(c_names, c_mods, f"{nid}_bn"),
                    module(p_names, p_mods, f"{pid}_bn"),
                )
                if bn is not None and old_bn is not None:
                    copied += _copy_batch_norm(old_bn, bn)
            else:
                shape, old_shape = c_shapes[node.inputs[0]], p_shapes[before.inputs[0]]
                if _spatial(shape) != _spatial(old_shape):  # the features do not match
                    fresh.append(nid)
                    continue
                copied += _copy_dense(source, layer, old_shape[0], shape)
        zeroed = _zero_new_branches(child_genome, new_ids, c_names, c_mods)
    total = sum(p.numel() for p in child.parameters())
    return Inheritance(copied, total, tuple(identity), tuple(zeroed), tuple(fresh))


def _copy_conv(source: nn.Conv2d, target: nn.Conv2d) -> int:
    """The overlap of ``source``'s filters into ``target``'s: kernels centred or cropped, the
    kept filters' weights from new input channels zero."""
    w_old, w = source.weight, target.weight
    o, i = min(w.shape[0], w_old.shape[0]), min(w.shape[1], w_old.shape[1])
    k_old, k = w_old.shape[-1], w.shape[-1]
    w[:o].zero_()
    if k >= k_old:
        a = (k - k_old) // 2
        w[:o, :i, a : a + k_old, a : a + k_old] = w_old[:o, :i]
    else:
        a = (k_old - k) // 2
        w[:o, :i] = w_old[:o, :i, a : a + k, a : a + k]
    copied = o * i * min(k, k_old) ** 2
    if target.bias is not None and source.bias is not None:
        target.bias[:o] = source.bias[:o]
        copied += o
    return copied


def _copy_batch_norm(source: nn.BatchNorm2d, target: nn.BatchNorm2d) -> int:
    """Scales, shifts and running statistics of the channels both have."""
    n = min(source.num_features, target.num_features)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(target, name)[:n] = getattr(source, name)[:n]
    target.num_batches_tracked.copy_(source.num_batches_tracked)
    return 2 * n


def _spatial(shape: tuple) -> tuple:
    """The map size of a dense layer's input (none for features and 1 x 1 maps alike: both
    flatten to one feature per channel)."""
    return () if math.prod(shape[1:]) == 1 else tuple(shape[1:])


def _copy_dense(source: nn.Linear, target: nn.Linear, old_channels: int, shape: tuple) -> int:
    """The overlap of a dense layer whose input has the same map size (or none): features are
    flattened channel by channel, so the kept units' weights from new channels are zero."""
    spatial = math.prod(shape[1:])
    units = min(source.out_features, target.out_features)
    channels = min(old_channels, shape[0])
    w_old = source.weight.view(source.out_features, old_channels, spatial)
    w = target.weight.view(target.out_features, shape[0], spatial)
    w[:units].zero_()
    w[:units, :channels] = w_old[:units, :channels]
    copied = units * channels * spatial
    if target.bias is not None and source.bias is not None:
        target.bias[:units] = source.bias[:units]
        copied += units
    return copied


def _start_as_identity(gene: Conv | Dense, layer: nn.Module, bn: nn.Module | None) -> bool:
    """An added layer set to pass its input through (before its activation), where its shape
    allows: a convolution of one group with a Dirac kernel, a dense layer as wide as its input
    or wider as an identity matrix."""
    if isinstance(gene, Dense):
        if layer.out_features < layer.in_features:
            return False
        layer.weight.copy_(torch.eye(layer.out_features, layer.in_features))
        if layer.bias is not None:
            layer.bias.zero_()
        return True
    if gene.groups != 1 or layer.out_channels > layer.in_channels:
        return False
    nn.init.dirac_(layer.weight)
    if layer.bias is not None:
        layer.bias.zero_()
    if bn is not None:
        bn.weight.fill_(1.0)
        bn.bias.zero_()
        bn.running_mean.zero_()
        # (x - 0) / sqrt(var + eps) is x exactly when var = 1 - eps.
        bn.running_var.fill_(1.0 - bn.eps)
    return True


def _zero_new_branches(genome: Genome, new_ids: set[str], names: dict, mods: dict) -> list[str]:
    """In each added sum, the inputs that are added convolutions start at zero (their batch
    norm's scale and shift, or their weights), so the sum is its other inputs' at first."""
    zeroed = []
    for node in genome.nodes:
        if node.id not in new_ids or not isinstance(node.gene, Add):
            continue
        branches = [
            i for i in node.inputs if i in new_ids and isinstance(genome.node(i).gene, Conv)
        ]
        if len(branches) == len(node.inputs):
            continue  # every input is new: zeroing them all would zero the sum
        for branch in branches:
            bn_name = names.get(f"{branch}_bn")
            target = mods[bn_name] if bn_name else mods[names[branch]]
            target.weight.zero_()
            if target.bias is not None:
                target.bias.zero_()
            zeroed.append(branch)
    return zeroed
