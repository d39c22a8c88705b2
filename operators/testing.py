"""Hypothesis strategies and checks for property-testing mutation operators, ecogen's own and
yours: register an operator, then run it through :func:`mutation_chains` and
:func:`check_mutation` as ecogen's tests do.

Needs ``hypothesis`` (the ``dev`` extra).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hypothesis import strategies as st

from genomics import Genome, canonical_hash, dumps, loads
from genomics.testing import SMALL_SHAPES, genomes, invalid_documents

from .config import DEFAULT_CONFIG, MutationConfig
from .errors import NotApplicable
from .registry import OperatorInfo, get, names

__all__ = [
    "SMALL_SHAPES",
    "apply_chain",
    "check_mutation",
    "genomes",
    "invalid_documents",
    "mutation_chains",
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
