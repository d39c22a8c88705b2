"""The first population of a run, from the experiment's ``init``: copies of the minimal
genome, random genomes, or zoo genomes adapted to the data.

Every first genome must respect the run's limits: a mutation can only make a genome smaller a
step at a time, and none at all once every child of an oversized parent is over the limit too,
so a first population over ``max_params`` would stall the search and end with a best over the
limit. Random genomes are drawn within the limit; a minimal or zoo genome over it is refused in
one line before anything is trained.
"""

from __future__ import annotations

import random
from typing import Any

from genomics import (
    Genome,
    GenomeError,
    minimal,
    parameter_counts,
    random_genome,
    retarget,
    validate,
)

from .config import ConfigError


def initial_genomes(
    experiment: Any, data: Any, rng: random.Random, config: Any, size: int
) -> list[Genome]:
    """``size`` genomes for generation 0 of ``experiment`` on ``data``, each within
    ``config.bounds``; ConfigError names the one that is not."""
    e, shape, classes = experiment, data.input_shape, data.num_classes
    bounds = config.bounds
    if e.init == "minimal":
        named = [("minimal", minimal(shape, classes))] * size
    elif e.init == "random":
        try:
            named = [
                ("random", random_genome(rng, shape, classes, bounds=bounds)) for _ in range(size)
            ]
        except GenomeError:  # not even the minimal genome, its fallback, is within bounds
            named = [("random", minimal(shape, classes))]
    else:
        import zoo

        names = e.zoo_names()
        named = []
        for i in range(size):
            name = names[i % len(names)]
            try:
                genome = retarget(zoo.load(name), shape, classes)
            except GenomeError as exc:
                raise ConfigError(f"init: zoo:{name} does not fit the data ({exc})") from None
            named.append((f"zoo:{name}", genome))
    for name, genome in named:
        _check(name, genome, bounds)
    return [genome for _, genome in named]


def _check(name: str, genome: Genome, bounds: Any) -> None:
    params = sum(parameter_counts(genome).values())
    if bounds.max_params is not None and params > bounds.max_params:
        raise ConfigError(
            f"init: {name} has {params:,} parameters on this data, over max_params"
            f" {bounds.max_params:,}; start from a smaller genome or raise max_params"
        )
    try:
        validate(genome, bounds)
    except GenomeError as exc:
        raise ConfigError(f"init: {name} is outside this run's bounds ({exc})") from None


def check_init(experiment: Any, data: Any) -> None:
    """ConfigError, before a run writes anything, when its ``init`` cannot give a first
    population within its bounds on ``data`` (a zoo genome over ``max_params``, say)."""
    config = experiment.mutation_config()
    shape, classes = data.input_shape, data.num_classes
    if experiment.init.startswith("zoo:"):
        import zoo

        for name in experiment.zoo_names():
            try:
                genome = retarget(zoo.load(name), shape, classes)
            except GenomeError as exc:
                raise ConfigError(f"init: zoo:{name} does not fit the data ({exc})") from None
            _check(f"zoo:{name}", genome, config.bounds)
    else:  # minimal, and random's fallback: the smallest genome there is
        _check(experiment.init, minimal(shape, classes), config.bounds)
