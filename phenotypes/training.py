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

from genomics import validators

from .data import AUGMENTATIONS, Dataset, augmentation_kind


class StopTraining(Exception):
    """Raised by an ``on_epoch`` callback to end training now; the message is the reason."""


#: What ``TrainSpec.augment`` takes: ``auto`` (the dataset's own, ``Dataset.augment``) or one of
#: :data:`~phenotypes.data.AUGMENTATIONS`.
AUGMENT_CHOICES = ("auto", *AUGMENTATIONS)


def _augment_choice(value: bool | str | None) -> str:
    """``TrainSpec.augment`` from a choice, or as it was before kinds: None (the dataset's),
    True (crop-flip) or False (none)."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return augmentation_kind(value)
    if value not in AUGMENT_CHOICES:
        raise ValueError(f"augment: must be one of {', '.join(AUGMENT_CHOICES)}, got {value!r}")
    return value


_not_negative = validators.at_least(0, kind=float, error=ValueError)


def _fraction(inst: object, attribute: attrs.Attribute, value: float) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 <= value <= 1:  # NaN too: it compares false
        raise ValueError(f"{attribute.name}: must be a number in [0, 1], got {value!r}")


@attrs.frozen
class TrainSpec:
    """How to train. ``None`` for ``bf16`` and ``channels_last`` means automatic: on CUDA only.
    ``augment`` is one of :data:`AUGMENT_CHOICES`; ``auto`` is what the dataset asks for.

    Weight decay applies to every weight matrix and convolution kernel; one-dimensional
    parameters (batch-norm weights and biases, layer biases) are decayed only with
    ``decay_norm_and_bias``: good recipes leave them alone, as they are few and shrinking a
    batch norm's scale and shift toward zero fights what the layer learnt."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = attrs.field(default=5e-4, validator=_not_negative)
    label_smoothing: float = attrs.field(default=0.1, validator=_fraction)
    decay_norm_and_bias: bool = True
    schedule: str = attrs.field(
        default="onecycle", validator=attrs.validators.in_(("onecycle", "cosine"))
    )
    warmup_fraction: float = 0.25
    seed: int = 0
    device: str = "auto"
    bf16: bool | None = None
    channels_last: bool | None = None
    augment: str = attrs.field(default="auto", converter=_augment_choice)
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


def random_translate(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image random shift of a batch by up to ``pad`` pixels each way (what leaves the
    image is cut, what enters is zero), on its device, with one gather instead of a loop over
    images. Never flips: a mirrored digit is another symbol, or none."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad)).permute(0, 2, 3, 1)
    shifts = torch.randint(0, 2 * pad + 1, (2, n, 1), device=x.device, generator=generator)
    rows = shifts[0] + torch.arange(h, device=x.device)
    cols = shifts[1] + torch.arange(w, device=x.device)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image random crop (zero padding ``pad``) and horizontal flip of a batch, on its
    device: :func:`random_translate`, then half of the images mirrored."""
    out = random_translate(x, pad, generator)
    flip = torch.rand(len(x), device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def translate_pad(shape: tuple[int, ...]) -> int:
    """The largest shift ``translate`` makes for images of ``shape`` (C, H, W): a fourteenth of
    the smaller side, rounded (2 pixels at MNIST's 28), at least 1."""
    return max(1, round(min(shape[-2:]) / 14))


def augmenter(kind: str, shape: tuple[int, ...]) -> Callable[..., torch.Tensor] | None:
    """The batch augmentation of ``kind`` for images of ``shape``: ``f(x, generator)``, or None
    for ``none``."""
    if kind == "crop-flip":
        return lambda x, generator: random_crop_flip(x, 4, generator)
    if kind == "translate":
        pad = translate_pad(shape)
        return lambda x, generator: random_translate(x, pad, generator)
    return None


def parameter_groups(model: nn.Module, weight_decay: float, decay_norm_and_bias: bool) -> list:
    """The optimizer's parameter groups: one, decayed, with ``decay_norm_and_bias``; otherwise
    the weight matrices and kernels decayed and the one-dimensional parameters (norm weights
    and biases, layer biases) not."""
    params = list(model.parameters())
    if decay_norm_and_bias:
        return [{"params": params, "weight_decay": weight_decay}]
    decayed = [p for p in params if p.ndim > 1]
    kept = [p for p in params if p.ndim <= 1]
    groups = [
        {"params": decayed, "weight_decay": weight_decay},
        {"params": kept, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


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
    augment = augmenter(data.augment if spec.augment == "auto" else spec.augment, data.input_shape)
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
        parameter_groups(model, spec.weight_decay, spec.decay_norm_and_bias),
        lr=spec.lr,
        momentum=spec.momentum,
        nesterov=spec.nesterov and spec.momentum > 0,
    )
    total = spec.epochs * steps
    if spec.schedule == "onecycle":
        warmup = spec.warmup_fraction
        if math.isclose(warmup * max(total, 1), 1.0):
            # OneCycleLR divides by (warm-up steps - 1): a warm-up of exactly one step raises.
            warmup = 0.5 if total <= 2 else 2 / total
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=spec.lr, total_steps=max(total, 1), pct_start=warmup
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
            if augment is not None:
                xb = augment(xb, generator).contiguous(memory_format=fmt)
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
