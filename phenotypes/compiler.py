"""Genome -> torch.fx.GraphModule.

The graph is built node by node with torch.fx, so ``module.code`` reads like a hand-written
``forward``: one line per layer, named after the genome's node ids.
"""

from __future__ import annotations

import keyword
import math
import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from genomics import (
    Add,
    Concat,
    Conv,
    Dense,
    Dropout,
    Genome,
    Input,
    Output,
    Pool,
    canonical_hash,
    infer_shapes,
)

from .layers import EvolutionalDropout, PatternBinarizedConv2d

ACTIVATION_FUNCTIONS = {
    "relu": F.relu,
    "relu6": F.relu6,
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "silu": F.silu,
    "hardswish": F.hardswish,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


class _Builder:
    def __init__(self) -> None:
        self.root = nn.Module()
        self.graph = fx.Graph()
        #: The submodule each layer got, by the name asked for (a node id, ``ID_bn``).
        self.names: dict[str, str] = {}

    def module(self, name: str, module: nn.Module, arg: fx.Node) -> fx.Node:
        # A node id may shadow an nn.Module attribute ("training", "to") or a keyword.
        asked = name
        while keyword.iskeyword(name) or hasattr(self.root, name):
            name += "_"
        self.names[asked] = name
        self.root.add_module(name, module)
        return self.graph.create_node("call_module", name, (arg,), name=name)

    def call(self, fn, args: tuple, name: str, **kwargs) -> fx.Node:
        return self.graph.create_node("call_function", fn, args, kwargs, name=name)

    def activation(self, value: fx.Node, activation: str, name: str) -> fx.Node:
        if activation == "none":
            return value
        return self.call(ACTIVATION_FUNCTIONS[activation], (value,), f"{name}_{activation}")

    def fit(
        self, value: fx.Node, shape: tuple, target: tuple, channels: bool, name: str
    ) -> fx.Node:
        """Apply the join rule (genomics.validation) to a non-primary join input."""
        if len(shape) == 3 and shape[1:] != target[1:]:
            size = tuple(target[1:])
            if shape[1] >= size[0] and shape[2] >= size[1]:
                value = self.call(F.adaptive_avg_pool2d, (value, size), f"{name}_resampled")
            else:
                value = self.call(F.interpolate, (value,), f"{name}_resampled", size=size)
        if channels and shape[0] != target[0]:
            if shape[0] < target[0]:
                pad = (0, 0, 0, 0) if len(shape) == 3 else ()
                value = self.call(F.pad, (value, (*pad, 0, target[0] - shape[0])), f"{name}_padded")
            else:
                value = self.call(torch.narrow, (value, 1, 0, target[0]), f"{name}_truncated")
        return value


def compile_genome(genome: Genome, *, seed: int | None = None) -> fx.GraphModule:
    """Build the PyTorch module of ``genome`` (validated first).

    Input ``(N, C, H, W)``, output ``(N, num_classes)`` logits. ``seed`` makes the weight
    initialisation reproducible without touching the global random state.
    """
    shapes = infer_shapes(genome)
    if seed is None:
        return _compile(genome, shapes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _compile(genome, shapes)


def _compile(genome: Genome, shapes: dict) -> fx.GraphModule:
    b = _Builder()
    values: dict[str, fx.Node] = {}
    for node in genome.nodes:
        gene, nid = node.gene, node.id
        ins = [values[i] for i in node.inputs]
        in_shapes = [shapes[i] for i in node.inputs]
        if isinstance(gene, Input):
            values[nid] = b.graph.placeholder("x")
        elif isinstance(gene, Conv):
            conv = dict(
                stride=gene.stride, padding=gene.padding, groups=gene.groups, bias=gene.bias
            )
            if gene.binarized:
                conv.update(scale=gene.binary_scale, offset=gene.binary_offset)
            cls = PatternBinarizedConv2d if gene.binarized else nn.Conv2d
            layer = cls(in_shapes[0][0], gene.out_channels, gene.kernel, **conv)
            v = b.module(nid, layer, ins[0])
            if gene.batch_norm:
                v = b.module(f"{nid}_bn", nn.BatchNorm2d(gene.out_channels), v)
            values[nid] = b.activation(v, gene.activation, nid)
        elif isinstance(gene, Pool):
            if gene.global_pool:
                fn = F.adaptive_max_pool2d if gene.mode == "max" else F.adaptive_avg_pool2d
                values[nid] = b.call(fn, (ins[0], 1), nid)
            else:
                cls = nn.MaxPool2d if gene.mode == "max" else nn.AvgPool2d
                layer = cls(gene.kernel, gene.stride, gene.padding, ceil_mode=gene.ceil_mode)
                values[nid] = b.module(nid, layer, ins[0])
        elif isinstance(gene, Dropout):
            if gene.kind == "evolutional":
                layer = EvolutionalDropout(gene.samples, gene.per_channel)
            else:
                layer = nn.Dropout(gene.rate)
            values[nid] = b.module(nid, layer, ins[0])
        elif isinstance(gene, Dense):
            v = ins[0]
            if len(in_shapes[0]) == 3:
                v = b.call(torch.flatten, (v, 1), f"{nid}_flatten")
            in_features = math.prod(in_shapes[0])
            v = b.module(nid, nn.Linear(in_features, gene.units, bias=gene.bias), v)
            values[nid] = b.activation(v, gene.activation, nid)
        elif isinstance(gene, (Add, Concat)):
            target = shapes[nid] if isinstance(gene, Add) else in_shapes[0]
            fitted = [ins[0]] + [
                b.fit(v, s, target, isinstance(gene, Add), f"{nid}_{src}")
                for v, s, src in zip(ins[1:], in_shapes[1:], node.inputs[1:], strict=True)
            ]
            if isinstance(gene, Add):
                acc = fitted[0]
                for k, v in enumerate(fitted[1:], 1):
                    acc = b.call(
                        operator.add, (acc, v), nid if k == len(fitted) - 1 else f"{nid}_{k}"
                    )
                values[nid] = b.activation(acc, gene.activation, nid)
            else:
                values[nid] = b.call(torch.cat, (fitted,), nid, dim=1)
        elif isinstance(gene, Output):
            v = ins[0]
            if len(in_shapes[0]) != 1:
                v = b.call(torch.flatten, (v, 1), "logits")
            b.graph.output(v)
    b.graph.lint()
    module = fx.GraphModule(b.root, b.graph, class_name="EcogenNet")
    module.meta["genome_hash"] = canonical_hash(genome)
    # Which submodule is which node's: weight inheritance matches layers by node id.
    module.meta["module_names"] = b.names
    return module
