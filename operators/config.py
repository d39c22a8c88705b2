"""Mutation settings: the defaults of the thesis table, every one configurable per run."""

from __future__ import annotations

from typing import Any

import attrs
from attrs import field, frozen

from genomics import DEFAULT_BOUNDS, DROPOUT_KINDS, POOL_MODES, Bounds


def _pair(inst: Any, attribute: attrs.Attribute, value: tuple) -> None:
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"{attribute.name}: must be a (low, high) pair, got {value!r}")


def _nonempty(inst: Any, attribute: attrs.Attribute, value: tuple) -> None:
    if not value:
        raise ValueError(f"{attribute.name}: must list at least one value")


def _subset(choices: tuple[str, ...]):
    def check(inst: Any, attribute: attrs.Attribute, value: tuple) -> None:
        _nonempty(inst, attribute, value)
        bad = [v for v in value if v not in choices]
        if bad:
            raise ValueError(f"{attribute.name}: {bad} not among {', '.join(choices)}")

    return check


@frozen
class MutationConfig:
    """What mutations may do. ``bounds`` is checked on every result; the rest sets the values
    new or altered layers get (SPEC section 1)."""

    bounds: Bounds = DEFAULT_BOUNDS
    #: Convolutions a genome may hold (its depth).
    max_convolutions: int = 32
    #: alter_channel_number multiplies by 2**U(-1, 1), then clamps to this range.
    channel_range: tuple[int, int] = field(default=(4, 512), converter=tuple, validator=_pair)
    kernel_sizes: tuple[int, ...] = field(
        default=(1, 3, 5, 7), converter=tuple, validator=_nonempty
    )
    #: Kernel of a convolution add_convolution inserts (its channels copy its input's).
    new_conv_kernel: int = 3
    dropout_rates: tuple[float, float] = field(default=(0.1, 0.5), converter=tuple, validator=_pair)
    dropout_kinds: tuple[str, ...] = field(
        default=("bernoulli",), converter=tuple, validator=_subset(DROPOUT_KINDS)
    )
    pool_modes: tuple[str, ...] = field(
        default=POOL_MODES, converter=tuple, validator=_subset(POOL_MODES)
    )
    pool_kernel: int = 2
    #: add_sep_module: groups of the module's 1x1 convolutions and its pattern kernel.
    sep_groups: int = 4
    sep_kernel: int = 3
    dense_units: tuple[int, ...] = field(
        default=(32, 64, 128, 256), converter=tuple, validator=_nonempty
    )


DEFAULT_CONFIG = MutationConfig()
