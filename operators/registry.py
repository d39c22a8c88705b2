"""The operator registry: every mutation with its metadata, built-in or from a plugin.

A mutation is written as a *transform* ``(genome, rng, config) -> Genome | Iterable[Genome] |
None``: the genome it makes, or candidates to try in order (the first valid one wins), or
``None`` when nothing applies. :func:`mutation` turns a transform into a module-level function in
DEAP's convention and registers it (as timm's ``register_model`` does for models). Third-party
packages expose such functions under the entry-point group ``ecogen.operators``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from functools import update_wrapper
from typing import Any

import attrs
from attrs import frozen

from genomics import Genome, GenomeError, validate

from .config import DEFAULT_CONFIG, MutationConfig
from .effects import Effect, layer_census
from .errors import NotApplicable, PluginError
from .individual import Individual
from .plugins import BUILTIN_PROVIDER, Registry

ENTRY_POINT_GROUP = "ecogen.operators"

Transform = Callable[[Genome, random.Random, MutationConfig], "Genome | Iterable[Genome] | None"]

#: How far a mutated child that inherits its parent's weights (``phenotypes.inherit_weights``)
#: computes the parent's function before training: ``exact`` (every output equal, in evaluation
#: mode), ``approximate`` (equal where the layers around the change allow it: a ReLU'd input, a
#: kernel that grows, widths that fit) or ``not``.
PRESERVES = ("exact", "approximate", "not")


@frozen
class OperatorInfo:
    """A registered mutation: its name, DEAP-convention ``function``, the ``transform`` behind
    it, a one-line ``changes`` text, its checkable ``effect``, the package providing it and its
    default draw ``weight`` (a run's ``[weights]`` override it), and whether a child that
    inherits its parent's weights computes its parent's function (``preserves``: one of
    :data:`PRESERVES`; docs/inheritance.md)."""

    name: str
    function: Callable[..., tuple[Any]]
    transform: Transform
    changes: str
    effect: Effect | None
    provider: str
    weight: float = 1.0
    preserves: str = "not"

    def apply(self, genome: Genome, rng: random.Random, config: MutationConfig) -> Genome:
        """The mutated genome, valid within ``config``'s bounds; NotApplicable when none is."""
        try:
            out = self.transform(genome, rng, config)
            candidates = [out] if isinstance(out, Genome) else (out or ())
            for candidate in candidates:
                candidate = keeps_lineage(candidate, genome)
                if candidate != genome and admits(config, candidate):
                    return candidate
        except GenomeError as exc:
            # A transform that builds an impossible gene has found no valid place either.
            raise NotApplicable(f"{self.name}: {exc}") from None
        raise NotApplicable(f"{self.name}: no place in this genome where it gives a valid genome")

    def applies(self, genome: Genome, config: MutationConfig = DEFAULT_CONFIG) -> bool:
        """Whether some application to ``genome`` gives a valid genome."""
        try:
            self.apply(genome, random.Random(0), config)
        except NotApplicable:
            return False
        return True


def keeps_lineage(child: Genome, parent: Genome) -> Genome:
    """``child`` with at least ``parent``'s ``id_counter``: a transform that builds its result
    from scratch (``Genome(...)``, not ``attrs.evolve``) would otherwise let a later mutation
    reuse the id of a layer it dropped."""
    if not isinstance(child, Genome) or child.id_counter >= parent.id_counter:
        return child
    return attrs.evolve(child, id_counter=parent.id_counter)


def admits(config: MutationConfig, genome: Genome) -> bool:
    """Whether ``genome`` is valid within ``config``'s bounds and depth."""
    try:
        validate(genome, config.bounds)
    except GenomeError:
        return False
    return layer_census(genome)["conv"] <= config.max_convolutions


def _provider_of(module: str) -> str:
    top = module.split(".")[0]
    return BUILTIN_PROVIDER if top in ("operators", "genomics") else top


def mutation(
    name: str | None = None,
    *,
    changes: str,
    effect: Effect | None = None,
    weight: float = 1.0,
    preserves: str = "not",
) -> Callable[[Transform], Callable[..., tuple[Any]]]:
    """Register ``transform`` as a mutation and return it in DEAP's convention.

    ``weight`` is its default draw weight in :func:`operators.mutate`; 0 registers an operator
    that runs only when a run's ``[weights]`` turn it on. ``preserves`` declares whether an
    inheriting child computes its parent's function (:data:`PRESERVES`); ``exact`` is checked
    by ``operators.testing.check_function_preserved``, and whether the word fits at all by
    ``operators.testing.check_preserves_declaration``.

    The returned function takes an :class:`Individual` (or a bare Genome) plus ``rng`` and
    ``config`` keywords, replaces the genome, records its name in ``individual.operators``,
    invalidates the fitness and returns a 1-tuple. It raises :class:`NotApplicable` when no
    application gives a valid genome. Assign it to a module-level name (as a decorator does) so
    that it pickles.
    """

    if preserves not in PRESERVES:
        raise ValueError(f"preserves: must be one of {', '.join(PRESERVES)}, got {preserves!r}")

    def decorate(transform: Transform) -> Callable[..., tuple[Any]]:
        op_name = name or transform.__name__

        def function(
            individual: Individual | Genome,
            rng: random.Random | None = None,
            config: MutationConfig = DEFAULT_CONFIG,
        ) -> tuple[Any]:
            # Without an explicit rng, draw from the global one so random.seed() still governs.
            rng = rng if rng is not None else random.Random(random.getrandbits(64))
            if isinstance(individual, Genome):
                return (function.info.apply(individual, rng, config),)
            individual.genome = function.info.apply(individual.genome, rng, config)
            individual.operators.append(op_name)
            del individual.fitness.values
            return (individual,)

        update_wrapper(function, transform)
        # DEAP's toolbox copies a function's __dict__ (holding ``info``) into its partials; for
        # those to pickle, the transform must be reachable by name too: module.name.transform.
        function.transform = transform
        transform.__qualname__ = f"{function.__qualname__}.transform"
        function.info = OperatorInfo(
            op_name,
            function,
            transform,
            changes,
            effect,
            _provider_of(transform.__module__),
            weight,
            preserves,
        )
        OPERATORS.add(op_name, function.info, same=_same_transform)
        return function

    return decorate


def _same_transform(a: OperatorInfo, b: OperatorInfo) -> bool:
    # A module imported twice (as a script and by name, say) registers its operators again.
    return (a.transform.__module__, a.transform.__qualname__) == (
        b.transform.__module__,
        b.transform.__qualname__,
    )


def _load(ep_name: str, function: Any, provider: str) -> tuple[str, OperatorInfo]:
    info = getattr(function, "info", None)
    if not isinstance(info, OperatorInfo):
        raise PluginError(
            f"operator {ep_name!r} of {provider}: not an ecogen operator (decorate its transform"
            " with @operators.mutation)"
        )
    # The package that declares the entry point provides it; everything it declared (its
    # draw weight included) stays as declared.
    return info.name, attrs.evolve(info, provider=provider)


#: Every mutation operator: ecogen's, ``ecogen.operators`` entry points', and those registered
#: by imported code.
OPERATORS: Registry[OperatorInfo] = Registry("operator", ENTRY_POINT_GROUP, _load)


def registered(reload: bool = False) -> dict[str, OperatorInfo]:
    """Every registered operator by name: built-ins first, then plugins (entry points, loaded
    once; ``reload`` scans them again) and operators registered by imported user code."""
    return OPERATORS.registered(reload)


def refused(reload: bool = False) -> dict[str, str]:
    """Operator plugins that were refused, by entry-point name, with the reason."""
    return OPERATORS.refused(reload)


def names() -> list[str]:
    """Names of every registered operator."""
    return list(registered())


def get(name: str) -> OperatorInfo:
    """The operator registered as ``name``."""
    try:
        return OPERATORS.get(name)
    except KeyError:
        raise KeyError(
            f"no operator named {name!r} (registered: {', '.join(registered())})"
        ) from None
