"""Layers the genome model needs beyond torch.nn."""

from __future__ import annotations

import torch
from torch import nn


class PatternBinarizedConv2d(nn.Conv2d):
    """A k x k convolution whose weights act as ``alpha * sign(W)``, with ``alpha`` the mean
    ``|W|`` of each output filter.

    Full-precision weights are kept for training and receive gradients through the
    straight-through estimator; storage needs 1 bit per weight plus one float32 scale per filter.
    """

    #: Storage bits of one weight, read by :func:`phenotypes.size_bytes`.
    weight_bits = 1

    def binarized_weight(self) -> torch.Tensor:
        w = self.weight
        alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True)
        return alpha * torch.sign(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        # Straight-through: the forward pass sees the binarized weight, the gradient reaches w.
        w = w + (self.binarized_weight() - w).detach()
        return self._conv_forward(x, w, self.bias)
