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

``init = "mixed"`` starts from zoo genomes, then random ones (:func:`mixed_zoo`): each zoo
genome retargeted to the data and its widths halved until it keeps the run's hard limits
(``max_params``, ``max_flops``, ``max_latency_ms`` and the mutation bounds). They are known
architectures, so the draw's budget ``init_flops_per_pixel`` does not apply to them, only to the
random genomes that fill the population. Zoo genomes take at most half of it (rounded up), so
that a small population still starts with random variety; which are taken and why the others
are not is in the run's events (source ``init``: ``zoo_genome``, ``left_out``).
"""

from __future__ import annotations

import math
import random
from typing import Any

import attrs

from genomics import (
    Conv,
    Dense,
    Genome,
    GenomeError,
    canonical_hash,
    classifier_node,
    flop_counts,
    infer_shapes,
    minimal,
    parameter_counts,
    random_genome,
    retarget,
    validate,
)

from ..errors import ConfigError

#: Draws of a random genome within a latency limit before the minimal genome is taken instead.
_LATENCY_DRAWS = 50
#: Zoo genomes ``init = "mixed"`` leaves out: ``minimal`` is EIGEN's deliberately weak seed, and
#: random genomes already cover networks that small.
MIXED_SKIPS = {"minimal": "EIGEN's deliberately weak seed, not a known good network"}


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
    experiment: Any,
    data: Any,
    rng: random.Random,
    config: Any,
    size: int,
    costs: Any = None,
    notes: list[tuple[int | None, dict]] | None = None,
) -> list[Genome]:
    """``size`` genomes for generation 0 of ``experiment`` on ``data``, each within
    ``config.bounds`` and the limits ``costs`` (:class:`runner.evolution.costs.Costs`) holds;
    ConfigError names the one that is not. ``notes`` receives, for ``init = "mixed"``, what
    became of each zoo genome: ``(index in the population, data)`` for those taken, ``(None,
    data)`` with the reason for those left out."""
    e, shape, classes = experiment, data.input_shape, data.num_classes
    bounds = config.bounds
    if e.init == "minimal":
        named = [("minimal", minimal(shape, classes))] * size
    elif e.init in ("random", "mixed"):
        named = []
        if e.init == "mixed":
            fitted, left_out = mixed_zoo(shape, classes, bounds, costs)
            taken = fitted[: min(size, math.ceil(size / 2))]
            named = [(f"zoo:{f.name}", f.genome) for f in taken]
            if notes is not None:
                notes.extend((i, f.note()) for i, f in enumerate(taken))
                room = f"no room: zoo genomes take at most half the population ({len(taken)})"
                notes.extend(
                    (None, attrs.evolve(f, reason=room).note()) for f in fitted[len(taken) :]
                )
                notes.extend((None, f.note()) for f in left_out)
        within = draw_bounds(e, bounds, shape, classes)
        try:
            named += [
                ("random", _draw(rng, shape, classes, within, costs))
                for _ in range(size - len(named))
            ]
        except GenomeError:  # not even the minimal genome, its fallback, is within bounds
            named.append(("random", minimal(shape, classes)))
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


@attrs.frozen
class Fitted:
    """A zoo genome as ``init = "mixed"`` would start from it: ``genome`` retargeted to the data
    with its widths times ``width`` (None, with ``reason``, when it is left out)."""

    name: str
    genome: Genome | None
    width: float = 1.0
    reason: str = ""

    def note(self) -> dict[str, Any]:
        """What the run's events say of it."""
        if self.genome is None:
            return {"zoo": self.name, "left_out": self.reason}
        note: dict[str, Any] = {"zoo": self.name, "width": self.width}
        if self.reason:
            note["left_out"] = self.reason
        else:
            note["params"] = sum(parameter_counts(self.genome).values())
            note["flops"] = sum(flop_counts(self.genome).values())
        return note


def scale_widths(genome: Genome, factor: float) -> Genome:
    """``genome`` with every convolution's channels and dense layer's units times ``factor``
    (rounded, at least 1), except the classifier's; grouped convolutions keep as many groups as
    the new widths allow (a depthwise one stays depthwise)."""
    classifier = classifier_node(genome)

    def scaled(n: int) -> int:
        return max(1, round(n * factor))

    nodes, groups = [], {}
    for node in genome.nodes:
        gene = node.gene
        if node.id != classifier and isinstance(gene, Conv):
            groups[node.id] = scaled(gene.groups)
            gene = attrs.evolve(gene, out_channels=scaled(gene.out_channels), groups=1)
        elif node.id != classifier and isinstance(gene, Dense):
            gene = attrs.evolve(gene, units=scaled(gene.units))
        nodes.append(attrs.evolve(node, gene=gene))
    wide = attrs.evolve(genome, nodes=tuple(nodes))
    if not groups or all(g == 1 for g in groups.values()):
        return wide
    # Groups must divide both channel counts, which are only known once the widths are set.
    shapes = infer_shapes(wide)
    for i, node in enumerate(nodes):
        if groups.get(node.id, 1) > 1:
            inputs = shapes[node.inputs[0]][0]
            g = math.gcd(groups[node.id], inputs, node.gene.out_channels)
            nodes[i] = attrs.evolve(node, gene=attrs.evolve(node.gene, groups=g))
    return attrs.evolve(genome, nodes=tuple(nodes))


def fit_zoo(
    name: str, shape: tuple[int, int, int], classes: int, bounds: Any, costs: Any = None
) -> Fitted:
    """The zoo genome ``name`` on this data, its widths halved until it keeps ``bounds`` and
    the latency limit of ``costs``; left out (``genome`` None, with the reason) when it does not
    fit the input or is still over a limit with every width at 1."""
    import zoo

    if name in MIXED_SKIPS:
        return Fitted(name, None, reason=MIXED_SKIPS[name])
    try:
        base = retarget(zoo.load(name), shape, classes)
    except GenomeError as exc:
        return Fitted(name, None, reason=f"does not fit the data ({exc})")
    genome, width, previous = base, 1.0, None
    while genome != previous:
        reason = _over(genome, bounds, costs)
        if reason is None:
            return Fitted(name, genome, width)
        previous, width = genome, width / 2
        try:
            genome = scale_widths(base, width)
        except GenomeError as exc:
            return Fitted(name, None, reason=f"cannot be made narrower ({exc})")
    return Fitted(name, None, reason=f"{reason} with every width at 1")


def mixed_zoo(
    shape: tuple[int, int, int], classes: int, bounds: Any, costs: Any = None
) -> tuple[list[Fitted], list[Fitted]]:
    """The zoo genomes ``init = "mixed"`` starts from, in the order it takes them, and those it
    leaves out. Taken first: the genomes made for the nearest image size (by the log of the
    ratio of pixels: a 28x28 network before a 32x32 one before a 224x224 one on 28x28 data),
    then the cheapest in FLOPs on this data, then by name; a genome equal to one before it
    after scaling is left out."""
    import zoo

    pixels = shape[1] * shape[2]
    kept, left_out, seen = [], [], {}

    def order(f: Fitted) -> tuple:
        made_for = zoo.load(f.name).input_shape
        distance = abs(math.log(made_for[1] * made_for[2] / pixels))
        return (round(distance, 6), sum(flop_counts(f.genome).values()), f.name)

    for name in zoo.names():
        fitted = fit_zoo(name, shape, classes, bounds, costs)
        (kept if fitted.genome is not None else left_out).append(fitted)
    ordered = []
    for fitted in sorted(kept, key=order):
        key = canonical_hash(fitted.genome)
        if key in seen:
            left_out.append(attrs.evolve(fitted, reason=f"the same network as {seen[key]}"))
            continue
        seen[key] = fitted.name
        ordered.append(fitted)
    return ordered, left_out


def _over(genome: Genome, bounds: Any, costs: Any = None) -> str | None:
    """The first limit ``genome`` is over (None when it keeps them all)."""
    params = sum(parameter_counts(genome).values())
    if bounds.max_params is not None and params > bounds.max_params:
        return f"over max_params: {params:,} > {bounds.max_params:,}"
    flops = sum(flop_counts(genome).values())
    if bounds.max_flops is not None and flops > bounds.max_flops:
        return f"over max_flops: {flops:,} > {bounds.max_flops:,}"
    try:
        validate(genome, bounds)
    except GenomeError as exc:
        return f"outside the run's bounds ({exc})"
    if costs is not None and costs.max_latency_ms is not None:
        latency = costs.latency_ms(genome)
        if latency > costs.max_latency_ms:
            return f"over max_latency_ms: {latency:.4g} > {costs.max_latency_ms:g}"
    return None


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
    is measured with ``costs`` (:class:`runner.evolution.costs.Costs`, without a store yet)."""
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
    else:  # minimal, and random's (and mixed's) fallback: the smallest genome there is
        _check(experiment.init, minimal(shape, classes), config.bounds, costs)
