"""Pattern binarization of a trained network: train at full precision, binarize the k x k
convolutions, fine-tune the rest (docs/phenotypes.md), with the accuracy of each stage."""

from __future__ import annotations

from collections.abc import Callable

import attrs
from torch import nn

from .data import Dataset
from .layers import binarize_patterns
from .measure import measure, size_bytes
from .training import EpochMetrics, TrainResult, TrainSpec, evaluate, resolve_device, train


@attrs.frozen
class Stage:
    """Accuracies and size of the network at one stage of the procedure."""

    name: str
    val_accuracy: float
    test_accuracy: float
    size_bytes: int


@attrs.frozen
class BinarizationReport:
    """The three stages (``full``, ``binarized``, ``finetuned``), the binarized layers and the
    fine-tuning run."""

    stages: tuple[Stage, ...]
    layers: tuple[str, ...]
    scale: str
    offset: float
    finetune: TrainResult | None

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def as_dict(self) -> dict:
        return {
            "scale": self.scale,
            "offset": self.offset if self.scale == "offset" else None,
            "layers": list(self.layers),
            "finetune_epochs": self.finetune.epochs if self.finetune else 0,
            "stages": {
                s.name: attrs.asdict(s, filter=lambda a, _: a.name != "name") for s in self.stages
            },
        }


def _stage(name: str, model: nn.Module, data: Dataset, device: str) -> Stage:
    model.to(resolve_device(device))
    val = evaluate(model, data.x_val, data.y_val)
    test = evaluate(model, data.x_test, data.y_test)
    return Stage(name, val, test, size_bytes(model))


def binarize_and_finetune(
    model: nn.Module,
    data: Dataset,
    spec: TrainSpec,
    *,
    scale: str = "filter",
    offset: float = 0.06,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> BinarizationReport:
    """Binarize the k x k convolutions of the trained ``model`` in place and fine-tune it for
    ``spec.epochs`` epochs (none when 0).

    ``scale="filter"``: each filter keeps its signs times a trainable ``alpha`` (initially the
    mean ``|W|`` of the filter). ``scale="offset"``: signs times the constant ``offset`` for
    every layer. Signs stay frozen in both; biases, batch norm, 1x1 and dense layers (and
    ``alpha``) are fine-tuned. Accuracies are measured in evaluation mode at each stage.
    """
    full = _stage("full", model, data, spec.device)
    layers = binarize_patterns(model, scale, offset)
    if not layers:
        raise ValueError("the network has no k x k convolution to binarize")
    binarized = _stage("binarized", model, data, spec.device)
    result = train(model, data, spec, on_epoch=on_epoch) if spec.epochs > 0 else None
    finetuned = _stage("finetuned", model, data, spec.device) if result else binarized
    finetuned = attrs.evolve(finetuned, name="finetuned")
    return BinarizationReport((full, binarized, finetuned), tuple(layers), scale, offset, result)


def binarize_network(
    model: nn.Module,
    data: Dataset,
    spec: TrainSpec,
    *,
    scale: str = "filter",
    offset: float = 0.06,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> tuple[BinarizationReport, dict]:
    """:func:`binarize_and_finetune` a trained ``model`` in place, then measure it on the CPU:
    the report, and the binarized network's figures for a summary (its fine-tuned validation
    and test accuracy, parameters, size, FLOPs, latency, and the report as a dict)."""
    report = binarize_and_finetune(model, data, spec, scale=scale, offset=offset, on_epoch=on_epoch)
    model.cpu()
    m = measure(model, data.input_shape)
    final = report.stage("finetuned")
    return report, {
        "test_accuracy": final.test_accuracy,
        "val_accuracy": final.val_accuracy,
        "params": m.params,
        "size_bytes": m.size_bytes,
        "flops": m.flops,
        "latency_ms": m.latency_ms,
        "binarization": report.as_dict(),
    }
