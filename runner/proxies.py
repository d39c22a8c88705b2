"""Zero-cost proxies in a run: their registry (``phenotypes.proxies``' built-ins and
``ecogen.proxies`` entry points) and the screening of a generation's children by one of them.

An entry point names a function ``(model, x, y) -> float``, larger meaning predicted better
(``phenotypes.proxies`` says how the built-ins are signed); its docstring's first sentence is
what ``ecogen plugins`` shows. The registry is :class:`operators.Registry`, with the operators'
refusal rule.

Screening (``screen = "NAME"``, ``screen_keep``): the engine makes ``children / screen_keep``
candidates, scores each in the main process on the CPU (its genome compiled with the seed it
would train with, one minibatch of the training split drawn with the run's seed), and keeps the
``children`` best in candidate order; the others are never created as individuals. Every score
is recorded as a ``screened`` event. The decisions depend only on the run seed and the
candidates, so every worker count and every resume take the same ones.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

from attrs import frozen

import operators as ops
import phenotypes.proxies as phx
from genomics import canonical_hash
from operators import PluginError, Registry
from operators.plugins import BUILTIN_PROVIDER

from . import rng as rngs

ENTRY_POINT_GROUP = "ecogen.proxies"


@frozen
class ProxyInfo:
    """A registered proxy: its name, function and the package providing it."""

    name: str
    function: phx.Proxy
    provider: str

    @property
    def summary(self) -> str:
        doc = " ".join((self.function.__doc__ or "").split())
        return doc.split(". ")[0].rstrip(".")


def _takes_a_minibatch(function: Any) -> bool:
    try:
        inspect.signature(function).bind(None, None, None)
    except (TypeError, ValueError):
        return False
    return True


def _load(ep_name: str, function: Any, provider: str) -> tuple[str, ProxyInfo]:
    if not callable(function) or not _takes_a_minibatch(function):
        raise PluginError(
            f"proxy {ep_name!r} of {provider}: not a proxy (a function (model, x, y) -> float)"
        )
    return ep_name, ProxyInfo(ep_name, function, provider)


#: Every proxy: ecogen's, ``ecogen.proxies`` entry points', and those registered by imported
#: code (:func:`register`).
PROXIES: Registry[ProxyInfo] = Registry("proxy", ENTRY_POINT_GROUP, _load)
for _name, _function in phx.BUILTIN.items():
    PROXIES.add(_name, ProxyInfo(_name, _function, BUILTIN_PROVIDER))


def register(name: str, function: phx.Proxy) -> None:
    """Register ``function`` as proxy ``name`` at run time (a user's script); PluginError when
    it is not a proxy or the name is taken."""
    provider = function.__module__.split(".")[0] if hasattr(function, "__module__") else "?"
    _, info = _load(name, function, provider)
    PROXIES.add(name, info, same=lambda a, b: a.function is b.function)


def registered(reload: bool = False) -> dict[str, ProxyInfo]:
    """Every usable proxy by name: built-ins, then plugins (scanned once; ``reload`` scans
    again), then those registered at run time."""
    return PROXIES.registered(reload)


def refused(reload: bool = False) -> dict[str, str]:
    """Proxy plugins that were refused, by entry-point name, with the reason."""
    return PROXIES.refused(reload)


def names() -> list[str]:
    """Names of every usable proxy."""
    return list(registered())


def get(name: str) -> ProxyInfo:
    """The proxy registered as ``name``; PluginError with its reason for a refused plugin."""
    try:
        return PROXIES.get(name)
    except KeyError:
        raise KeyError(f"no proxy named {name!r} (proxies: {', '.join(registered())})") from None


def pool_size(children: int, keep: float) -> int:
    """Candidates to make so that ``children`` of them are a ``keep`` share: rounded up."""
    # Rounded first: 12 / 0.3 is 40.000000000000007 in floating point.
    return max(children, math.ceil(round(children / keep, 9)))


def screen(
    candidates: Sequence[ops.Individual],
    count: int,
    proxy: str,
    data: Any,
    batch_size: int,
    seed: int,
) -> tuple[list[ops.Individual], list[dict[str, Any]]]:
    """The ``count`` candidates that ``proxy`` scores highest (equal scores: the earlier
    first; failures last, in candidate order), kept in candidate order, and one record per
    candidate: ``id``, ``genome_hash``, ``score`` (None for a failure, with ``failure``),
    ``rank`` (0: the best) and ``kept``. Every candidate is scored on the same minibatch of
    ``batch_size`` images of ``data``'s training split, drawn with ``seed`` (the run's), its
    genome compiled with its training seed. A child whose mutation failed is not scored (its
    genome is its parent's): a failure."""
    function = get(proxy).function
    x, y = phx.minibatch(data, batch_size, seed)
    scores = []
    for ind in candidates:
        failed = getattr(ind, "mutation_failure", None)
        if failed is not None:
            scores.append(phx.ProxyScore(proxy, None, f"mutation failed: {failed.reason}"))
        else:
            child_seed = rngs.seed_for(seed, ind.id)
            scores.append(phx.score(ind.genome, function, x, y, seed=child_seed, name=proxy))
    order = sorted(
        range(len(candidates)), key=lambda i: (not scores[i].ok, -(scores[i].value or 0.0))
    )
    rank = {i: r for r, i in enumerate(order)}
    records = []
    for i, (ind, s) in enumerate(zip(candidates, scores, strict=True)):
        record = {"id": ind.id, "genome_hash": canonical_hash(ind.genome), "score": s.value}
        if not s.ok:
            record["failure"] = s.failure
        records.append({**record, "rank": rank[i], "kept": rank[i] < count})
    kept = [ind for i, ind in enumerate(candidates) if rank[i] < count]
    return kept, records
