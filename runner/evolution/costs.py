"""The run's cost limits (``max_params``, ``max_flops``, ``max_latency_ms``), held for every
candidate before it trains, and latency measured on the run's device once per genome.

Parameters and FLOPs come from the genes (``genomics.parameter_counts``, ``flop_counts``: equal
to what torch counts), latency from a measurement: the compiled network's median time for one
image after warm-up (``phenotypes.latency_ms``). A measurement is kept by genome hash and device,
in memory and in the store (``latencies``), so the same genome is measured once and a resumed run
decides with the values the first session measured. The genomes of a generation are measured as
its evaluations begin (:meth:`Costs.measure_ahead`), before any of its trainings starts: a
measurement never competes with the run's own trainings for the machine, so one worker and
several measure under the same load. Latency still depends on the machine and on what else it
runs: a run that measures it is not bit-exact when resumed from the middle of a generation whose
candidates it had not measured yet, as a time budget is not.

A candidate over a limit is refused before it trains: its evaluation is a failed one whose
reason names the limit (``over max_flops: 12,345,678 > 1,000,000``), with ``metrics.stage =
"limits"``; it takes no part in the generation's decisions (it is never a parent), does not
count as an evaluation and does not add to the failures in a row. A latency measurement that
raises (running out of memory, say) fails its candidate the same way, the reason being
``latency: `` and the error.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import attrs

from genomics import (
    Genome,
    GenomeError,
    canonical_hash,
    flop_counts,
    infer_shapes,
    parameter_counts,
)

from ..failures import failed_evaluation
from ..records import Evaluation, Status

#: ``metrics.stage`` of a candidate refused for a limit.
STAGE = "limits"


def measure_latency(genome: Genome, device: str) -> float:
    """Median milliseconds of one inference forward pass of ``genome`` on one image on
    ``device``, after warm-up (weights as seeded compilation makes them: latency does not
    depend on their values)."""
    import phenotypes as ph

    model = ph.compile_genome(genome, seed=0).to(device)
    try:
        return float(ph.latency_ms(model, tuple(genome.input_shape)))
    finally:
        del model


class Costs:
    """One run's limits and its latency measurements (``store``: where they are kept; None
    before the run has a store). ``latency``: whether the run needs every candidate's latency
    (a ``latency_ms`` objective, a strategy that reads it); ``max_latency_ms`` needs it too."""

    def __init__(
        self, experiment: Any, device: str, store: Any = None, latency: bool = False
    ) -> None:
        self.max_params = experiment.max_params or None
        self.max_flops = experiment.max_flops or None
        self.max_latency_ms = experiment.max_latency_ms or None
        self.device = device
        self.store = store
        self.measures_latency = bool(latency or self.max_latency_ms)
        self.latencies: dict[str, float] = store.latencies(device) if store is not None else {}
        #: Measured in this session (``session.start`` stores those of its checks).
        self.measured: dict[str, float] = {}
        #: Measurements that raised in this session, by genome hash: raised again, not redone
        #: (under another load it might not raise, and the candidate's fate would change).
        self.errors: dict[str, Exception] = {}

    def latency_ms(self, genome: Genome, genome_hash: str | None = None) -> float:
        """``genome``'s latency on the run's device: measured the first time, then as kept."""
        key = genome_hash or canonical_hash(genome)
        if key in self.errors:
            raise self.errors[key]
        if key not in self.latencies:
            try:
                value = measure_latency(genome, self.device)
            except Exception as exc:
                self.errors[key] = exc
                raise
            self.latencies[key] = self.measured[key] = value
            if self.store is not None:
                self.store.add_latency(key, self.device, value)
        return self.latencies[key]

    def over(self, genome: Genome, genome_hash: str | None = None) -> tuple[str, str] | None:
        """``(limit, reason)`` for the first limit ``genome`` is over, or None. Latency, the
        only one that costs a measurement, is measured last."""
        shapes = infer_shapes(genome)
        if self.max_params is not None:
            params = sum(parameter_counts(genome, shapes).values())
            if params > self.max_params:
                return "max_params", f"over max_params: {params:,} > {self.max_params:,}"
        if self.max_flops is not None:
            flops = sum(flop_counts(genome, shapes).values())
            if flops > self.max_flops:
                return "max_flops", f"over max_flops: {flops:,} > {self.max_flops:,}"
        if self.max_latency_ms is not None:
            latency = self.latency_ms(genome, genome_hash)
            if latency > self.max_latency_ms:
                return (
                    "max_latency_ms",
                    f"over max_latency_ms: {latency:.4g} ms > {self.max_latency_ms:g} ms"
                    f" on {self.device}",
                )
        return None

    def refusal(self, genome: Genome, genome_hash: str | None = None) -> Evaluation | None:
        """The failed evaluation of a candidate over a limit (never trained), or None; a
        candidate within them has its latency measured here when the run needs it."""
        start = time.perf_counter()
        try:
            found = self.over(genome, genome_hash)
            if found is None and self.measures_latency:
                self.latency_ms(genome, genome_hash)
        except GenomeError:
            return None  # an invalid genome fails where it is built, as it always did
        except Exception as exc:  # a measurement that fails (out of memory, say) fails the child
            return failed_evaluation(
                exc, start, metrics={"stage": STAGE, "limit": "max_latency_ms"}, prefix="latency: "
            )
        if found is None:
            return None
        limit, reason = found
        shapes = infer_shapes(genome)
        return Evaluation(
            status=Status.FAILED,
            reason=reason,
            fitness=(0.0,),
            params=sum(parameter_counts(genome, shapes).values()),
            flops=sum(flop_counts(genome, shapes).values()),
            latency_ms=self.known(genome_hash or canonical_hash(genome)),
            seconds=time.perf_counter() - start,
            metrics={"stage": STAGE, "limit": limit, "transient": False},
        )

    def measure_ahead(self, genomes: Iterable[tuple[Genome, str]]) -> None:
        """Measure now each ``(genome, hash)`` whose latency the run needs and does not have
        (as :meth:`refusal` would, which then finds it kept): called as a generation's
        evaluations begin, while none of the run's trainings is under way."""
        if self.measures_latency:
            for genome, genome_hash in genomes:
                self.refusal(genome, genome_hash)

    def known(self, genome_hash: str) -> float | None:
        """The latency kept for this genome hash, if any."""
        return self.latencies.get(genome_hash)

    def annotate(self, evaluation: Evaluation, genome_hash: str) -> Evaluation:
        """``evaluation`` with the candidate's latency, when the run measured it."""
        latency = self.known(genome_hash)
        if evaluation.latency_ms is not None or latency is None:
            return evaluation
        return attrs.evolve(evaluation, latency_ms=latency)

    def keep(self, store: Any, measured: Iterable[tuple[str, float]]) -> None:
        """Store measurements made before the run had a store (the first population's
        checks)."""
        for key, value in measured:
            store.add_latency(key, self.device, value)


def refused_by_limits(evaluation: Any) -> bool:
    """Whether this evaluation is a candidate's refusal for a limit (never trained)."""
    return evaluation is not None and evaluation.metrics.get("stage") == STAGE
