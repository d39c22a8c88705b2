"""Saving and loading a trained network together with its genome."""

from __future__ import annotations

import os

import torch
from torch import fx

from genomics import Genome, dumps, loads

from .compiler import compile_genome
from .layers import BinaryPatternConv2d, binarize_patterns


def save_model(path: str | os.PathLike, genome: Genome, model: torch.nn.Module) -> None:
    """Write the genome JSON and the weights to one ``.pt`` file (no pickled code). Layers
    binarized after training (:func:`phenotypes.binarize_patterns`) are listed with their
    settings, so :func:`load_model` rebuilds them."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    binarized = {
        name: [m.scale, m.offset]
        for name, m in model.named_modules()
        if isinstance(m, BinaryPatternConv2d)
    }
    blob = {"format": "ecogen-model", "genome": dumps(genome), "state_dict": state}
    if binarized:
        blob["binarized"] = binarized
    torch.save(blob, path)


def load_model(path: str | os.PathLike) -> tuple[Genome, fx.GraphModule]:
    """The genome and its compiled module with the saved weights, on the CPU."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != "ecogen-model":
        raise ValueError(f"{path}: not an ecogen model file")
    genome = loads(blob["genome"])
    model = compile_genome(genome)
    for name, (scale, offset) in blob.get("binarized", {}).items():
        binarize_patterns(model, scale, offset, only=[name])
    model.load_state_dict(blob["state_dict"])
    return genome, model
