"""The builders behind the zoo's JSON files (``python -m zoo.builders`` rewrites them).

The JSON files are the zoo; the builders document how each was made and a test keeps the two
identical.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from attrs import frozen

from genomics import (
    Add,
    Concat,
    Conv,
    Dense,
    Dropout,
    Genome,
    Input,
    Node,
    Output,
    Pool,
    dumps,
    minimal,
    sep_module,
)


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


def _fire(name: str, source: str, squeeze: int, expand: int) -> list[Node]:
    """SqueezeNet fire module: a 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""

    def conv(out: int, kernel: int) -> Conv:
        return Conv(out, kernel=kernel, bias=True, batch_norm=False)

    return [
        Node(f"{name}_squeeze", conv(squeeze, 1), (source,)),
        Node(f"{name}_expand1x1", conv(expand, 1), (f"{name}_squeeze",)),
        Node(f"{name}_expand3x3", conv(expand, 3), (f"{name}_squeeze",)),
        Node(name, Concat(), (f"{name}_expand1x1", f"{name}_expand3x3")),
    ]


def squeezenet1_1(input_shape=(3, 224, 224), num_classes: int = 1000) -> Genome:
    """torchvision's ``squeezenet1_1``, layer for layer: a 3x3 stride-2 convolution without
    padding, ceil-mode 3x3 max pooling, eight fire modules, then dropout, a 1x1 convolution
    classifier with ReLU and global average pooling. Convolutions have biases and no batch norm.
    1,235,496 parameters at 1000 classes."""
    pool = Pool("max", kernel=3, stride=2, ceil_mode=True)
    nodes = [
        Node("input", Input()),
        Node(
            "conv1",
            Conv(64, kernel=3, stride=2, padding=0, bias=True, batch_norm=False),
            ("input",),
        ),
        Node("pool1", pool, ("conv1",)),
    ]
    last = "pool1"
    fires = [
        (16, 64),
        (16, 64),
        "pool",
        (32, 128),
        (32, 128),
        "pool",
        (48, 192),
        (48, 192),
        (64, 256),
        (64, 256),
    ]
    n_fire, n_pool = 2, 2
    for item in fires:
        if item == "pool":
            nodes.append(Node(f"pool{n_pool}", pool, (last,)))
            last = f"pool{n_pool}"
            n_pool += 1
            continue
        nodes += _fire(f"fire{n_fire}", last, *item)
        last = f"fire{n_fire}"
        n_fire += 1
    nodes += [
        Node("dropout", Dropout(0.5), (last,)),
        Node("classifier", Conv(num_classes, kernel=1, bias=True, batch_norm=False), ("dropout",)),
        Node("pool", Pool("avg", global_pool=True), ("classifier",)),
        Node("output", Output(), ("pool",)),
    ]
    return Genome(input_shape, num_classes, tuple(nodes))


#: MobileNet v1's separable layers: (pointwise channels, depthwise stride).
MOBILENET_V1_LAYERS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)


def mobilenet_v1(input_shape=(3, 224, 224), num_classes: int = 1000, width: float = 1.0) -> Genome:
    """MobileNet v1 (Howard et al. 2017): a 3x3 stride-2 convolution, then 13 depthwise
    separable layers (a 3x3 depthwise convolution, one group per channel, then a 1x1 pointwise
    convolution; each with batch norm and ReLU), global average pooling and a dense classifier.
    ``width`` is the paper's width multiplier. 4,231,976 parameters at width 1 and 1000
    classes, 1,342,536 at width 0.5."""

    def ch(c: int) -> int:
        return max(8, int(c * width))

    nodes = [Node("input", Input()), Node("conv1", Conv(ch(32), kernel=3, stride=2), ("input",))]
    last, channels = "conv1", ch(32)
    for i, (out, stride) in enumerate(MOBILENET_V1_LAYERS, start=1):
        nodes.append(
            Node(f"dw{i}", Conv(channels, kernel=3, stride=stride, groups=channels), (last,))
        )
        nodes.append(Node(f"pw{i}", Conv(ch(out), kernel=1), (f"dw{i}",)))
        last, channels = f"pw{i}", ch(out)
    nodes += [
        Node("pool", Pool("avg", global_pool=True), (last,)),
        Node("classifier", Dense(num_classes, activation="none"), ("pool",)),
        Node("output", Output(), ("classifier",)),
    ]
    return Genome(input_shape, num_classes, tuple(nodes))


def sepnet(
    input_shape=(3, 224, 224),
    num_classes: int = 1000,
    *,
    binarized: bool = False,
    stem: int = 32,
    stem_stride: int = 2,
    stages: tuple = ((64, 1), (128, 2), (256, 2), (512, 1)),
    groups: int = 4,
    reduction: int = 4,
) -> Genome:
    """SEP-Net: a 3x3 stem convolution and max pooling, then stages of SEP modules (each stage
    opens with a 1x1 convolution to its width, after max pooling from the second stage on), and
    a SqueezeNet-style head (a 1x1 convolution to the classes, global average pooling).
    ``binarized`` pattern-binarizes the 3x3 pattern convolutions of every module (SEP-Net-B);
    the stem stays full precision."""
    pool = Pool("max", kernel=3, stride=2, ceil_mode=True)
    nodes = [
        Node("input", Input()),
        Node("stem", Conv(stem, kernel=3, stride=stem_stride), ("input",)),
        Node("pool1", pool, ("stem",)),
    ]
    last = "pool1"
    module = 0
    for stage, (width, count) in enumerate(stages, start=1):
        if stage > 1:
            nodes.append(Node(f"pool{stage}", pool, (last,)))
            last = f"pool{stage}"
        nodes.append(Node(f"stage{stage}", Conv(width, kernel=1), (last,)))
        last = f"stage{stage}"
        for _ in range(count):
            module += 1
            nodes += sep_module(
                f"sep{module}",
                last,
                width,
                reduced=width // reduction,
                groups=groups,
                binarized=binarized,
            )
            last = f"sep{module}"
    nodes += [
        Node("dropout", Dropout(0.2), (last,)),
        Node(
            "classifier",
            Conv(num_classes, kernel=1, bias=True, batch_norm=False, activation="none"),
            ("dropout",),
        ),
        Node("pool", Pool("avg", global_pool=True), ("classifier",)),
        Node("output", Output(), ("pool",)),
    ]
    return Genome(input_shape, num_classes, tuple(nodes))


@frozen
class Entry:
    """A zoo genome: how it is built, one line about it, and its documented parameter count
    (a test compiles every entry and checks it)."""

    build: Callable[[], Genome]
    description: str
    params: int


BUILDERS: dict[str, Entry] = {
    "minimal": Entry(
        lambda: minimal((1, 28, 28), 10),
        "EIGEN's poorly initialised seed: one 3x3 conv, global pooling, linear",
        178,
    ),
    "lenet5": Entry(lenet5, "LeNet-5 style: two 5x5 convs with max pooling, dense 120-84", 107_808),
    "resnet20": Entry(lambda: resnet(20), "CIFAR ResNet-20 with parameter-free shortcuts", 269_722),
    "squeeze_classifier": Entry(
        squeeze_classifier,
        "all-conv net with a 1x1 conv + global pooling head",
        94_762,
    ),
    "squeezenet1_1": Entry(
        squeezenet1_1,
        "torchvision's squeezenet1_1, layer for layer (224x224, 1000 classes)",
        1_235_496,
    ),
    "mobilenet-v1": Entry(
        mobilenet_v1, "MobileNet v1, depthwise separable convs (224x224, 1000 classes)", 4_231_976
    ),
    "mobilenet-v1-0.5": Entry(
        lambda: mobilenet_v1(width=0.5),
        "MobileNet v1 at width 0.5 (224x224, 1000 classes)",
        1_331_592,
    ),
    "sepnet-r": Entry(
        sepnet, "SEP-Net-R: SEP modules, raw weights (224x224, 1000 classes)", 1_287_336
    ),
    "sepnet-b": Entry(
        lambda: sepnet(binarized=True),
        "SEP-Net-B: SEP-Net-R with pattern-binarized 3x3 patterns (224x224, 1000 classes)",
        1_287_336,
    ),
    "sepnet-r-cifar": Entry(
        lambda: sepnet((3, 32, 32), 10, stem_stride=1),
        "SEP-Net-R for 32x32 inputs and 10 classes (stem stride 1)",
        779_466,
    ),
    "sepnet-b-cifar": Entry(
        lambda: sepnet((3, 32, 32), 10, stem_stride=1, binarized=True),
        "SEP-Net-B for 32x32 inputs and 10 classes (stem stride 1)",
        779_466,
    ),
}

GENOME_DIR = Path(__file__).parent / "genomes"


def write_all() -> None:
    """Rewrite every zoo JSON file from its builder."""
    for name, entry in BUILDERS.items():
        (GENOME_DIR / f"{name}.json").write_text(dumps(entry.build()))
    index = {
        name: {"description": entry.description, "params": entry.params}
        for name, entry in BUILDERS.items()
    }
    (GENOME_DIR / "index.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    write_all()
