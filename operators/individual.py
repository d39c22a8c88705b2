"""The individual DEAP's tools work on: a genome, a fitness and its lineage.

Both classes are defined at module level (not made with ``deap.creator`` at run time) so that
individuals pickle into process pools and into checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from deap import base

from genomics import Genome


class Fitness(base.Fitness):
    """DEAP fitness whose weights are set per instance (default: maximise one value).

    DEAP's own pattern sets ``weights`` on a class made by ``creator``; here the weights travel
    with each instance, so one class serves single- and multi-objective runs.
    """

    weights = (1.0,)

    def __init__(self, values: Sequence[float] = (), weights: Sequence[float] | None = None):
        if weights is not None:
            self.weights = tuple(float(w) for w in weights)
        super().__init__(values)

    def __deepcopy__(self, memo: dict) -> Fitness:
        copy = Fitness.__new__(Fitness)
        copy.weights = self.weights
        copy.wvalues = self.wvalues
        return copy


class Individual:
    """A genome with a DEAP fitness and its lineage.

    ``operators`` lists the mutations applied to make this individual from its ``parents``.
    Mutations replace ``genome`` (genomes are immutable) and append their name to ``operators``.
    """

    def __init__(
        self,
        genome: Genome,
        *,
        weights: Sequence[float] = (1.0,),
        id: str | None = None,
        parents: Iterable[str] = (),
        operators: Iterable[str] = (),
        generation: int = 0,
        phase: str = "",
    ) -> None:
        self.genome = genome
        self.fitness = Fitness(weights=weights)
        self.id = id
        self.parents = list(parents)
        self.operators = list(operators)
        self.generation = generation
        self.phase = phase

    def __deepcopy__(self, memo: dict) -> Individual:
        # The genome is immutable, so a clone shares it; everything mutable is copied.
        copy = Individual.__new__(Individual)
        copy.__dict__.update(self.__dict__)
        copy.fitness = self.fitness.__deepcopy__(memo)
        copy.parents = list(self.parents)
        copy.operators = list(self.operators)
        return copy

    def __repr__(self) -> str:
        values = self.fitness.values if self.fitness.valid else "unevaluated"
        return f"Individual(id={self.id!r}, nodes={len(self.genome)}, fitness={values})"


def same_genome(a: Individual, b: Individual) -> bool:
    """Structural equality, for ``deap.tools.HallOfFame(similar=same_genome)``."""
    from genomics import canonical_hash

    return a.genome is b.genome or canonical_hash(a.genome) == canonical_hash(b.genome)
