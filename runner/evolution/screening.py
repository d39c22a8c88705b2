"""Screening a generation's children by a zero-cost proxy (``screen``): more children made, the
``screen_keep`` share that the proxy scores best trained (docs/proxies.md)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import phenotypes.proxies as phx
from genomics import canonical_hash

from .. import rng as rngs
from ..proxies import get
from .candidate import Candidate


def pool_size(children: int, keep: float) -> int:
    """Candidates to make so that ``children`` of them are a ``keep`` share: rounded up."""
    # Rounded first: 12 / 0.3 is 40.000000000000007 in floating point.
    return max(children, math.ceil(round(children / keep, 9)))


def screen(
    candidates: Sequence[Candidate],
    count: int,
    proxy: str,
    data: Any,
    batch_size: int,
    seed: int,
    refusal: Callable[[Candidate], str | None] | None = None,
) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """The ``count`` candidates that ``proxy`` scores highest (equal scores: the earlier
    first; failures last, in candidate order), kept in candidate order, and one record per
    candidate: ``id``, ``genome_hash``, ``score`` (None for a failure, with ``failure``),
    ``rank`` (0: the best) and ``kept``. Every candidate is scored on the same minibatch of
    ``batch_size`` images of ``data``'s training split, drawn with ``seed`` (the run's), its
    genome compiled with its training seed. A child whose mutation failed is not scored (its
    genome is its parent's): a failure. So is one that a run's limit will refuse untrained
    (``refusal``: the reason, or None), which would otherwise take a kept place for nothing."""
    function = get(proxy).function
    x, y = phx.minibatch(data, batch_size, seed)
    scores = []
    for candidate in candidates:
        ind, failed = candidate.individual, candidate.failure
        refused = None if failed is not None or refusal is None else refusal(candidate)
        if failed is not None:
            scores.append(phx.ProxyScore(proxy, None, f"mutation failed: {failed.reason}"))
        elif refused is not None:
            scores.append(phx.ProxyScore(proxy, None, f"refused: {refused}"))
        else:
            child_seed = rngs.seed_for(seed, ind.id)
            scores.append(phx.score(ind.genome, function, x, y, seed=child_seed, name=proxy))
    order = sorted(
        range(len(candidates)), key=lambda i: (not scores[i].ok, -(scores[i].value or 0.0))
    )
    rank = {i: r for r, i in enumerate(order)}
    records = []
    for i, (candidate, s) in enumerate(zip(candidates, scores, strict=True)):
        ind = candidate.individual
        record = {"id": ind.id, "genome_hash": canonical_hash(ind.genome), "score": s.value}
        if not s.ok:
            record["failure"] = s.failure
        records.append({**record, "rank": rank[i], "kept": rank[i] < count})
    kept = [candidate for i, candidate in enumerate(candidates) if rank[i] < count]
    return kept, records
