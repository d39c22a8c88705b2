"""JSON codec built on cattrs.

A document looks like::

    {"schema_version": 3, "input_shape": [1, 28, 28], "num_classes": 10, "id_counter": 2,
     "nodes": [{"id": "input", "type": "input"},
               {"id": "conv1", "type": "conv", "inputs": ["input"], "out_channels": 6, ...},
               ...]}

Each node is flat: ``id``, ``type`` (the gene tag), ``inputs`` and the gene's own fields.
Unknown types, unknown fields and other schema versions are refused with the place named.
Schema 1 documents (before binarization scales and evolutional dropout settings) still load: the
fields schema 2 added take their defaults, and a schema 1 document may not use them. Schema 3
added ``id_counter`` (``Genome.id_counter``); documents before it get the one their ids show.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, IterableValidationError, IterableValidationNote

from .errors import GenomeError
from .genes import GENE_TYPES
from .genome import SCHEMA_VERSION, Genome, Node
from .validation import DEFAULT_BOUNDS, Bounds, validate

_NODE_KEYS = ("id", "type", "inputs")
#: Gene fields each schema version added, by gene type.
_ADDED_IN = {2: {"conv": {"binary_scale", "binary_offset"}, "dropout": {"samples", "per_channel"}}}
#: Document fields each schema version added.
_DOCUMENT_ADDED_IN = {3: {"id_counter"}}
_DOCUMENT_KEYS = ("schema_version", "input_shape", "num_classes", "id_counter", "nodes")
READABLE_VERSIONS = (1, 2, SCHEMA_VERSION)


def _strict(kind: type, name: str):
    # cattrs' default hooks call int()/bool()/str() and would quietly accept "3" or "false".
    def hook(value: Any, _: type) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise GenomeError(f": must be {name}, got {value!r}")
        if kind is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, kind):
            raise GenomeError(f": must be {name}, got {value!r}")
        return value

    return hook


def _structure_node(doc: Any, _: type) -> Node:
    if not isinstance(doc, dict):
        raise GenomeError(f": a node must be an object, got {doc!r}")
    if "type" not in doc:
        raise GenomeError("type: required field missing")
    kind = doc["type"]
    cls = GENE_TYPES.get(kind)
    if cls is None:
        raise GenomeError(f"type: unknown gene type {kind!r} (known: {', '.join(GENE_TYPES)})")
    known = {a.name for a in attrs.fields(cls)}
    extra = sorted(set(doc) - known - set(_NODE_KEYS))
    if extra:
        fields = ", ".join(sorted(known)) or "none"
        raise GenomeError(f"{extra[0]}: unknown field for type {kind!r} (its fields: {fields})")
    if "id" not in doc:
        raise GenomeError("id: required field missing")
    gene = _converter.structure({k: v for k, v in doc.items() if k in known}, cls)
    inputs = doc.get("inputs", [])
    if not isinstance(inputs, list):
        raise GenomeError(f"inputs: must be a list of node ids, got {inputs!r}")
    return Node(id=doc["id"], gene=gene, inputs=tuple(inputs))


def _unstructure_node(node: Node) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": node.id, "type": node.gene.TYPE}
    if node.inputs:
        doc["inputs"] = list(node.inputs)
    doc.update(_converter.unstructure(node.gene))
    return doc


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    for kind, name in (
        (int, "an integer"),
        (float, "a number"),
        (bool, "true or false"),
        (str, "a string"),
    ):
        conv.register_structure_hook(kind, _strict(kind, name))
    conv.register_structure_hook(Node, _structure_node)
    conv.register_unstructure_hook(Node, _unstructure_node)
    return conv


_converter = _make_converter()


def _problems(exc: BaseException, path: str) -> list[str]:
    """Flatten cattrs' exception tree into ``path: message`` lines."""
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        out: list[str] = []
        for sub, note in with_notes:
            if isinstance(note, IterableValidationNote):
                out += _problems(sub, f"{path}[{note.index}]")
            else:
                out += _problems(sub, f"{path}.{note.name}" if path else note.name)
        for sub in without:
            out += _problems(sub, path)
        return out
    if isinstance(exc, GenomeError):
        return exc.prefixed(path).problems
    if isinstance(exc, KeyError):
        return [f"{path}: required field missing"]
    return [f"{path}: {exc}"]


def _refuse_newer_fields(doc: dict, nodes: list, version: int) -> None:
    for newer, added in _DOCUMENT_ADDED_IN.items():
        if version < newer and (late := sorted(added & set(doc))):
            raise GenomeError(f"{late[0]}: a schema {newer} field in a schema {version} document")
    for newer, added in _ADDED_IN.items():
        if version >= newer:
            continue
        for i, node in enumerate(nodes):
            if isinstance(node, dict) and (
                late := sorted(added.get(node.get("type"), set()) & set(node))
            ):
                raise GenomeError(
                    f"nodes[{i}].{late[0]}: a schema {newer} field in a schema {version} document"
                )


def to_dict(genome: Genome) -> dict[str, Any]:
    """The JSON-ready document of ``genome``."""
    doc: dict[str, Any] = {
        "schema_version": genome.schema_version,
        "input_shape": list(genome.input_shape),
        "num_classes": genome.num_classes,
    }
    if genome.schema_version >= 3:
        doc["id_counter"] = genome.id_counter
    doc["nodes"] = [_unstructure_node(n) for n in genome.nodes]
    return doc


def from_dict(doc: Any, bounds: Bounds = DEFAULT_BOUNDS, *, check: bool = True) -> Genome:
    """Build a Genome from a document; with ``check``, also validate the graph."""
    if not isinstance(doc, dict):
        raise GenomeError(f"document: must be a JSON object, got {type(doc).__name__}")
    version = doc.get("schema_version")
    if version is None:
        raise GenomeError("schema_version: required field missing")
    if type(version) is not int or version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise GenomeError(
            f"schema_version: unsupported version {version!r} (this ecogen reads {readable})"
        )
    extra = sorted(set(doc) - set(_DOCUMENT_KEYS))
    if extra:
        raise GenomeError(f"{extra[0]}: unknown field of a genome document")
    for key in ("input_shape", "num_classes", "nodes"):
        if key not in doc:
            raise GenomeError(f"{key}: required field missing")
    if not isinstance(doc["nodes"], list):
        raise GenomeError("nodes: must be a list")
    if not isinstance(doc["input_shape"], list) or len(doc["input_shape"]) != 3:
        raise GenomeError(f"input_shape: must be [C, H, W], got {doc['input_shape']!r}")
    _refuse_newer_fields(doc, doc["nodes"], version)
    try:
        nodes = _converter.structure(doc["nodes"], list[Node])
        genome = Genome(
            input_shape=tuple(doc["input_shape"]),
            num_classes=doc["num_classes"],
            nodes=nodes,
            id_counter=doc.get("id_counter", 0),
        )
    except (ClassValidationError, IterableValidationError) as exc:
        raise GenomeError(_problems(exc, "nodes")) from exc
    return validate(genome, bounds) if check else genome


def dumps(genome: Genome, *, compact: bool = False) -> str:
    """Serialize ``genome`` to JSON, one node per line (``compact``: one line); exact round trip."""
    doc = to_dict(genome)
    if compact:
        return json.dumps(doc, separators=(",", ":"))
    nodes = ",\n".join("    " + json.dumps(n) for n in doc.pop("nodes"))
    head = "".join(f"  {json.dumps(k)}: {json.dumps(v)},\n" for k, v in doc.items())
    return "{\n" + head + '  "nodes": [\n' + nodes + "\n  ]\n}\n"


def loads(text: str | bytes, bounds: Bounds = DEFAULT_BOUNDS) -> Genome:
    """Parse and validate a genome JSON document."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenomeError(f"document: not valid JSON ({exc})") from exc
    except RecursionError:
        raise GenomeError(
            "document: nested too deeply to read (arrays or objects in each other)"
        ) from None
    return from_dict(doc, bounds)
