"""The operator registry: every mutation with its metadata, built-in or from a plugin.

A mutation is written as a *transform* ``(genome, rng, config) -> Genome | Iterable[Genome] |
None``: the genome it makes, or candidates to try in order (the first valid one wins), or
``None`` when nothing applies. :func:`mutation` turns a transform into a module-level function in
DEAP's convention and registers it (as timm's ``register_model`` does for models). Third-party
packages expose such functions under the entry-point group ``ecogen.operators``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable
from functools import update_wrapper
from importlib import metadata
from typing import Any

from attrs import frozen

from genomics import (
    Add,
    Concat,
    Conv,
    Dense,
    Dropout,
    Genome,
    GenomeError,
    Pool,
    classifier_node,
    validate,
)

from .config import DEFAULT_CONFIG, MutationConfig
from .individual import Individual

ENTRY_POINT_GROUP = "ecogen.operators"
BUILTIN_PROVIDER = "ecogen"

Transform = Callable[[Genome, random.Random, MutationConfig], "Genome | Iterable[Genome] | None"]


class NotApplicable(Exception):
    """A mutation cannot apply to this genome (the message says why); pick another."""


class PluginError(Exception):
    """A plugin cannot be registered; the message names the plugin and what is wrong."""


#: The layer kinds an :class:`Effect` counts.
KINDS = ("conv", "pool", "dropout", "dense", "add", "concat")


def layer_census(genome: Genome) -> Counter:
    """How many layers of each kind: convolutions, window pools (not global ones), dropouts,
    hidden dense layers (not the classifier), additions and concatenations."""
    classifier = classifier_node(genome)
    counts: Counter = Counter({k: 0 for k in KINDS})
    for node in genome.nodes:
        gene = node.gene
        if isinstance(gene, Conv):
            counts["conv"] += 1
        elif isinstance(gene, Pool) and not gene.global_pool:
            counts["pool"] += 1
        elif isinstance(gene, Dropout):
            counts["dropout"] += 1
        elif isinstance(gene, Dense) and node.id != classifier:
            counts["dense"] += 1
        elif isinstance(gene, Add):
            counts["add"] += 1
        elif isinstance(gene, Concat):
            counts["concat"] += 1
    return counts


@frozen
class Effect:
    """What an operator changes, checkably: ``delta`` layers of ``kind`` (+1 adds one, -1
    removes one), the ``also`` changes of other kinds (a block insertion: ``also=(("add",
    3),)``), and nothing else; or, with ``delta == 0``, the ``field`` of one ``kind`` layer and
    nothing else."""

    kind: str
    delta: int
    field: str | None = None
    also: tuple[tuple[str, int], ...] = ()

    def __attrs_post_init__(self) -> None:
        for kind in (self.kind, *(k for k, _ in self.also)):
            if kind not in KINDS:
                raise ValueError(f"effect kind: must be one of {', '.join(KINDS)}, got {kind!r}")
        if (self.delta == 0) != (self.field is not None):
            raise ValueError("effect: an alteration (delta 0) names a field; nothing else does")
        if self.also and self.delta == 0:
            raise ValueError("effect: an alteration changes one layer; it has no `also`")

    def __str__(self) -> str:
        if self.delta == 0:
            return f"{self.kind}.{self.field}"
        return ", ".join(f"{k} {d:+d}" for k, d in self._deltas().items())

    def _deltas(self) -> dict[str, int]:
        return {self.kind: self.delta, **dict(self.also)}

    def problems(self, before: Genome, after: Genome) -> list[str]:
        """How ``after`` departs from what this effect says of a mutation of ``before``."""
        counts_before, counts_after = layer_census(before), layer_census(after)
        deltas = self._deltas()
        problems = []
        for kind in KINDS:
            want = counts_before[kind] + deltas.get(kind, 0)
            if counts_after[kind] != want:
                problems.append(f"{kind} layers: expected {want}, got {counts_after[kind]}")
        if self.delta == 0:
            if len(before) != len(after):
                problems.append(f"nodes: expected {len(before)}, got {len(after)}")
            else:
                changed = [(a, b) for a, b in zip(before.nodes, after.nodes, strict=True) if a != b]
                ok = (
                    len(changed) == 1
                    and changed[0][0].id == changed[0][1].id
                    and changed[0][0].inputs == changed[0][1].inputs
                    and type(changed[0][0].gene) is type(changed[0][1].gene)
                    and _fields_changed(changed[0][0].gene, changed[0][1].gene) == {self.field}
                )
                if not ok:
                    problems.append(f"expected one {self.kind} to change only its {self.field}")
        elif len(after) - len(before) != sum(deltas.values()):
            want = len(before) + sum(deltas.values())
            problems.append(f"nodes: expected {want}, got {len(after)}")
        return problems


def _fields_changed(a: Any, b: Any) -> set[str]:
    import attrs

    # padding follows kernel ("same" padding), so a kernel change may carry it along.
    changed = {f.name for f in attrs.fields(type(a)) if getattr(a, f.name) != getattr(b, f.name)}
    if "kernel" in changed:
        changed.discard("padding")
    return changed


@frozen
class OperatorInfo:
    """A registered mutation: its name, DEAP-convention ``function``, the ``transform`` behind
    it, a one-line ``changes`` text, its checkable ``effect``, the package providing it and its
    default draw ``weight`` (a run's ``[weights]`` override it)."""

    name: str
    function: Callable[..., tuple[Any]]
    transform: Transform
    changes: str
    effect: Effect | None
    provider: str
    weight: float = 1.0

    def apply(self, genome: Genome, rng: random.Random, config: MutationConfig) -> Genome:
        """The mutated genome, valid within ``config``'s bounds; NotApplicable when none is."""
        try:
            out = self.transform(genome, rng, config)
            candidates = [out] if isinstance(out, Genome) else (out or ())
            for candidate in candidates:
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


def admits(config: MutationConfig, genome: Genome) -> bool:
    """Whether ``genome`` is valid within ``config``'s bounds and depth."""
    try:
        validate(genome, config.bounds)
    except GenomeError:
        return False
    return layer_census(genome)["conv"] <= config.max_convolutions


_BUILTIN: dict[str, OperatorInfo] = {}
_PLUGINS: dict[str, OperatorInfo] | None = None


def _provider_of(module: str) -> str:
    top = module.split(".")[0]
    return BUILTIN_PROVIDER if top in ("operators", "genomics") else top


def mutation(
    name: str | None = None, *, changes: str, effect: Effect | None = None, weight: float = 1.0
) -> Callable[[Transform], Callable[..., tuple[Any]]]:
    """Register ``transform`` as a mutation and return it in DEAP's convention.

    ``weight`` is its default draw weight in :func:`operators.mutate`; 0 registers an operator
    that runs only when a run's ``[weights]`` turn it on.

    The returned function takes an :class:`Individual` (or a bare Genome) plus ``rng`` and
    ``config`` keywords, replaces the genome, records its name in ``individual.operators``,
    invalidates the fitness and returns a 1-tuple. It raises :class:`NotApplicable` when no
    application gives a valid genome. Assign it to a module-level name (as a decorator does) so
    that it pickles.
    """

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
        )
        _register(_BUILTIN if function.info.provider == BUILTIN_PROVIDER else _extra, function)
        return function

    return decorate


# Operators registered by importing a module that is not an entry point (a user's script).
_extra: dict[str, OperatorInfo] = {}


def _register(table: dict[str, OperatorInfo], function: Any) -> None:
    info = function.info
    known = table.get(info.name)
    if known is not None and (
        known.transform.__module__,
        known.transform.__qualname__,
    ) != (info.transform.__module__, info.transform.__qualname__):
        raise PluginError(
            f"operator {info.name!r} of {info.provider} is already registered by {known.provider}"
        )
    table[info.name] = info


def _load_plugins() -> dict[str, OperatorInfo]:
    found: dict[str, OperatorInfo] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        provider = ep.dist.name if ep.dist is not None else ep.module.split(".")[0]
        try:
            function = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {provider}: entry point {ep.name} = {ep.value} cannot be loaded:"
                f" {type(exc).__name__}: {exc}"
            ) from exc
        info = getattr(function, "info", None)
        if not isinstance(info, OperatorInfo):
            raise PluginError(
                f"plugin {provider}: entry point {ep.name} = {ep.value} is not an ecogen"
                " operator (decorate its transform with @operators.mutation)"
            )
        if info.name in _BUILTIN or info.name in found:
            owner = _BUILTIN.get(info.name) or found[info.name]
            raise PluginError(
                f"plugin {provider}: operator {info.name!r} is already registered by"
                f" {owner.provider}"
            )
        found[info.name] = OperatorInfo(
            info.name, info.function, info.transform, info.changes, info.effect, provider
        )
        _extra.pop(info.name, None)
    return found


def registered(reload: bool = False) -> dict[str, OperatorInfo]:
    """Every registered operator by name: built-ins first, then plugins (entry points, loaded
    once; ``reload`` scans them again) and operators registered by imported user code."""
    global _PLUGINS
    from . import mutations  # noqa: F401  (registers the built-ins)

    if _PLUGINS is None or reload:
        _PLUGINS = _load_plugins()
    return {**_BUILTIN, **_PLUGINS, **_extra}


def names() -> list[str]:
    """Names of every registered operator."""
    return list(registered())


def get(name: str) -> OperatorInfo:
    """The operator registered as ``name``."""
    table = registered()
    if name not in table:
        raise KeyError(f"no operator named {name!r} (registered: {', '.join(table)})")
    return table[name]
