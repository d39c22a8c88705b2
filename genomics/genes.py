"""Layer genes: frozen attrs classes, one per layer kind.

A gene says what a layer computes, never its input size: input channels and dense fan-in are
inferred from the graph, so a gene stays valid when the layers before it change. Every gene class
has a ``TYPE`` string used as the JSON tag. Validators check what a gene can check alone (an odd
kernel, a rate below 1); what depends on the graph or on configured bounds is checked by
:func:`genomics.validate`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
from attrs import field, frozen

from .errors import GenomeError
from .validators import at_least, instance_of, odd, one_of

#: Activation names a gene may use; the compiler maps each to a torch function.
ACTIVATIONS = (
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "gelu",
    "silu",
    "hardswish",
    "sigmoid",
    "tanh",
    "none",
)
POOL_MODES = ("max", "avg")
#: Dropout kinds: ``bernoulli`` (standard) and ``evolutional`` (multinomial, data-dependent).
DROPOUT_KINDS = ("bernoulli", "evolutional")
#: How a binarized convolution scales its signs: ``filter`` (alpha = mean |W| per output filter)
#: or ``offset`` (one constant per layer, ``binary_offset``).
BINARY_SCALES = ("filter", "offset")


# Every error names the attribute, the expectation and the value in one line.
_CHECKS = {"error": GenomeError}


def _int(low: int) -> list:
    return [instance_of(int, "an integer", **_CHECKS), at_least(low, **_CHECKS)]


_BOOL = instance_of(bool, "true or false", **_CHECKS)
_odd = odd(**_CHECKS)


def _number(default: float):
    # An integer becomes a float so that 0 and 0.0 are one genome (and one hash).
    return field(
        default=default,
        converter=lambda v: float(v) if type(v) is int else v,
        validator=instance_of(float, "a number", **_CHECKS),
    )


@frozen
class Input:
    """The image input; the genome holds its shape."""

    TYPE: ClassVar[str] = "input"


@frozen
class Output:
    """The logits output; its input must have exactly ``num_classes`` features."""

    TYPE: ClassVar[str] = "output"


@frozen
class Conv:
    """2-D convolution, then optional batch norm, then activation.

    ``padding`` defaults to ``kernel // 2`` ("same" at stride 1). ``binarized`` marks a k x k
    (k > 1) convolution whose weights are pattern-binarized: 1-bit signs times a scale, either
    ``alpha = mean |W|`` of each output filter (``binary_scale="filter"``) or the constant
    ``binary_offset`` for the whole layer (``binary_scale="offset"``, 0.06 by default).
    """

    TYPE: ClassVar[str] = "conv"
    out_channels: int = field(validator=_int(1))
    kernel: int = field(default=3, validator=[*_int(1), _odd])
    stride: int = field(default=1, validator=_int(1))
    padding: int = field(
        default=attrs.Factory(lambda self: self.kernel // 2, takes_self=True), validator=_int(0)
    )
    groups: int = field(default=1, validator=_int(1))
    bias: bool = field(default=False, validator=_BOOL)
    batch_norm: bool = field(default=True, validator=_BOOL)
    activation: str = field(default="relu", validator=one_of(ACTIVATIONS, **_CHECKS))
    binarized: bool = field(default=False, validator=_BOOL)
    binary_scale: str = field(default="filter", validator=one_of(BINARY_SCALES, **_CHECKS))
    binary_offset: float = _number(0.06)

    def __attrs_post_init__(self) -> None:
        if not 0.0 < self.binary_offset < 1e3:
            raise GenomeError(f"binary_offset: must be in (0, 1000), got {self.binary_offset}")
        if self.padding >= self.kernel:
            raise GenomeError(f"padding: must be < kernel ({self.kernel}), got {self.padding}")
        if self.out_channels % self.groups:
            raise GenomeError(
                f"groups: must divide out_channels ({self.out_channels}), got {self.groups}"
            )
        if self.binarized and self.kernel == 1:
            raise GenomeError("binarized: 1x1 convolutions transform data and are never binarized")


@frozen
class Pool:
    """Max or average pooling; ``global_pool`` reduces each channel to 1x1 and ignores the rest."""

    TYPE: ClassVar[str] = "pool"
    mode: str = field(default="max", validator=one_of(POOL_MODES, **_CHECKS))
    kernel: int = field(default=2, validator=_int(1))
    stride: int = field(
        default=attrs.Factory(lambda self: self.kernel, takes_self=True), validator=_int(1)
    )
    padding: int = field(default=0, validator=_int(0))
    ceil_mode: bool = field(default=False, validator=_BOOL)
    global_pool: bool = field(default=False, validator=_BOOL)

    def __attrs_post_init__(self) -> None:
        # torch refuses padding above half the kernel; so must validation, or a valid genome
        # would fail to compile.
        if not self.global_pool and 2 * self.padding > self.kernel:
            raise GenomeError(
                f"padding: must be <= kernel // 2 ({self.kernel // 2}), got {self.padding}"
            )


@frozen
class Dropout:
    """Dropout; identity at evaluation.

    ``bernoulli`` drops each unit with probability ``rate``. ``evolutional`` draws
    ``k = samples * d`` units (at least one) from a multinomial whose probabilities follow the
    mini-batch's second moments of the ``d`` units, and rescales so the output is unbiased;
    ``per_channel`` treats each channel of a feature map as one unit. Each kind ignores the
    other kind's fields.
    """

    TYPE: ClassVar[str] = "dropout"
    rate: float = _number(0.5)
    kind: str = field(default="bernoulli", validator=one_of(DROPOUT_KINDS, **_CHECKS))
    samples: float = _number(1.0)
    per_channel: bool = field(default=True, validator=_BOOL)

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise GenomeError(f"rate: must be in [0, 1), got {self.rate}")
        if not 0.0 < self.samples <= 16.0:
            raise GenomeError(f"samples: must be in (0, 16], got {self.samples}")


@frozen
class Dense:
    """Fully connected layer; a (C, H, W) input is flattened first."""

    TYPE: ClassVar[str] = "dense"
    units: int = field(validator=_int(1))
    activation: str = field(default="relu", validator=one_of(ACTIVATIONS, **_CHECKS))
    bias: bool = field(default=True, validator=_BOOL)


@frozen
class Add:
    """Element-wise sum of two or more inputs (skip connections), then an optional activation
    (ResNet applies ReLU after the sum); see the join rule."""

    TYPE: ClassVar[str] = "add"
    activation: str = field(default="none", validator=one_of(ACTIVATIONS, **_CHECKS))


@frozen
class Concat:
    """Channel (or feature) concatenation of two or more inputs; see the join rule."""

    TYPE: ClassVar[str] = "concat"


Gene = Input | Output | Conv | Pool | Dropout | Dense | Add | Concat
GENE_TYPES: dict[str, type] = {
    cls.TYPE: cls for cls in (Input, Output, Conv, Pool, Dropout, Dense, Add, Concat)
}
JOINS = (Add, Concat)


def canonical_fields(gene: Any) -> dict[str, Any]:
    """The fields that determine what a gene computes: global pooling ignores its window, each
    dropout kind the other's fields, a full-precision convolution its binarization fields. Fields
    added after schema 1 are left out at their defaults, so older genomes keep their hashes."""
    values = attrs.asdict(gene)
    if isinstance(gene, Pool) and gene.global_pool:
        return {"mode": gene.mode, "global_pool": True}
    if isinstance(gene, Conv):
        if not gene.binarized or gene.binary_scale == "filter":
            del values["binary_offset"], values["binary_scale"]
    if isinstance(gene, Dropout):
        if gene.kind == "bernoulli":
            del values["samples"], values["per_channel"]
        else:
            del values["rate"]
    return values


def describe(gene: Any) -> str:
    """Short text of a gene's settings: required fields and those that differ from the default."""
    parts = []
    for a in attrs.fields(type(gene)):
        value = getattr(gene, a.name)
        default = a.default
        if isinstance(default, attrs.Factory):
            default = default.factory(gene) if default.takes_self else default.factory()
        if default is attrs.NOTHING or value != default:
            parts.append(f"{a.name}={value}")
    return " ".join(parts)
