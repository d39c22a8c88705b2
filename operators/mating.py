"""The crossover registry: every crossover with its metadata, built-in or from a plugin, and
``mate``, DEAP's ``toolbox.mate``.

A crossover is written as a *transform* ``(first, second, rng, config) -> Genome |
Iterable[Genome] | None``: the child that takes ``first``'s place, made of the two parents'
genes, or candidates to try in order (the first valid one wins), or ``None`` when no child can
be made. :func:`crossover` turns a transform into a module-level function in DEAP's convention
(``mate(ind1, ind2) -> (ind1, ind2)``: each parent replaced by its child with the other) and
registers it on the plugin registry operators and strategies share; third-party packages expose
such functions under the entry-point group ``ecogen.crossovers``.

What every crossover must hold (``operators.testing.check_crossover`` asserts it): a child is
valid within the run's bounds, keeps the input shape and the class count, is made only of its
parents' genes, and a node id keeps the kind of gene it has in the parents; the same generator
state gives the same child; and a genome crossed with itself is itself.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from functools import update_wrapper
from typing import Any

import attrs
from attrs import frozen

from genomics import Genome, GenomeError

from .config import DEFAULT_CONFIG, MutationConfig
from .errors import NotApplicable, PluginError
from .individual import Individual
from .plugins import Registry
from .registry import _provider_of, admits, keeps_lineage

CROSSOVER_GROUP = "ecogen.crossovers"

Transform = Callable[
    [Genome, Genome, random.Random, MutationConfig], "Genome | Iterable[Genome] | None"
]


@frozen
class CrossoverInfo:
    """A registered crossover: its name, DEAP-convention ``function``, the ``transform`` behind
    it, a one-line ``changes`` text, the package providing it and its default draw ``weight``
    (a run's ``crossover_weights`` override it)."""

    name: str
    function: Callable[..., tuple[Any, Any]]
    transform: Transform
    changes: str
    provider: str
    weight: float = 1.0

    def apply(
        self, first: Genome, second: Genome, rng: random.Random, config: MutationConfig
    ) -> Genome:
        """The child that takes ``first``'s place, valid within ``config``'s bounds;
        NotApplicable when there is none."""
        if (first.input_shape, first.num_classes) != (second.input_shape, second.num_classes):
            raise NotApplicable(
                f"{self.name}: the parents differ in input shape or class count"
                f" ({first.input_shape}, {first.num_classes} against {second.input_shape},"
                f" {second.num_classes})"
            )
        try:
            out = self.transform(first, second, rng, config)
            candidates = [out] if isinstance(out, Genome) else (out or ())
            for candidate in candidates:
                # The child takes the first parent's place (and weights): its lineage.
                candidate = keeps_lineage(candidate, first)
                if admits(config, candidate):
                    return candidate
        except GenomeError as exc:
            raise NotApplicable(f"{self.name}: {exc}") from None
        raise NotApplicable(f"{self.name}: no valid child of these parents")

    def applies(
        self, first: Genome, second: Genome, config: MutationConfig = DEFAULT_CONFIG
    ) -> bool:
        """Whether crossing ``first`` with ``second`` gives a valid child."""
        try:
            self.apply(first, second, random.Random(0), config)
        except NotApplicable:
            return False
        return True


def crossover(
    name: str | None = None, *, changes: str, weight: float = 1.0
) -> Callable[[Transform], Callable[..., tuple[Any, Any]]]:
    """Register ``transform`` as a crossover and return it in DEAP's convention.

    The returned function takes two :class:`Individual` objects (or two bare genomes) plus
    ``rng`` and ``config`` keywords and returns both children: each individual's genome is
    replaced by its child with the other, its name appended to ``operators`` and its fitness
    invalidated. It raises :class:`NotApplicable` when either child cannot be made. ``weight``
    is its default draw weight in :func:`mate` (0: only when a run's ``crossover_weights``
    turn it on). Assign it to a module-level name (as a decorator does) so that it pickles.
    """

    def decorate(transform: Transform) -> Callable[..., tuple[Any, Any]]:
        op_name = name or transform.__name__

        def function(
            ind1: Individual | Genome,
            ind2: Individual | Genome,
            rng: random.Random | None = None,
            config: MutationConfig = DEFAULT_CONFIG,
        ) -> tuple[Any, Any]:
            rng = rng if rng is not None else random.Random(random.getrandbits(64))
            a = ind1 if isinstance(ind1, Genome) else ind1.genome
            b = ind2 if isinstance(ind2, Genome) else ind2.genome
            child1 = function.info.apply(a, b, rng, config)
            child2 = function.info.apply(b, a, rng, config)
            return _replace(ind1, child1, op_name), _replace(ind2, child2, op_name)

        update_wrapper(function, transform)
        function.transform = transform
        transform.__qualname__ = f"{function.__qualname__}.transform"
        function.info = CrossoverInfo(
            op_name, function, transform, changes, _provider_of(transform.__module__), weight
        )
        CROSSOVERS.add(op_name, function.info, same=_same_transform)
        return function

    return decorate


def _replace(individual: Individual | Genome, genome: Genome, name: str) -> Any:
    if isinstance(individual, Genome):
        return genome
    individual.genome = genome
    individual.operators.append(name)
    del individual.fitness.values
    return individual


def _same_transform(a: CrossoverInfo, b: CrossoverInfo) -> bool:
    return (a.transform.__module__, a.transform.__qualname__) == (
        b.transform.__module__,
        b.transform.__qualname__,
    )


def _load(ep_name: str, function: Any, provider: str) -> tuple[str, CrossoverInfo]:
    info = getattr(function, "info", None)
    if not isinstance(info, CrossoverInfo):
        raise PluginError(
            f"crossover {ep_name!r} of {provider}: not an ecogen crossover (decorate its"
            " transform with @operators.crossover)"
        )
    return info.name, attrs.evolve(info, provider=provider)


#: Every crossover: ecogen's, ``ecogen.crossovers`` entry points', and those registered by
#: imported code.
CROSSOVERS: Registry[CrossoverInfo] = Registry("crossover", CROSSOVER_GROUP, _load)


def registered_crossovers(reload: bool = False) -> dict[str, CrossoverInfo]:
    """Every registered crossover by name: built-ins first, then plugins (entry points, loaded
    once; ``reload`` scans them again) and crossovers registered by imported user code."""
    return CROSSOVERS.registered(reload)


def refused_crossovers(reload: bool = False) -> dict[str, str]:
    """Crossover plugins that were refused, by entry-point name, with the reason."""
    return CROSSOVERS.refused(reload)


def crossover_names() -> list[str]:
    """Names of every registered crossover."""
    return list(registered_crossovers())


def get_crossover(name: str) -> CrossoverInfo:
    """The crossover registered as ``name``; PluginError for a refused plugin."""
    try:
        return CROSSOVERS.get(name)
    except KeyError:
        raise KeyError(
            f"no crossover named {name!r} (registered: {', '.join(registered_crossovers())})"
        ) from None


def cross(
    first: Genome,
    second: Genome,
    rng: random.Random | None = None,
    config: MutationConfig = DEFAULT_CONFIG,
    names: Iterable[str] | None = None,
    weights: Mapping[str, float] | None = None,
) -> tuple[Genome, str | None]:
    """The child that takes ``first``'s place and the name of the crossover that made it: a
    crossover drawn by ``weights`` (default: each one's registered weight) among ``names``
    (default: every registered one); one that does not apply is set aside and another drawn.
    When none applies the child is ``first`` and the name ``None``."""
    rng = rng if rng is not None else random.Random(random.getrandbits(64))
    table = registered_crossovers()
    pool = list(names) if names is not None else list(table)
    unknown = [n for n in pool if n not in table]
    if unknown:
        raise KeyError(f"no crossover named {', '.join(map(repr, unknown))}")
    weights = {n: table[n].weight for n in pool} | dict(weights or {})
    pool = [n for n in pool if weights[n] > 0]
    while pool:
        name = rng.choices(pool, weights=[weights[n] for n in pool])[0]
        try:
            return table[name].apply(first, second, rng, config), name
        except NotApplicable:
            pool.remove(name)
    return first, None


def mate(
    ind1: Individual | Genome,
    ind2: Individual | Genome,
    rng: random.Random | None = None,
    config: MutationConfig = DEFAULT_CONFIG,
    names: Iterable[str] | None = None,
    weights: Mapping[str, float] | None = None,
) -> tuple[Any, Any]:
    """DEAP's ``toolbox.mate``: each parent replaced by its child with the other, each child
    made by a crossover drawn as :func:`cross` draws it (names and weights as there). A child no
    crossover can make stays its parent. Individuals are changed in place: the crossover's name
    is appended to ``operators`` and the fitness invalidated when the genome changed."""
    rng = rng if rng is not None else random.Random(random.getrandbits(64))
    names = tuple(names) if names is not None else None
    a = ind1 if isinstance(ind1, Genome) else ind1.genome
    b = ind2 if isinstance(ind2, Genome) else ind2.genome
    out = []
    for individual, (first, second) in ((ind1, (a, b)), (ind2, (b, a))):
        child, name = cross(first, second, rng, config, names, weights)
        if isinstance(individual, Genome):
            out.append(child)
            continue
        if name is not None:
            individual.operators.append(name)
        if child != individual.genome:
            individual.genome = child
            del individual.fitness.values
        out.append(individual)
    return out[0], out[1]
