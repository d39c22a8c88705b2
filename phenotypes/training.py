"""Training on CPU or GPU with the whole dataset in device memory.

On CUDA: bf16 autocast, channels_last, and batched random crop and flip on the device. The
inner loop never waits for the device: losses accumulate in a device tensor and are read once
per epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from .data import Dataset


class StopTraining(Exception):
    """Raised by an ``on_epoch`` callback to end training now; the message is the reason."""


@attrs.frozen
class TrainSpec:
    """How to train. ``None`` for ``bf16``, ``channels_last`` and ``augment`` means automatic:
    the first two on CUDA only, augmentation when the dataset asks for it."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    schedule: str = attrs.field(
        default="onecycle", validator=attrs.validators.in_(("onecycle", "cosine"))
    )
    warmup_fraction: float = 0.25
    seed: int = 0
    device: str = "auto"
    bf16: bool | None = None
    channels_last: bool | None = None
    augment: bool | None = None
    eval_batch_size: int = 1024
    #: Distillation toward a teacher's logits (used only when ``train`` gets a teacher).
    distill_temperature: float = 4.0
    distill_weight: float = 0.5


@attrs.frozen
class EpochMetrics:
    epoch: int
    train_loss: float
    val_accuracy: float
    lr: float
    seconds: float


@attrs.frozen
class TrainResult:
    """``status`` is ``completed``, ``stopped`` (a callback raised StopTraining) or ``diverged``
    (the loss became NaN or infinite); ``reason`` says why for the last two."""

    history: tuple[EpochMetrics, ...]
    status: str
    reason: str
    seconds: float
    device: str

    @property
    def val_accuracy(self) -> float:
        return self.history[-1].val_accuracy if self.history else 0.0

    @property
    def epochs(self) -> int:
        return len(self.history)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device cuda: no CUDA GPU is available (use --device cpu or auto)")
    return device


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image random crop (zero padding ``pad``) and horizontal flip of a batch, on its
    device, with one gather instead of a loop over images."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad)).permute(0, 2, 3, 1)
    shifts = torch.randint(0, 2 * pad + 1, (2, n, 1), device=x.device, generator=generator)
    rows = shifts[0] + torch.arange(h, device=x.device)
    cols = shifts[1] + torch.arange(w, device=x.device)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    flip = torch.rand(n, device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 1024,
    bf16: bool = False,
    channels_last: bool = False,
) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``, moved to the model's device batch by batch."""
    if len(y) == 0:
        return 0.0
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = torch.zeros((), dtype=torch.long, device=device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for start in range(0, len(y), batch_size):
        xb = x[start : start + batch_size].to(device, non_blocking=True, memory_format=fmt)
        yb = y[start : start + batch_size].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            correct += (model(xb).argmax(1) == yb).sum()
    model.train(was_training)
    return correct.item() / len(y)


def distillation_loss(
    logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL divergence from the teacher's to the student's temperature-softened outputs, scaled
    by T^2 so its gradients keep their size as T changes (Hinton et al. 2015)."""
    t = temperature
    return F.kl_div(
        F.log_softmax(logits.float() / t, dim=1),
        F.log_softmax(teacher_logits.float() / t, dim=1),
        reduction="batchmean",
        log_target=True,
    ) * (t * t)


def train(
    model: nn.Module,
    data: Dataset,
    spec: TrainSpec = TrainSpec(),
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    teacher: nn.Module | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``data``'s training split; validate after every epoch.

    ``on_epoch`` receives each epoch's metrics; raising :class:`StopTraining` from it ends
    training (accelerated extinction uses this). With a ``teacher`` (mimicry) the loss is
    ``(1 - w) * cross-entropy + w * distillation`` with ``w = spec.distill_weight``, toward the
    teacher's logits at ``spec.distill_temperature``. Deterministic on CPU for a given
    ``spec.seed``.
    """
    device = resolve_device(spec.device)
    cuda = device.type == "cuda"
    bf16 = cuda if spec.bf16 is None else spec.bf16
    channels_last = cuda if spec.channels_last is None else spec.channels_last
    augment = data.augment if spec.augment is None else spec.augment
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    torch.manual_seed(spec.seed)
    generator = torch.Generator(device=device).manual_seed(spec.seed)
    model.to(device, memory_format=fmt)
    x_train = data.x_train.to(device, memory_format=fmt)
    y_train = data.y_train.to(device)
    x_val, y_val = data.x_val.to(device), data.y_val.to(device)
    if teacher is not None:
        teacher.to(device, memory_format=fmt).eval()
        teacher.requires_grad_(False)
    w = spec.distill_weight if teacher is not None else 0.0

    n = len(y_train)
    # Whole batches only: a last batch of one image breaks batch norm on 1x1 maps.
    batch_size = min(spec.batch_size, n)
    steps = max(n // batch_size, 1)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=spec.lr,
        momentum=spec.momentum,
        nesterov=spec.nesterov and spec.momentum > 0,
        weight_decay=spec.weight_decay,
    )
    total = spec.epochs * steps
    if spec.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=spec.lr, total_steps=max(total, 1), pct_start=spec.warmup_fraction
        )
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total, 1))

    history: list[EpochMetrics] = []
    status, reason = "completed", ""
    start = time.perf_counter()
    for epoch in range(1, spec.epochs + 1):
        model.train()
        order = torch.randperm(n, device=device, generator=generator)
        loss_sum = torch.zeros((), device=device)
        for step in range(steps):
            idx = order[step * batch_size : (step + 1) * batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if augment:
                xb = random_crop_flip(xb, 4, generator).contiguous(memory_format=fmt)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(xb)
                loss = F.cross_entropy(logits, yb, label_smoothing=spec.label_smoothing)
                if w:
                    with torch.no_grad():
                        target = teacher(xb)
                    loss = (1 - w) * loss + w * distillation_loss(
                        logits, target, spec.distill_temperature
                    )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach()
        train_loss = loss_sum.item() / steps  # the one host sync of the epoch
        if not math.isfinite(train_loss):
            status, reason = "diverged", f"training loss became {train_loss} in epoch {epoch}"
            break
        val_accuracy = evaluate(
            model,
            x_val,
            y_val,
            batch_size=spec.eval_batch_size,
            bf16=bf16,
            channels_last=channels_last,
        )
        metrics = EpochMetrics(
            epoch,
            train_loss,
            val_accuracy,
            optimizer.param_groups[0]["lr"],
            time.perf_counter() - start,
        )
        history.append(metrics)
        if on_epoch is not None:
            try:
                on_epoch(metrics)
            except StopTraining as stop:
                status, reason = "stopped", str(stop) or f"stopped after epoch {epoch}"
                break
    return TrainResult(tuple(history), status, reason, time.perf_counter() - start, str(device))
