"""The first population of a run, from the experiment's ``init``: copies of the minimal
genome, random genomes, or zoo genomes adapted to the data.

Every first genome must respect the run's limits: a mutation can only make a genome smaller a
step at a time, and none at all once every child of an oversized parent is over the limit too,
so a first population over ``max_params`` (``max_flops``, ``max_latency_ms``) would stall the
search and end with a best over the limit. Random genomes are drawn within the limits; a minimal
or zoo genome over one is refused in one line before anything is trained.

Random genomes are also drawn within a FLOPs budget proportional to the image size,
``init_flops_per_pixel`` x H x W (10,000 by default: 7.8 MFLOPs per image at 28 x 28, about the
60th percentile of unbudgeted draws at any size, which cost 5,700 FLOPs per pixel at the median
and up to 600,000): without it, a few networks hundreds of times costlier than the rest take
most of the first generation's time. It is a budget for the draw, not a limit: mutations may
grow networks past it (``max_flops`` is the limit).
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from genomics import (
    Genome,
    GenomeError,
    flop_counts,
    minimal,
    parameter_counts,
    random_genome,
    retarget,
    validate,
)

from .config import ConfigError

#: Draws of a random genome within a latency limit before the minimal genome is taken instead.
_LATENCY_DRAWS = 50


def draw_bounds(experiment: Any, bounds: Any, shape: tuple[int, int, int], classes: int) -> Any:
    """The bounds random first genomes are drawn within: the run's, and the FLOPs budget of
    ``init_flops_per_pixel`` (never below the minimal genome's FLOPs, its fallback)."""
    if not experiment.init_flops_per_pixel:
        return bounds
    budget = int(experiment.init_flops_per_pixel * shape[1] * shape[2])
    budget = max(budget, sum(flop_counts(minimal(shape, classes)).values()))
    if bounds.max_flops is not None:
        budget = min(budget, bounds.max_flops)
    return attrs.evolve(bounds, max_flops=budget)


def initial_genomes(
    experiment: Any, data: Any, rng: random.Random, config: Any, size: int, costs: Any = None
) -> list[Genome]:
    """``size`` genomes for generation 0 of ``experiment`` on ``data``, each within
    ``config.bounds`` and the limits ``costs`` (:class:`runner.costs.Costs`) holds;
    ConfigError names the one that is not."""
    e, shape, classes = experiment, data.input_shape, data.num_classes
    bounds = config.bounds
    if e.init == "minimal":
        named = [("minimal", minimal(shape, classes))] * size
    elif e.init == "random":
        within = draw_bounds(e, bounds, shape, classes)
        try:
            named = [("random", _draw(rng, shape, classes, within, costs)) for _ in range(size)]
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
        _check(name, genome, bounds, costs)
    return [genome for _, genome in named]


def _draw(rng: random.Random, shape: tuple, classes: int, bounds: Any, costs: Any) -> Genome:
    """A random genome within ``bounds`` and the latency limit, if any (drawn again while it is
    over it; then the minimal genome)."""
    if costs is None or costs.max_latency_ms is None:
        return random_genome(rng, shape, classes, bounds=bounds)
    for _ in range(_LATENCY_DRAWS):
        genome = random_genome(rng, shape, classes, bounds=bounds)
        if costs.latency_ms(genome) <= costs.max_latency_ms:
            return genome
    return minimal(shape, classes)


def _check(name: str, genome: Genome, bounds: Any, costs: Any = None) -> None:
    params = sum(parameter_counts(genome).values())
    if bounds.max_params is not None and params > bounds.max_params:
        raise ConfigError(
            f"init: {name} has {params:,} parameters on this data, over max_params"
            f" {bounds.max_params:,}; start from a smaller genome or raise max_params"
        )
    flops = sum(flop_counts(genome).values())
    if bounds.max_flops is not None and flops > bounds.max_flops:
        raise ConfigError(
            f"init: {name} costs {flops:,} FLOPs per image on this data, over max_flops"
            f" {bounds.max_flops:,}; start from a smaller genome or raise max_flops"
        )
    try:
        validate(genome, bounds)
    except GenomeError as exc:
        raise ConfigError(f"init: {name} is outside this run's bounds ({exc})") from None
    if costs is not None and costs.max_latency_ms is not None:
        latency = costs.latency_ms(genome)
        if latency > costs.max_latency_ms:
            raise ConfigError(
                f"init: {name} takes {latency:.4g} ms per image on {costs.device}, over"
                f" max_latency_ms {costs.max_latency_ms:g}; start from a smaller genome or"
                " raise max_latency_ms"
            )


def check_init(experiment: Any, data: Any, costs: Any = None) -> None:
    """ConfigError, before a run writes anything, when its ``init`` cannot give a first
    population within its limits on ``data`` (a zoo genome over ``max_params``, say); latency
    is measured with ``costs`` (:class:`runner.costs.Costs`, without a store yet)."""
    config = experiment.mutation_config()
    shape, classes = data.input_shape, data.num_classes
    if experiment.init.startswith("zoo:"):
        import zoo

        for name in experiment.zoo_names():
            try:
                genome = retarget(zoo.load(name), shape, classes)
            except GenomeError as exc:
                raise ConfigError(f"init: zoo:{name} does not fit the data ({exc})") from None
            _check(f"zoo:{name}", genome, config.bounds, costs)
    else:  # minimal, and random's fallback: the smallest genome there is
        _check(experiment.init, minimal(shape, classes), config.bounds, costs)
