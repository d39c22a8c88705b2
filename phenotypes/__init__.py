"""Genomes as PyTorch modules: compiled, trained and measured.

The compiler, the extra layers, training, measurement, zero-cost proxies
(:mod:`phenotypes.proxies`) and datasets."""

from .binarize import BinarizationReport, Stage, binarize_and_finetune, binarize_network
from .checkpoint import load_model, save_model
from .compiler import ACTIVATION_FUNCTIONS, compile_genome
from .data import Dataset, DatasetError, load_dataset
from .inherit import Inheritance, inherit_weights
from .layers import (
    BinaryPatternConv2d,
    EvolutionalDropout,
    PatternBinarizedConv2d,
    binarize_patterns,
)
from .measure import Measurements, count_flops, count_params, latency_ms, measure, size_bytes
from .training import (
    EpochMetrics,
    StopTraining,
    TrainResult,
    TrainSpec,
    distillation_loss,
    evaluate,
    random_crop_flip,
    random_translate,
    resolve_device,
    train,
)

__all__ = [
    "ACTIVATION_FUNCTIONS",
    "BinarizationReport",
    "BinaryPatternConv2d",
    "Dataset",
    "DatasetError",
    "EpochMetrics",
    "EvolutionalDropout",
    "Inheritance",
    "Measurements",
    "PatternBinarizedConv2d",
    "Stage",
    "StopTraining",
    "TrainResult",
    "TrainSpec",
    "binarize_and_finetune",
    "binarize_network",
    "binarize_patterns",
    "compile_genome",
    "count_flops",
    "count_params",
    "distillation_loss",
    "evaluate",
    "inherit_weights",
    "latency_ms",
    "load_dataset",
    "load_model",
    "measure",
    "random_crop_flip",
    "random_translate",
    "resolve_device",
    "save_model",
    "size_bytes",
    "train",
]
