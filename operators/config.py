"""Mutation settings: the defaults of the thesis table, every one configurable per run.

Each setting is checked against what the genes it makes accept (an odd kernel, a dropout rate
in [0, 1)), so a run never goes on with a mutation that can never apply.
"""

from __future__ import annotations

from typing import Any

from attrs import field, frozen

from genomics import DEFAULT_BOUNDS, DROPOUT_KINDS, POOL_MODES, Bounds
from genomics import validators as v

_CHECKS = {"error": ValueError}
_count = v.at_least(1, kind=int, **_CHECKS)
_kernel = [_count, v.odd(**_CHECKS)]


def _tuple(value: Any) -> Any:
    # Anything else is left for the validator to refuse by name (tuple(3) would raise here).
    return tuple(value) if isinstance(value, (list, tuple)) else value


@frozen
class MutationConfig:
    """What mutations may do. ``bounds`` is checked on every result; the rest sets the values
    new or altered layers get (the defaults of the AG-Evolution table)."""

    bounds: Bounds = DEFAULT_BOUNDS
    #: Convolutions a genome may hold (its depth).
    max_convolutions: int = field(default=32, validator=_count)
    #: alter_channel_number multiplies by 2**U(-1, 1), then clamps to this range.
    channel_range: tuple[int, int] = field(
        default=(4, 512), converter=_tuple, validator=v.pair(low=1, **_CHECKS)
    )
    kernel_sizes: tuple[int, ...] = field(
        default=(1, 3, 5, 7), converter=_tuple, validator=v.each(*_kernel, **_CHECKS)
    )
    #: Kernel of a convolution add_convolution inserts (its channels copy its input's).
    new_conv_kernel: int = field(default=3, validator=_kernel)
    dropout_rates: tuple[float, float] = field(
        default=(0.1, 0.5), converter=_tuple, validator=v.pair(below=1, kind=float, **_CHECKS)
    )
    dropout_kinds: tuple[str, ...] = field(
        default=("bernoulli",), converter=_tuple, validator=v.subset(DROPOUT_KINDS, **_CHECKS)
    )
    pool_modes: tuple[str, ...] = field(
        default=POOL_MODES, converter=_tuple, validator=v.subset(POOL_MODES, **_CHECKS)
    )
    pool_kernel: int = field(default=2, validator=_count)
    #: add_sep_module: groups of the module's 1x1 convolutions and its pattern kernel.
    sep_groups: int = field(default=4, validator=_count)
    sep_kernel: int = field(default=3, validator=_kernel)
    dense_units: tuple[int, ...] = field(
        default=(32, 64, 128, 256), converter=_tuple, validator=v.each(_count, **_CHECKS)
    )


DEFAULT_CONFIG = MutationConfig()
