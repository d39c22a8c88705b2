"""What a network costs: parameters, bytes, FLOPs and latency."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator

import attrs
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .layers import BinaryPatternConv2d


@attrs.frozen
class Measurements:
    params: int
    size_bytes: int
    flops: int
    latency_ms: float | None


def count_params(model: nn.Module) -> int:
    """Trainable parameters, plus the frozen signs of binarized convolutions (they are the
    layer's weights, stored at 1 bit)."""
    frozen = sum(m.sign.numel() for m in model.modules() if isinstance(m, BinaryPatternConv2d))
    return sum(p.numel() for p in model.parameters() if p.requires_grad) + frozen


def size_bytes(model: nn.Module) -> int:
    """Bytes needed to store the parameters: each at its dtype's width, except in modules that
    say what they store (``stored_bytes``: a binarized convolution's weights cost 1 bit each,
    rounded up per layer, plus a float32 per scale). Batch-norm running statistics are buffers,
    not parameters, and are not counted."""
    total = 0
    for module in model.modules():
        if hasattr(module, "stored_bytes"):
            total += module.stored_bytes()
        else:
            total += sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))
    return total


@contextlib.contextmanager
def _inference_input(model: nn.Module, shape: tuple[int, ...]) -> Iterator[torch.Tensor]:
    """A zero batch on the model's device, with the model in eval mode until the block ends."""
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    try:
        with torch.inference_mode():
            yield torch.zeros(*shape, device=device)
    finally:
        model.train(was_training)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on one image, as ``torch.utils.flop_counter`` counts them
    (a multiply-add is 2 FLOPs; convolutions and matrix products only)."""
    with _inference_input(model, (1, *input_shape)) as x, FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def latency_ms(
    model: nn.Module, input_shape: tuple[int, ...], *, batch_size: int = 1, repeats: int = 30
) -> float:
    """Median wall time of one inference forward pass, in milliseconds, after warm-up."""
    times = []
    with _inference_input(model, (batch_size, *input_shape)) as x:
        cuda = x.device.type == "cuda"
        for i in range(repeats + 5):
            if cuda:
                torch.cuda.synchronize(x.device)
            start = time.perf_counter()
            model(x)
            if cuda:
                torch.cuda.synchronize(x.device)
            if i >= 5:
                times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(
    model: nn.Module, input_shape: tuple[int, ...], *, latency: bool = True
) -> Measurements:
    """All measurements of ``model`` for inputs of ``input_shape`` (C, H, W)."""
    return Measurements(
        params=count_params(model),
        size_bytes=size_bytes(model),
        flops=count_flops(model, input_shape),
        latency_ms=latency_ms(model, input_shape) if latency else None,
    )
