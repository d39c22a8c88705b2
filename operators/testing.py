"""Hypothesis strategies and checks for property-testing mutation operators, ecogen's own and
yours: register an operator, then run it through :func:`mutation_chains` and
:func:`check_mutation` as ecogen's tests do.

Needs ``hypothesis`` (the ``dev`` extra).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hypothesis import strategies as st

from genomics import Genome, GenomeError, dumps, loads, validate
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
    """Apply one operator and assert what every mutation must hold: the result is valid within
    ``config``'s bounds, differs from ``genome``, round-trips through JSON and changes the genome
    as the operator's ``effect`` says. Returns the result, or ``None`` when the operator said it
    does not apply (then ``applies`` must agree)."""
    info = get(info) if isinstance(info, str) else info
    try:
        after = info.apply(genome, rng, config)
    except NotApplicable:
        assert not info.applies(genome, config), f"{info.name} said no, but applies() says yes"
        return None
    try:
        validate(after, config.bounds)
    except GenomeError as exc:
        raise AssertionError(f"{info.name} made an invalid genome: {exc}") from None
    assert after != genome, f"{info.name} returned the genome unchanged"
    assert loads(dumps(after)) == after, f"{info.name}'s result does not round-trip through JSON"
    if info.effect is not None:
        problems = info.effect.problems(genome, after)
        assert not problems, f"{info.name} ({info.effect}): {'; '.join(problems)}"
    return after
