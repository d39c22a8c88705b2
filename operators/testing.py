"""Hypothesis strategies and checks for property-testing mutation operators and crossovers,
ecogen's own and yours: register an operator, then run it through :func:`mutation_chains` and
:func:`check_mutation` as ecogen's tests do (and :func:`check_preserves_declaration` for what it
declares under weight inheritance); a crossover, through :func:`crossover_pairs` and
:func:`check_crossover`.

Needs ``hypothesis`` (the ``dev`` extra).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from genomics import Genome, GenomeError, canonical_hash, dumps, loads
from genomics.testing import SMALL_SHAPES, genomes, invalid_documents

from .config import DEFAULT_CONFIG, MutationConfig
from .errors import NotApplicable
from .mating import CrossoverInfo, get_crossover
from .registry import OperatorInfo, admits, get, keeps_lineage, names
from .toolbox import mutate

__all__ = [
    "SMALL_SHAPES",
    "apply_chain",
    "check_crossover",
    "check_function_preserved",
    "check_mutation",
    "check_preserves_declaration",
    "crossover_pairs",
    "genomes",
    "invalid_documents",
    "mutation_chains",
    "trained_like",
]


@st.composite
def mutation_chains(
    draw: st.DrawFn,
    min_length: int = 5,
    max_length: int = 8,
    first: str | None = None,
    operator_names: Sequence[str] | None = None,
    genome_strategy: st.SearchStrategy[Genome] | None = None,
) -> tuple[Genome, list[str], int]:
    """``(genome, operator names, seed)``: a valid genome and a chain of registered mutations to
    apply to it in order, starting with ``first`` when given."""
    pool = list(operator_names) if operator_names is not None else names()
    genome = draw(genome_strategy if genome_strategy is not None else genomes())
    length = draw(st.integers(min_length, max_length))
    chain = [first] if first else []
    chain += draw(st.lists(st.sampled_from(pool), min_size=length - len(chain), max_size=length))
    seed = draw(st.integers(0, 2**32 - 1))
    return genome, chain, seed


def apply_chain(
    genome: Genome, chain: Sequence[str], seed: int, config: MutationConfig = DEFAULT_CONFIG
) -> tuple[Genome, list[str]]:
    """Apply each mutation of ``chain`` in turn, checking each with :func:`check_mutation`;
    returns the final genome and the names that applied."""
    rng = random.Random(seed)
    applied = []
    for name in chain:
        after = check_mutation(get(name), genome, rng, config)
        if after is not None:
            genome = after
            applied.append(name)
    return genome, applied


def check_mutation(
    info: OperatorInfo | str,
    genome: Genome,
    rng: random.Random,
    config: MutationConfig = DEFAULT_CONFIG,
) -> Genome | None:
    """Apply one operator and assert what every mutation must hold beyond what ``apply``
    itself guarantees (a result valid within ``config``'s bounds, other than ``genome``):

    - it is a function of the generator's state: the same state gives the same result;
    - it changes the architecture, not only node ids (the canonical hash differs), and keeps
      the input shape and the class count;
    - a node id keeps its identity: an id the result shares with ``genome`` names the same
      kind of gene, so node ids can pair a child's layers with its parent's;
    - the result round-trips through JSON;
    - the genome changes as the operator's ``effect`` says.

    Returns the result, or ``None`` when the operator said it does not apply (then
    ``applies`` must agree)."""
    info = get(info) if isinstance(info, str) else info
    state = rng.getstate()
    try:
        after = info.apply(genome, rng, config)
    except NotApplicable:
        assert not info.applies(genome, config), f"{info.name} said no, but applies() says yes"
        return None
    replay = random.Random()
    replay.setstate(state)
    assert info.apply(genome, replay, config) == after, f"{info.name} is not reproducible"
    assert canonical_hash(after) != canonical_hash(genome), (
        f"{info.name} changed node ids only, not the architecture"
    )
    assert (after.input_shape, after.num_classes) == (genome.input_shape, genome.num_classes), (
        f"{info.name} changed the input shape or the class count"
    )
    before = {node.id: type(node.gene) for node in genome.nodes}
    for node in after.nodes:
        kind = before.get(node.id)
        assert kind is None or kind is type(node.gene), (
            f"{info.name}: node {node.id} was a {kind.TYPE}, is now a {node.gene.TYPE}"
        )
    assert loads(dumps(after)) == after, f"{info.name}'s result does not round-trip through JSON"
    if info.effect is not None:
        problems = info.effect.problems(genome, after)
        assert not problems, f"{info.name} ({info.effect}): {'; '.join(problems)}"
    return after


def trained_like(model: Any, seed: int) -> Any:
    """``model`` with random weights that look trained: every parameter moved off its start,
    batch-norm statistics that are not the identity's. Returns it (in evaluation mode)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if not value.is_floating_point():
                continue
            noise = torch.randn(value.shape, generator=generator)
            if name.endswith("running_var"):
                value.copy_(0.5 + torch.rand(value.shape, generator=generator))
            elif name.endswith("running_mean"):
                value.copy_(0.1 * noise)
            else:
                value.add_(0.1 * noise * (value.std() if value.numel() > 1 else 1.0))
    return model.eval()


def _inherited_gap(parent: Any, genome: Genome, child: Genome, seed: int) -> float:
    """How far ``child``, given the weights of ``parent`` (``genome``'s trained-like network)
    by ``phenotypes.inherit_weights``, computes from it: the largest difference between their
    outputs on random inputs, in evaluation mode."""
    import torch

    import phenotypes as ph

    model = ph.compile_genome(child, seed=seed + 1)
    ph.inherit_weights(model, child, parent, genome)
    x = torch.randn((4, *genome.input_shape), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return (model.eval()(x) - parent(x)).abs().max().item()


def check_function_preserved(
    info: OperatorInfo | str,
    genome: Genome,
    rng: random.Random,
    config: MutationConfig = DEFAULT_CONFIG,
    seed: int = 0,
    atol: float = 1e-4,
) -> Genome | None:
    """Apply one operator, give the child its parent's weights (random, trained-like) with
    ``phenotypes.inherit_weights``, and assert that the child computes what the parent does
    (evaluation mode, ``atol``) on random inputs: what an operator declared
    ``preserves="exact"`` promises. Returns the child, or None when the operator does not
    apply. Needs torch."""
    import phenotypes as ph

    info = get(info) if isinstance(info, str) else info
    try:
        child = info.apply(genome, rng, config)
    except NotApplicable:
        return None
    parent = trained_like(ph.compile_genome(genome, seed=seed), seed)
    gap = _inherited_gap(parent, genome, child, seed)
    assert gap <= atol, (
        f"{info.name}: the inheriting child's outputs differ from its parent's by up to {gap:.3g}"
    )
    return child


def _children(info: OperatorInfo, genome: Genome, rng: random.Random, config: MutationConfig):
    """Every distinct valid genome ``info`` makes of ``genome``, in the order it tries them."""
    seen = {canonical_hash(genome)}
    try:
        out = info.transform(genome, rng, config)
        for candidate in [out] if isinstance(out, Genome) else (out or ()):
            candidate = keeps_lineage(candidate, genome)
            if admits(config, candidate) and (digest := canonical_hash(candidate)) not in seen:
                seen.add(digest)
                yield candidate
    except GenomeError:
        return  # as apply() has it: an impossible gene ends the search


def check_preserves_declaration(
    info: OperatorInfo | str,
    samples: Sequence[Genome],
    config: MutationConfig = DEFAULT_CONFIG,
    seed: int = 0,
    atol: float = 1e-4,
) -> tuple[int, int]:
    """Check what the registry cannot: that an operator's ``preserves`` fits what its children
    do. Each distinct child the operator can make of each of ``samples`` gets its parent's
    weights (random, trained-like) and is compared with it, as in
    :func:`check_function_preserved`:

    - ``exact``: every child computes its parent's function (within ``atol``);
    - ``approximate``: some children do and some do not (always: it is ``exact``; never: it
      is ``not``);
    - ``not``: some child does not (an operator whose children always do promises too little).

    Give samples that both meet and break the operator's conditions (a ReLU'd input and a
    signed one, grouped convolutions, ...). An operator not declared ``exact`` stops at the
    first children that confirm it. Returns how many children kept the function and how many
    did not. Needs torch."""
    import phenotypes as ph

    info = get(info) if isinstance(info, str) else info
    kept = changed = 0
    for index, genome in enumerate(samples):
        parent = trained_like(ph.compile_genome(genome, seed=seed + index), seed + index)
        for child in _children(info, genome, random.Random(seed + index), config):
            gap = _inherited_gap(parent, genome, child, seed + index)
            if gap <= atol:
                kept += 1
            else:
                changed += 1
                assert info.preserves != "exact", (
                    f"{info.name} is declared 'exact', but a child of sample {index} computes"
                    f" up to {gap:.3g} away from its parent after inheriting its weights"
                )
            if changed and (kept or info.preserves == "not"):
                return kept, changed  # the declaration is borne out
    assert kept or changed, f"{info.name} makes no child of any sample: nothing to check"
    if info.preserves == "approximate":
        assert changed, (
            f"{info.name} is declared 'approximate', but all {kept} children computed their"
            " parent's function after inheriting its weights: declare it 'exact'"
        )
        assert kept, (
            f"{info.name} is declared 'approximate', but none of its {changed} children"
            " computed its parent's function after inheriting its weights: declare it 'not'"
        )
    if info.preserves == "not":
        assert changed, (
            f"{info.name} is declared 'not', but all {kept} children computed their parent's"
            " function after inheriting its weights: declare it 'exact' or 'approximate'"
        )
    return kept, changed


#: How the two parents :func:`crossover_pairs` draws are related.
RELATIONS = ("relatives", "parent and child", "same", "strangers")


@st.composite
def crossover_pairs(
    draw: st.DrawFn,
    relations: Sequence[str] = RELATIONS,
    max_mutations: int = 6,
    genome_strategy: st.SearchStrategy[Genome] | None = None,
) -> tuple[Genome, Genome]:
    """``(first, second)``: two valid genomes for one input shape and class count, as a
    population holds them: ``relatives`` (each 1 to ``max_mutations`` registered mutations
    away from a common ancestor, so that node ids align), ``parent and child``, the ``same``
    genome twice, or ``strangers`` (drawn apart; their ids align by name only)."""
    base = draw(genome_strategy if genome_strategy is not None else genomes())
    relation = draw(st.sampled_from(list(relations)))

    def descendant() -> Genome:
        count = draw(st.integers(1, max_mutations))
        seed = draw(st.integers(0, 2**32 - 1))
        return mutate(base, rng=random.Random(seed), count=(count, count))[0]

    if relation == "relatives":
        return descendant(), descendant()
    if relation == "parent and child":
        child = descendant()
        return (base, child) if draw(st.booleans()) else (child, base)
    if relation == "same":
        return base, base
    other = draw(
        genomes(input_shapes=st.just(base.input_shape), num_classes=st.just(base.num_classes))
    )
    return base, other


def check_crossover(
    info: CrossoverInfo | str,
    first: Genome,
    second: Genome,
    rng: random.Random,
    config: MutationConfig = DEFAULT_CONFIG,
) -> Genome | None:
    """Cross ``first`` with ``second`` and assert what every crossover must hold beyond what
    ``apply`` itself guarantees (a child valid within ``config``'s bounds):

    - it is a function of the generator's state: the same state gives the same child;
    - the child keeps the input shape and the class count;
    - every gene of the child is a gene of a parent (crossover exchanges, it does not invent);
    - a node id keeps its identity: an id the child shares with a parent names the kind of gene
      it names there, so node ids keep pairing layers over generations;
    - the child round-trips through JSON;
    - a genome crossed with itself is itself.

    Returns the child, or ``None`` when the crossover said it does not apply (then
    ``applies`` must agree)."""
    info = get_crossover(info) if isinstance(info, str) else info
    alone = info.apply(first, first, random.Random(rng.random()), config)
    assert alone == first, f"{info.name}: a genome crossed with itself is not itself"
    state = rng.getstate()
    try:
        child = info.apply(first, second, rng, config)
    except NotApplicable:
        assert not info.applies(first, second, config), (
            f"{info.name} said no, but applies() says yes"
        )
        return None
    replay = random.Random()
    replay.setstate(state)
    assert info.apply(first, second, replay, config) == child, f"{info.name} is not reproducible"
    assert (child.input_shape, child.num_classes) == (first.input_shape, first.num_classes), (
        f"{info.name} changed the input shape or the class count"
    )
    genes = {node.gene for node in first.nodes} | {node.gene for node in second.nodes}
    for node in child.nodes:
        assert node.gene in genes, f"{info.name}: gene of {node.id} is from neither parent"
    kinds = {node.id: {type(node.gene)} for node in first.nodes}
    for node in second.nodes:
        kinds.setdefault(node.id, set()).add(type(node.gene))
    for node in child.nodes:
        known = kinds.get(node.id)
        assert known is None or type(node.gene) in known, (
            f"{info.name}: node {node.id} is a {node.gene.TYPE}, in the parents a"
            f" {' or '.join(sorted(k.TYPE for k in known))}"
        )
    assert loads(dumps(child)) == child, f"{info.name}'s child does not round-trip through JSON"
    return child
