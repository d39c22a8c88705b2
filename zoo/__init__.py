"""Named genomes stored as JSON data (``zoo/genomes/NAME.json``)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from genomics import Genome, GenomeError, loads, retarget

__all__ = ["describe", "load", "names", "params"]


@cache
def _index() -> dict[str, dict]:
    return json.loads(resources.files(__name__).joinpath("genomes/index.json").read_text())


def names() -> list[str]:
    """Every zoo genome name, sorted."""
    return sorted(_index())


def describe(name: str) -> str:
    """One line saying what the named genome is."""
    return _index()[name]["description"]


def params(name: str) -> int:
    """The documented parameter count of the named genome, as it is stored (before any
    retargeting)."""
    return _index()[name]["params"]


def load(
    name: str,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
) -> Genome:
    """The named genome, retargeted to ``input_shape`` and ``num_classes`` when given."""
    if name not in _index():
        raise GenomeError(f"zoo: no genome named {name!r} (zoo has: {', '.join(names())})")
    genome = loads(resources.files(__name__).joinpath(f"genomes/{name}.json").read_text())
    if input_shape is None and num_classes is None:
        return genome
    return retarget(
        genome,
        input_shape if input_shape is not None else genome.input_shape,
        num_classes if num_classes is not None else genome.num_classes,
    )
