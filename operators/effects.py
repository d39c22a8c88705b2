"""What an operator changes, checkably: an :class:`Effect` says how many layers of each kind a
mutation adds or removes, or which field of one layer it alters, and checks a result against
that."""

from __future__ import annotations

from collections import Counter
from typing import Any

from attrs import frozen

from genomics import Add, Concat, Conv, Dense, Dropout, Genome, Pool, classifier_node

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
