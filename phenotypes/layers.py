"""Layers the genome model needs beyond torch.nn: pattern-binarized convolutions (SEP-Nets) and
evolutional dropout (docs/phenotypes.md).

Every layer that stores weights at less than their dtype's width says how many bytes it stores
(``stored_bytes``); :func:`phenotypes.size_bytes` asks it instead of counting its parameters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from genomics import BINARY_SCALES


def _binary_bytes(weights: int, scales: int, bias: torch.Tensor | None) -> int:
    """1 bit per weight (rounded up per layer), a float32 per scale, the bias at its width."""
    bias_bytes = 0 if bias is None else bias.numel() * bias.element_size()
    return math.ceil(weights / 8) + 4 * scales + bias_bytes


def _check_scale(scale: str, offset: float) -> None:
    if scale not in BINARY_SCALES:
        raise ValueError(f"binary scale must be one of {', '.join(BINARY_SCALES)}, got {scale!r}")
    if not offset > 0:
        raise ValueError(f"binary offset must be > 0, got {offset}")


class PatternBinarizedConv2d(nn.Conv2d):
    """A k x k convolution trained with binarized weights: the forward pass uses
    ``alpha * sign(W)``, with ``alpha`` the mean ``|W|`` of each output filter (``scale="filter"``)
    or one constant for the layer (``scale="offset"``).

    The full-precision ``W`` is kept and learns through the straight-through estimator, so a
    search can train binarized candidates from scratch; :func:`binarize_patterns` turns the layer
    into its stored form, :class:`BinaryPatternConv2d`.
    """

    def __init__(self, *args, scale: str = "filter", offset: float = 0.06, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _check_scale(scale, offset)
        self.scale, self.offset = scale, offset

    def stored_bytes(self) -> int:
        scales = self.out_channels if self.scale == "filter" else 1
        return _binary_bytes(self.weight.numel(), scales, self.bias)

    def binarized_weight(self) -> torch.Tensor:
        w = self.weight
        if self.scale == "offset":
            return self.offset * torch.sign(w)
        return w.abs().mean(dim=(1, 2, 3), keepdim=True) * torch.sign(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        # Straight-through: the forward pass sees the binarized weight, the gradient reaches w.
        w = w + (self.binarized_weight() - w).detach()
        return self._conv_forward(x, w, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale={self.scale!r}"


class BinaryPatternConv2d(nn.Module):
    """A binarized k x k convolution as it is stored: frozen signs (a buffer, 1 bit each) times a
    scale. With ``scale="filter"`` the scale is one trainable ``alpha`` per output filter; with
    ``scale="offset"`` it is one constant for the layer. The bias, if any, stays trainable.
    """

    def __init__(self, conv: nn.Conv2d, scale: str = "filter", offset: float = 0.06) -> None:
        super().__init__()
        _check_scale(scale, offset)
        w = conv.weight.detach()
        self.scale, self.offset = scale, offset
        self.stride, self.padding = conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size = conv.kernel_size
        # sign(0) would be a third value; a zero weight becomes +1.
        self.register_buffer("sign", torch.where(w >= 0, 1.0, -1.0).to(w.dtype))
        if scale == "filter":
            self.alpha = nn.Parameter(w.abs().mean(dim=(1, 2, 3), keepdim=True).clone())
        else:
            self.register_buffer("alpha", torch.full((1, 1, 1, 1), float(offset), dtype=w.dtype))
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone())

    def stored_bytes(self) -> int:
        return _binary_bytes(self.sign.numel(), self.alpha.numel(), self.bias)

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight: ``+alpha`` or ``-alpha`` in every position of each filter."""
        return self.sign * self.alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, groups={self.groups}, "
            f"scale={self.scale!r}, bias={self.bias is not None}"
        )


def binarize_patterns(
    model: nn.Module,
    scale: str | None = None,
    offset: float | None = None,
    *,
    only: Iterable[str] | None = None,
) -> list[str]:
    """Replace, in place, every k x k (k > 1) convolution of ``model`` (or those named in
    ``only``) by its :class:`BinaryPatternConv2d`; 1x1 convolutions are left alone. Returns the
    replaced names.

    ``scale`` and ``offset`` default to each layer's own (a :class:`PatternBinarizedConv2d`
    keeps its gene's settings; a plain convolution gets ``"filter"`` and 0.06).
    """
    _check_scale(scale or "filter", offset if offset is not None else 0.06)
    replaced = []
    wanted = None if only is None else set(only)
    for name, module in list(model.named_modules()):
        if not isinstance(module, nn.Conv2d) or max(module.kernel_size) == 1:
            continue
        if wanted is not None and name not in wanted:
            continue
        layer_scale = scale or getattr(module, "scale", "filter")
        layer_offset = offset if offset is not None else getattr(module, "offset", 0.06)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, BinaryPatternConv2d(module, layer_scale, layer_offset))
        replaced.append(name)
    return replaced


class EvolutionalDropout(nn.Module):
    """Multinomial dropout with data-dependent probabilities (evolutional dropout).

    For a mini-batch of ``m`` examples with ``d`` units, unit ``i`` gets probability
    ``p_i = sqrt(mean_j x_ji^2) / sum_i' sqrt(mean_j x_ji'^2)``; each example draws
    ``k = max(1, round(samples * d))`` units from ``Mult(k, p)`` and keeps unit ``i`` scaled by
    ``m_i / (k p_i)``, where ``m_i`` is how often it was drawn, so the expected output is the
    input. ``per_channel`` makes each channel of an (N, C, H, W) map one unit. Identity in eval.
    """

    def __init__(self, samples: float = 1.0, per_channel: bool = True) -> None:
        super().__init__()
        if not samples > 0:
            raise ValueError(f"samples must be > 0, got {samples}")
        self.samples, self.per_channel = samples, per_channel

    def _units(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as (m, d, rest): the unit axis second, whatever shares a unit's draw last."""
        if x.dim() > 2 and self.per_channel:
            return x.reshape(x.shape[0], x.shape[1], -1)
        return x.reshape(x.shape[0], -1, 1)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """The sampling distribution ``p`` (length ``d``) for the batch ``x``; sums to 1."""
        units = self._units(x.detach()).float()
        second_moment = units.pow(2).mean(dim=(0, 2))
        root = second_moment.sqrt()
        total = root.sum()
        if total <= 0:  # an all-zero batch: any distribution is unbiased; take the uniform one
            return torch.full_like(root, 1.0 / root.numel())
        return root / total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        units = self._units(x)
        m, d = units.shape[:2]
        k = max(1, round(self.samples * d))
        p = self.probabilities(x)
        # torch.distributions samples the counts m_i of k draws per example in one call.
        counts = torch.distributions.Multinomial(k, probs=p).sample((m,))
        # A unit with p_i = 0 is zero in every example and is never drawn: 0 / tiny stays 0.
        scale = counts / (k * p).clamp_min(torch.finfo(p.dtype).tiny)
        return (units * scale.to(x.dtype).unsqueeze(-1)).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"samples={self.samples}, per_channel={self.per_channel}"
