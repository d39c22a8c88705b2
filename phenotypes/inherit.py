"""Weight inheritance: a child network starts from its parent's trained weights.

Layers are matched by node id, which mutations keep (a new layer gets an id no ancestor had:
``genomics.Genome.id_counter``). Every parameter and buffer of a matched layer is copied where
shapes agree; where a mutation changed a shape, what overlaps is copied and the rest is set so
that the child computes what its parent did wherever that is possible (network morphisms,
Net2Net):

- more output channels: the old filters are kept, the new ones keep their random start, and
  every layer reading them gets zero weights from them; fewer: the first ones are kept. In a
  grouped (or depthwise) convolution this holds group by group: group g keeps the first of the
  parent's group g filters, so a filter stays with the input channels it was trained on;
- more input channels (a wider producer, a concatenation): the weights from the new channels
  are zero; fewer: those of the first channels are kept. Each layer follows which of the
  parent's channels its input holds where (a wider grouped producer interleaves its new
  channels; a concatenation after a widened input moves the channels after it), so a weight
  meets the channel it was trained on wherever that channel is still in its input (its group);
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

from genomics import Add, Concat, Conv, Dense, Genome, Input, Node, infer_shapes

#: For each channel of a tensor of the child, the parent's channel it holds (-1: one the parent
#: did not have; layers reading it get zero weights from it).
ChannelMap = list[int]


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
    zero = _new_branches(child_genome, new_ids)
    copied = 0
    identity: list[str] = []
    fresh: list[str] = []
    # Which of the parent's channels each node's output holds: what a layer reading it copies.
    channels: dict[str, ChannelMap] = {}

    def module(names: dict, mods: dict, key: str) -> nn.Module | None:
        return mods.get(names[key]) if key in names else None

    with torch.no_grad():
        for node in child_genome.nodes:
            gene, nid = node.gene, node.id
            width = c_shapes[nid][0]
            if not isinstance(gene, (Conv, Dense)):
                channels[nid] = _passed_on(node, width, channels, zero, old.get(nid), p_shapes)
                continue
            channels[nid] = list(range(width))  # unless copied: the positions as they are
            layer = module(c_names, c_mods, nid)
            in_map = channels[node.inputs[0]]
            pid = source_of.get(nid)
            before = old.get(pid) if pid is not None else None
            if before is None:
                if _start_as_identity(gene, layer, module(c_names, c_mods, f"{nid}_bn")):
                    identity.append(nid)
                    channels[nid] = _identity_map(gene, in_map, width, c_shapes[node.inputs[0]])
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
                count, channels[nid] = _copy_conv(source, layer, gene.groups, in_map)
                copied += count
                bn, old_bn = (
                    module(c_names, c_mods, f"{nid}_bn"),
                    module(p_names, p_mods, f"{pid}_bn"),
                )
                if bn is not None and old_bn is not None:
                    copied += _copy_batch_norm(old_bn, bn, channels[nid])
            else:
                shape, old_shape = c_shapes[node.inputs[0]], p_shapes[before.inputs[0]]
                if _spatial(shape) != _spatial(old_shape):  # the features do not match
                    fresh.append(nid)
                    continue
                count, channels[nid] = _copy_dense(source, layer, old_shape[0], shape, in_map)
                copied += count
        zeroed = _zero(zero, c_names, c_mods)
    total = sum(p.numel() for p in child.parameters())
    return Inheritance(copied, total, tuple(identity), tuple(zeroed), tuple(fresh))


def _passed_on(
    node: Node,
    width: int,
    channels: dict[str, ChannelMap],
    zero: list[str],
    before: Node | None,
    p_shapes: dict,
) -> ChannelMap:
    """The channels of a node without weights: those of its (primary) input, which pooling,
    dropout and a sum keep; a concatenation's, each input's after the channels the parent's
    inputs before it had (an added one: its primary input's, then channels the parent had not)."""
    if isinstance(node.gene, Input) or not node.inputs:
        return list(range(width))
    if isinstance(node.gene, Concat):
        if before is None:  # added on its primary input's edge: the rest is new
            primary = channels[node.inputs[0]]
            return primary + [-1] * (width - len(primary))
        if not isinstance(before.gene, Concat) or len(before.inputs) != len(node.inputs):
            return list(range(width))
        out: ChannelMap = []
        offset = 0
        for i, parent_input in zip(node.inputs, before.inputs, strict=True):
            had = p_shapes[parent_input][0]
            out += [offset + c if 0 <= c < had else -1 for c in channels[i]]
            offset += had
        return out
    primary = channels[node.inputs[0]]
    if isinstance(node.gene, Add) and node.inputs[0] in zero:
        # The primary branch starts at zero: the sum is the other input's (padded or cut).
        others = [i for i in node.inputs if i not in zero]
        if len(others) == 1:
            primary = channels[others[0]]
    primary = primary[:width]
    return primary + [-1] * (width - len(primary))


def _identity_map(gene: Conv | Dense, in_map: ChannelMap, width: int, shape: tuple) -> ChannelMap:
    """An identity start passes its input's channels on (a dense layer reading a map flattens
    it: its units are positions, not channels, then)."""
    if isinstance(gene, Dense) and math.prod(shape[1:]) != 1:
        return list(range(width))
    kept = in_map[:width]
    return kept + [-1] * (width - len(kept))


def _copy_conv(
    source: nn.Conv2d, target: nn.Conv2d, groups: int, in_map: ChannelMap
) -> tuple[int, ChannelMap]:
    """The overlap of ``source``'s filters into ``target``'s, group by group: group g keeps
    the first of the parent's group g filters, each reading the input channels ``in_map``
    says are the parent's (in that group; the rest zero); kernels centred or cropped. Returns
    the values copied and which parent filter each filter holds."""
    w_old, w = source.weight, target.weight
    per, per_old = w.shape[0] // groups, w_old.shape[0] // groups  # filters of a group
    cin, cin_old = w.shape[1], w_old.shape[1]  # input channels of a group
    k_old, k = w_old.shape[-1], w.shape[-1]
    if len(in_map) != groups * cin:
        in_map = list(range(groups * cin))
    filters = torch.arange(w.shape[0])
    group, rank = filters // per, filters % per
    kept = rank < per_old
    parent_filter = torch.where(kept, group * per_old + rank, -1)
    # The parent's input channel each weight reads, as an index within its filter's group.
    mapped = torch.as_tensor(in_map)[group[:, None] * cin + torch.arange(cin)]
    within = mapped - group[:, None] * cin_old
    valid = (mapped >= 0) & (within >= 0) & (within < cin_old) & kept[:, None]
    if k >= k_old:
        a = (k - k_old) // 2
        fitted = w_old.new_zeros((*w_old.shape[:2], k, k))
        fitted[..., a : a + k_old, a : a + k_old] = w_old
    else:
        a = (k_old - k) // 2
        fitted = w_old[..., a : a + k, a : a + k]
    rows = fitted[parent_filter[kept][:, None], within[kept].clamp(0, cin_old - 1)]
    w[kept] = rows * valid[kept][..., None, None].to(rows.dtype)
    copied = int(valid.sum()) * min(k, k_old) ** 2
    if target.bias is not None and source.bias is not None:
        target.bias[kept] = source.bias[parent_filter[kept]]
        copied += int(kept.sum())
    return copied, parent_filter.tolist()


def _copy_batch_norm(source: nn.BatchNorm2d, target: nn.BatchNorm2d, held: ChannelMap) -> int:
    """Scales, shifts and running statistics of the channels that hold one of the parent's
    (``held``: which, or -1)."""
    index = torch.as_tensor(held)
    kept = index >= 0
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(target, name)[kept] = getattr(source, name)[index[kept]]
    target.num_batches_tracked.copy_(source.num_batches_tracked)
    return 2 * int(kept.sum())


def _spatial(shape: tuple) -> tuple:
    """The map size of a dense layer's input (none for features and 1 x 1 maps alike: both
    flatten to one feature per channel)."""
    return () if math.prod(shape[1:]) == 1 else tuple(shape[1:])


def _copy_dense(
    source: nn.Linear, target: nn.Linear, old_channels: int, shape: tuple, in_map: ChannelMap
) -> tuple[int, ChannelMap]:
    """The overlap of a dense layer whose input has the same map size (or none): features are
    flattened channel by channel, so the kept units read the parent's channels where ``in_map``
    puts them and get zero weights from the rest. Returns the values copied and which parent
    unit each unit holds."""
    spatial = math.prod(shape[1:])
    units = min(source.out_features, target.out_features)
    if len(in_map) != shape[0]:
        in_map = list(range(shape[0]))
    index = torch.as_tensor(in_map)
    valid = (index >= 0) & (index < old_channels)
    w_old = source.weight.view(source.out_features, old_channels, spatial)
    w = target.weight.view(target.out_features, shape[0], spatial)
    w[:units].zero_()
    w[:units, valid] = w_old[:units][:, index[valid]]
    copied = units * int(valid.sum()) * spatial
    if target.bias is not None and source.bias is not None:
        target.bias[:units] = source.bias[:units]
        copied += units
    return copied, list(range(units)) + [-1] * (target.out_features - units)


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


def _new_branches(genome: Genome, new_ids: set[str]) -> list[str]:
    """The inputs of each added sum that are added convolutions, unless all its inputs are:
    they start at zero, so the sum is its other inputs' at first (zeroing them all would zero
    the sum)."""
    branches = []
    for node in genome.nodes:
        if node.id not in new_ids or not isinstance(node.gene, Add):
            continue
        new = [i for i in node.inputs if i in new_ids and isinstance(genome.node(i).gene, Conv)]
        if len(new) < len(node.inputs):
            branches += new
    return branches


def _zero(branches: list[str], names: dict, mods: dict) -> list[str]:
    """``branches`` started at zero: their batch norm's scale and shift, or their weights."""
    for branch in branches:
        bn_name = names.get(f"{branch}_bn")
        target = mods[bn_name] if bn_name else mods[names[branch]]
        target.weight.zero_()
        if target.bias is not None:
            target.bias.zero_()
    return branches
