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
SCHEMA_VERSION = 2
_ID = re.compile(r"[a-z_][a-z0-9_]*")


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


@frozen
class Genome:
    """An architecture. Construction checks field types only; :func:`genomics.validate` checks
    the graph (every loaded document is validated)."""

    input_shape: tuple[int, int, int] = field(converter=tuple, validator=_shape_check)
    num_classes: int = field(validator=_classes_check)
    nodes: tuple[Node, ...] = field(converter=tuple)
    schema_version: int = SCHEMA_VERSION

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
