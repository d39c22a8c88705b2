"""The builders behind the zoo's JSON files (``python -m zoo.builders`` rewrites them).

The JSON files are the zoo; the builders document how each was made and a test keeps the two
identical.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from genomics import Add, Conv, Dense, Genome, Input, Node, Output, Pool, dumps, minimal


def lenet5(input_shape=(1, 28, 28), num_classes: int = 10) -> Genome:
    """LeNet-5 style: two 5x5 convolutions (with batch norm and ReLU), each followed by 2x2 max
    pooling, then dense layers of 120 and 84 units. "Same" padding lets it fit 8x8 digits."""
    return Genome(
        input_shape,
        num_classes,
        (
            Node("input", Input()),
            Node("conv1", Conv(6, kernel=5), ("input",)),
            Node("pool1", Pool("max", kernel=2), ("conv1",)),
            Node("conv2", Conv(16, kernel=5), ("pool1",)),
            Node("pool2", Pool("max", kernel=2), ("conv2",)),
            Node("fc1", Dense(120), ("pool2",)),
            Node("fc2", Dense(84), ("fc1",)),
            Node("classifier", Dense(num_classes, activation="none"), ("fc2",)),
            Node("output", Output(), ("classifier",)),
        ),
    )


def resnet(
    depth: int = 20,
    input_shape=(3, 32, 32),
    num_classes: int = 10,
    widths: tuple[int, int, int] = (16, 32, 64),
) -> Genome:
    """The CIFAR ResNet of He et al. (depth 6n+2; 16, 32, 64 channels) with parameter-free
    shortcuts ("option A"): where a block halves the size and doubles the channels, the join rule
    averages the shortcut down to the new size and zero-pads its channels. ResNet-20 has 269,722
    parameters (projection shortcuts would add 2,752)."""
    if (depth - 2) % 6:
        raise ValueError(f"depth must be 6n+2, got {depth}")
    blocks = (depth - 2) // 6
    nodes = [Node("input", Input()), Node("stem", Conv(widths[0], kernel=3), ("input",))]
    cur = "stem"
    for stage, width in enumerate(widths, start=1):
        for block in range(1, blocks + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            name = f"s{stage}b{block}"
            nodes.append(Node(f"{name}_conv1", Conv(width, kernel=3, stride=stride), (cur,)))
            nodes.append(
                Node(f"{name}_conv2", Conv(width, kernel=3, activation="none"), (f"{name}_conv1",))
            )
            nodes.append(Node(f"{name}_add", Add(activation="relu"), (f"{name}_conv2", cur)))
            cur = f"{name}_add"
    nodes.append(Node("pool", Pool("avg", global_pool=True), (cur,)))
    nodes.append(Node("classifier", Dense(num_classes, activation="none"), ("pool",)))
    nodes.append(Node("output", Output(), ("classifier",)))
    return Genome(input_shape, num_classes, tuple(nodes))


def squeeze_classifier(input_shape=(3, 32, 32), num_classes: int = 10) -> Genome:
    """A small all-convolutional network with a SqueezeNet-style head: a 1x1 convolution to
    ``num_classes`` channels, then global average pooling, and no dense layer."""
    return Genome(
        input_shape,
        num_classes,
        (
            Node("input", Input()),
            Node("conv1", Conv(32, kernel=3), ("input",)),
            Node("pool1", Pool("max", kernel=2), ("conv1",)),
            Node("conv2", Conv(64, kernel=3), ("pool1",)),
            Node("pool2", Pool("max", kernel=2), ("conv2",)),
            Node("conv3", Conv(128, kernel=3), ("pool2",)),
            Node(
                "classifier",
                Conv(num_classes, kernel=1, bias=True, batch_norm=False, activation="none"),
                ("conv3",),
            ),
            Node("pool", Pool("avg", global_pool=True), ("classifier",)),
            Node("output", Output(), ("pool",)),
        ),
    )


#: Zoo name -> (builder, one-line description).
BUILDERS: dict[str, tuple[Callable[[], Genome], str]] = {
    "minimal": (
        lambda: minimal((1, 28, 28), 10),
        "EIGEN's poorly initialised seed: one 3x3 conv, global pooling, linear",
    ),
    "lenet5": (lenet5, "LeNet-5 style: two 5x5 convs with max pooling, dense 120-84"),
    "resnet20": (
        lambda: resnet(20),
        "CIFAR ResNet-20 with parameter-free shortcuts (269,722 params)",
    ),
    "squeeze_classifier": (
        squeeze_classifier,
        "all-conv net with a 1x1 conv + global pooling head",
    ),
}

GENOME_DIR = Path(__file__).parent / "genomes"


def write_all() -> None:
    """Rewrite every zoo JSON file from its builder."""
    for name, (build, _) in BUILDERS.items():
        (GENOME_DIR / f"{name}.json").write_text(dumps(build()))
    index = {name: description for name, (_, description) in BUILDERS.items()}
    (GENOME_DIR / "index.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    write_all()
