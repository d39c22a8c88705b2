"""The genome: an input shape, a class count and a topologically ordered graph of genes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property

import attrs
from attrs import field, frozen

from .errors import GenomeError
from .genes import Gene

#: Version written by this ecogen; :mod:`genomics.codec` also reads the versions before it.
SCHEMA_VERSION = 3
_ID = re.compile(r"[a-z_][a-z0-9_]*")
#: The number an id carries: the digits after its leading letters (7 in conv7, 3 in sep3_reduce).
_NUMBERED = re.compile(r"[a-z_]+(\d+)")


def _id_check(inst: object, attribute: attrs.Attribute, value: str) -> None:
    # Ids become module and variable names in the generated PyTorch code. A full match: re.match
    # with "$" would let a final newline through.
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise GenomeError(f"id: must be a lower-case identifier ([a-z_][a-z0-9_]*), got {value!r}")


def _inputs_check(inst: object, attribute: attrs.Attribute, value: tuple) -> None:
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise GenomeError(f"inputs[{i}]: must be a node id, got {item!r}")


@frozen
class Node:
    """One layer of the graph: an id, what it computes, and the ids it reads (in order)."""

    id: str = field(validator=_id_check)
    gene: Gene
    inputs: tuple[str, ...] = field(default=(), converter=tuple, validator=_inputs_check)


def _shape_check(inst: object, attribute: attrs.Attribute, value: tuple) -> None:
    if len(value) != 3 or not all(type(v) is int and v >= 1 for v in value):
        raise GenomeError(f"input_shape: must be three positive integers (C, H, W), got {value!r}")


def _classes_check(inst: object, attribute: attrs.Attribute, value: int) -> None:
    if type(value) is not int or value < 2:
        raise GenomeError(f"num_classes: must be an integer >= 2, got {value!r}")


def _counter_check(inst: object, attribute: attrs.Attribute, value: int) -> None:
    if type(value) is not int or value < 0:
        raise GenomeError(f"id_counter: must be an integer >= 0, got {value!r}")


def id_number(node_id: str) -> int:
    """The number ``node_id`` carries after its leading letters (7 for ``conv7``, 3 for
    ``sep3_reduce``); 0 when it carries none."""
    m = _NUMBERED.match(node_id) if isinstance(node_id, str) else None
    return int(m.group(1)) if m else 0


@frozen
class Genome:
    """An architecture. Construction checks field types only; :func:`genomics.validate` checks
    the graph (every loaded document is validated).

    ``id_counter`` is the highest number (:func:`id_number`) a node id of this genome or of an
    ancestor has carried: at least that of every id it has (construction raises it to that),
    and kept by ``attrs.evolve`` when a layer is removed. Operators number the ids they add
    above it, so no id names two different layers of one lineage: weight inheritance and
    crossover pair layers by id. It is history, not architecture: equality and hashing leave it
    out (the JSON document keeps it)."""

    input_shape: tuple[int, int, int] = field(converter=tuple, validator=_shape_check)
    num_classes: int = field(validator=_classes_check)
    nodes: tuple[Node, ...] = field(converter=tuple)
    schema_version: int = SCHEMA_VERSION
    id_counter: int = field(default=0, kw_only=True, eq=False, validator=_counter_check)

    def __attrs_post_init__(self) -> None:
        shown = max((id_number(getattr(n, "id", None)) for n in self.nodes), default=0)
        if shown > self.id_counter:
            object.__setattr__(self, "id_counter", shown)  # frozen: set once, here

    def fresh_id(self, prefix: str) -> str:
        """``prefix`` (lower-case letters and underscores) numbered above ``id_counter``: an
        id no node of this genome's lineage has had."""
        if not re.fullmatch(r"[a-z_]+", prefix):
            raise ValueError(f"prefix: must be lower-case letters and underscores, got {prefix!r}")
        return f"{prefix}{self.id_counter + 1}"

    def node(self, node_id: str) -> Node:
        """The node with this id (``KeyError`` when there is none)."""
        return self._index[node_id]

    @cached_property
    def _index(self) -> dict[str, Node]:
        return {n.id: n for n in self.nodes}

    def consumers(self, node_id: str) -> list[str]:
        """Ids of the nodes that read ``node_id``."""
        return [n.id for n in self.nodes if node_id in n.inputs]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)
