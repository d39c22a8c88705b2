"""EIGEN's ecologically-inspired strategies: rapid succession, accelerated extinction, gene
duplication and mimicry."""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

import attrs

import operators as ops
from genomics import canonical_hash

from .base import (
    Strategy,
    StrategyError,
    accuracy_at,
    at_least,
    best_first,
    one_of,
    pair,
    to_pair,
)
from .spec import Context, Distill, GenerationPlan, Proposal, Stop, hookimpl

PRIMARY, SECONDARY = "primary", "secondary"


@attrs.define
class Succession(Strategy):
    """Rapid succession: a primary phase (large population, several mutations per child, short
    training) evolves a diverse community fast; a secondary phase seeded by its best (smaller
    population, one mutation per child, longer training) refines it. The switch comes after
    ``switch_generation`` generations (0: half the run's generation limit) or after
    ``stagnation`` generations without a better individual, whichever is first. Sizes of 0 are
    derived from the experiment (its population and epochs)."""

    name = "succession"
    primary_population: int = attrs.field(default=0, validator=at_least(0))
    primary_mutations: tuple[int, int] = attrs.field(
        default=(1, 3), converter=to_pair, validator=pair
    )
    #: 0: half the experiment's epochs.
    primary_epochs: int = attrs.field(default=0, validator=at_least(0))
    #: 0: half the primary population (at least 2).
    secondary_population: int = attrs.field(default=0, validator=at_least(0))
    secondary_mutations: tuple[int, int] = attrs.field(
        default=(1, 1), converter=to_pair, validator=pair
    )
    #: 0: the experiment's epochs.
    secondary_epochs: int = attrs.field(default=0, validator=at_least(0))
    switch_generation: int = attrs.field(default=0, validator=at_least(0))
    stagnation: int = attrs.field(default=3, validator=at_least(1))
    #: Improvement of the best validation accuracy that resets the stagnation count.
    min_delta: float = attrs.field(default=0.0, validator=at_least(0.0, float))
    phase: str = attrs.field(default="", init=False)
    best_seen: float = attrs.field(default=-1.0, init=False)
    stale: int = attrs.field(default=0, init=False)
    state_fields = ("phase", "best_seen", "stale")
    phases = (PRIMARY, SECONDARY)

    @hookimpl
    def ecogen_plan(self, plan: GenerationPlan) -> None:
        primary = self.primary_population or plan.population
        if self.phase == SECONDARY:
            plan.population = self.secondary_population or max(2, primary // 2)
            plan.mutations = self.secondary_mutations
            plan.epochs = self.secondary_epochs or plan.epochs
        else:
            plan.population = plan.initial = primary
            plan.mutations = self.primary_mutations
            plan.epochs = self.primary_epochs or max(1, plan.epochs // 2)
        plan.children = plan.population

    @hookimpl
    def ecogen_generation_end(self, population: list) -> None:
        best = max((ind.fitness.values[0] for ind in population), default=-1.0)
        if best > self.best_seen + self.min_delta:
            self.best_seen, self.stale = best, 0
        else:
            self.stale += 1

    @hookimpl
    def ecogen_next_phase(self, context: Context) -> str | None:
        if not self.phase:
            self.phase = PRIMARY
            return self.phase
        if self.phase == PRIMARY:
            switch = self.switch_generation or context.generations // 2
            by_count = bool(switch) and context.generation + 1 >= switch
            if by_count or self.stale >= self.stagnation:
                reason = (
                    f"generation {context.generation + 1}"
                    if by_count
                    else f"{self.stale} generations without improvement"
                )
                self.record(context, "phase", before=PRIMARY, after=SECONDARY, reason=reason)
                self.phase, self.stale = SECONDARY, 0
        return self.phase


THRESHOLDS = ("mean", "quantile", "kth")


def _landmarks(inst: Extinction, attribute: attrs.Attribute, value: tuple) -> None:
    ok = bool(value) and all(
        (isinstance(v, float) and 0 < v < 1) or (isinstance(v, int) and v >= 1) for v in value
    )
    if not ok:
        raise StrategyError(
            "strategies.extinction.landmarks: must be fractions of the training (floats in"
            f" (0, 1)) or epoch numbers (integers >= 1), got {list(value)!r}"
        )


@attrs.define
class Extinction(Strategy):
    """Accelerated extinction: at landmark epochs T1 < T2 of each candidate's training, a
    candidate whose validation accuracy is below the threshold S_i set by the previous
    generation stops training at once and is recorded as extinct at that landmark.

    S_i is the ``threshold`` statistic (``mean``, ``quantile`` at ``quantile``, or ``kth``
    best) of the accuracies the previous generation's candidates had at T_i. Thresholds belong to
    a training length: when the number of epochs changes (a new succession phase) they are
    learnt again. Under rungs (``plan.rungs``) it stops nothing and learns nothing: the rungs
    prune."""

    name = "extinction"
    #: Floats in (0, 1): fractions of the candidate's epochs; integers: epoch numbers.
    landmarks: tuple[float | int, ...] = attrs.field(
        default=(0.25, 0.5), converter=tuple, validator=_landmarks
    )
    threshold: str = attrs.field(default="mean", validator=one_of(THRESHOLDS))
    quantile: float = attrs.field(default=0.5, validator=at_least(0.0, float))
    k: int = attrs.field(default=3, validator=at_least(1))
    #: Accuracies needed at a landmark before its threshold is set.
    min_samples: int = attrs.field(default=2, validator=at_least(1))
    #: [planned epochs, landmark epoch, threshold] rows.
    thresholds: list[list] = attrs.field(factory=list, init=False)
    state_fields = ("thresholds",)

    def __attrs_post_init__(self) -> None:
        if self.quantile > 1:
            raise StrategyError(
                f"strategies.extinction.quantile: must be <= 1, got {self.quantile}"
            )

    def landmark_epochs(self, epochs: int) -> list[int]:
        """The landmark epochs of a training of ``epochs`` epochs (those before its end)."""
        found = {
            max(1, round(v * epochs)) if isinstance(v, float) else int(v) for v in self.landmarks
        }
        return sorted(e for e in found if e < epochs)

    def statistic(self, values: list[float]) -> float:
        ranked = sorted(values, reverse=True)
        if self.threshold == "mean":
            return statistics.fmean(values)
        if self.threshold == "kth":
            return ranked[min(self.k, len(ranked)) - 1]
        # Linear interpolation between order statistics (numpy's default quantile).
        ascending = ranked[::-1]
        pos = self.quantile * (len(ascending) - 1)
        low = math.floor(pos)
        high = min(low + 1, len(ascending) - 1)
        return ascending[low] + (ascending[high] - ascending[low]) * (pos - low)

    @hookimpl
    def ecogen_on_epoch(
        self, individual: Any, epoch: int, epochs: int, val_accuracy: float, context: Context
    ) -> Stop | None:
        if context.plan.rungs:
            # A rung's training is a part of a longer schedule: its epochs are not a training
            # length the thresholds belong to (a promotion adding as many epochs as an earlier
            # phase planned was judged by that phase's thresholds). The rungs do the pruning.
            return None
        landmarks = self.landmark_epochs(epochs)
        for planned, landmark, threshold in self.thresholds:
            if planned == epochs and landmark == epoch and val_accuracy < threshold:
                details = {
                    "landmark": landmarks.index(epoch) + 1 if epoch in landmarks else 0,
                    "landmark_epoch": epoch,
                    "threshold": threshold,
                }
                self.record(context, "extinct", individual.id, val_accuracy=val_accuracy, **details)
                return Stop(
                    f"extinct at landmark T{details['landmark']} (epoch {epoch}): validation"
                    f" accuracy {val_accuracy:.4f} < threshold {threshold:.4f}",
                    status="extinct",
                    details=details,
                )
        return None

    @hookimpl
    def ecogen_generation_end(self, evaluated: list, context: Context) -> None:
        if context.plan.rungs:
            return  # nothing to learn thresholds for: no training under rungs is judged
        fresh = [i for i in evaluated if not getattr(i, "reused", False) and i.evaluation]
        updated = {(p, e): s for p, e, s in self.thresholds}
        for planned in sorted({i.evaluation.get("planned_epochs") or 0 for i in fresh} - {0}):
            for landmark in self.landmark_epochs(planned):
                values = [
                    a
                    for i in fresh
                    if i.evaluation.get("planned_epochs") == planned
                    and (a := accuracy_at(i, landmark)) is not None
                ]
                if len(values) >= self.min_samples:
                    updated[(planned, landmark)] = self.statistic(values)
        rows = [[p, e, s] for (p, e), s in sorted(updated.items())]
        if rows != self.thresholds:
            self.record(context, "thresholds", thresholds=rows)
        self.thresholds = rows


@attrs.define
class Duplication(Strategy):
    """Gene duplication (EIGEN-D): cut the best genome into blocks of one feature-map size and
    propose ``candidates`` genomes that repeat blocks in different combinations (each block 1
    to ``max_repeat`` times). They take places among the generation's children."""

    name = "duplication"
    candidates: int = attrs.field(default=2, validator=at_least(1))
    max_repeat: int = attrs.field(default=3, validator=at_least(2))
    #: First generation that gets duplication candidates.
    start: int = attrs.field(default=1, validator=at_least(1))
    #: Propose every ``every`` generations.
    every: int = attrs.field(default=1, validator=at_least(1))
    #: Only in this phase of a succession ("": in any).
    phase: str = ""

    @hookimpl
    def ecogen_propose(self, population: list, context: Context) -> list[Proposal] | None:
        g = context.generation
        if g < self.start or (g - self.start) % self.every:
            return None
        if self.phase and context.phase != self.phase:
            return None
        source = context.best if context.best is not None else best_first(population)[0]
        rng = random.Random(random.getrandbits(64))  # from the run's stream (see spec)
        # Ask for more than needed: combinations evaluated in earlier generations are skipped.
        made = ops.duplication_candidates(
            source.genome, rng, 4 * self.candidates, self.max_repeat, context.mutation_config
        )
        made = [(g, r) for g, r in made if not context.seen(g)][: self.candidates]
        return [
            Proposal(
                genome,
                parents=(source.id,),
                operators=("gene_duplication",),
                source=self.name,
                note={"source": source.id, "repeats": list(repeats)},
                copies=ops.copied_nodes(
                    source.genome, repeats, bounds=context.mutation_config.bounds
                ),
            )
            for genome, repeats in made
        ]


@attrs.define
class Mimicry(Strategy):
    """Mimicry: candidates train with a distillation term toward the logits of the best
    network found so far (KL between temperature-softened outputs, scaled by T^2, weighted
    ``weight`` against cross-entropy). Every new candidate is weaker than the best until its
    evaluation says otherwise; the best itself is not distilled."""

    name = "mimicry"
    temperature: float = attrs.field(default=4.0, validator=at_least(0.01, float))
    weight: float = attrs.field(default=0.5, validator=at_least(0.0, float))
    start: int = attrs.field(default=1, validator=at_least(1))

    def __attrs_post_init__(self) -> None:
        if self.weight > 1:
            raise StrategyError(f"strategies.mimicry.weight: must be <= 1, got {self.weight}")

    @hookimpl
    def ecogen_training(self, individual: Any, context: Context) -> Distill | None:
        best = context.best
        if best is None or context.generation < self.start:
            return None
        if canonical_hash(individual.genome) == canonical_hash(best.genome):
            return None
        return Distill(best.id, self.temperature, self.weight)
