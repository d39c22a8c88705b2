import json
import random
import subprocess
import sys

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import genomics as G
from genomics import validators as V
from genomics.testing import genomes, invalid_documents


def relabel(genome: G.Genome, prefix: str) -> G.Genome:
    """The same genome with every node id changed."""
    new = {n.id: f"{prefix}{i}" for i, n in enumerate(genome.nodes)}
    nodes = [attrs.evolve(n, id=new[n.id], inputs=tuple(new[i] for i in n.inputs)) for n in genome]
    return attrs.evolve(genome, nodes=tuple(nodes))


def reorder(genome: G.Genome, rng: random.Random) -> G.Genome:
    """Another topological order of the same graph (random among the ready nodes)."""
    remaining = list(genome.nodes[1:-1])
    done = {genome.nodes[0].id}
    order = [genome.nodes[0]]
    while remaining:
        ready = [n for n in remaining if all(i in done for i in n.inputs)]
        pick = rng.choice(ready)
        remaining.remove(pick)
        done.add(pick.id)
        order.append(pick)
    return attrs.evolve(genome, nodes=(*order, genome.nodes[-1]))


@given(genomes())
def test_json_round_trip_is_exact(genome):
    text = G.dumps(genome)
    assert G.loads(text) == genome
    assert G.dumps(G.loads(text)) == text
    assert G.loads(G.dumps(genome, compact=True)) == genome


@given(genomes(), st.randoms(use_true_random=False))
def test_hash_ignores_ids_and_node_order(genome, rng):
    h = G.canonical_hash(genome)
    assert h == G.canonical_hash(G.loads(G.dumps(genome)))
    assert h == G.canonical_hash(relabel(genome, "n"))
    assert h == G.canonical_hash(reorder(genome, rng))


@given(genomes())
def test_hash_changes_with_structure(genome):
    conv = next(i for i, n in enumerate(genome.nodes) if isinstance(n.gene, G.Conv))
    node = genome.nodes[conv]
    wider = attrs.evolve(
        node, gene=attrs.evolve(node.gene, out_channels=node.gene.out_channels + 1)
    )
    nodes = list(genome.nodes)
    nodes[conv] = wider
    changed = attrs.evolve(genome, nodes=tuple(nodes))
    G.validate(changed)
    assert G.canonical_hash(changed) != G.canonical_hash(genome)


def test_hash_tells_a_shared_layer_from_twin_layers():
    def doc(twins: bool) -> G.Genome:
        nodes = [G.Node("input", G.Input()), G.Node("a", G.Conv(4), ("input",))]
        if twins:
            nodes.append(G.Node("b", G.Conv(4), ("input",)))
            nodes.append(G.Node("c", G.Conv(4), ("a",)))
            nodes.append(G.Node("d", G.Conv(4), ("b",)))
        else:
            nodes.append(G.Node("c", G.Conv(4), ("a",)))
            nodes.append(G.Node("d", G.Conv(4), ("a",)))
        nodes += [
            G.Node("j", G.Add(), ("c", "d")),
            G.Node("p", G.Pool(global_pool=True), ("j",)),
            G.Node("fc", G.Dense(3, activation="none"), ("p",)),
            G.Node("output", G.Output(), ("fc",)),
        ]
        return G.validate(G.Genome((1, 6, 6), 3, nodes))

    assert G.canonical_hash(doc(True)) != G.canonical_hash(doc(False))


@given(invalid_documents())
def test_invalid_documents_are_refused_with_their_location(case):
    doc, location = case
    with pytest.raises(G.GenomeError) as info:
        G.from_dict(doc)
    assert str(info.value).startswith(location), (str(info.value), location)


@given(genomes())
def test_shapes_and_parameter_counts_cover_every_node(genome):
    shapes = G.infer_shapes(genome)
    assert set(shapes) == {n.id for n in genome}
    assert shapes[genome.nodes[-1].id] == (genome.num_classes,)
    assert all(min(s) >= 1 for s in shapes.values())
    counts = G.parameter_counts(genome, shapes)
    assert sum(counts.values()) > 0


def minimal_doc() -> dict:
    return G.to_dict(G.minimal((1, 8, 8), 10))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["nodes"][1].update(kernel=4), "nodes[1].kernel: must be odd, got 4"),
        (lambda d: d.update(schema_version=7), "schema_version: unsupported version 7"),
        (lambda d: d.pop("schema_version"), "schema_version: required field missing"),
        (lambda d: d.update(colour=1), "colour: unknown field of a genome document"),
        (
            lambda d: d["nodes"][1].update(inputs=["pool1"]),
            "nodes[1].inputs[0]: 'pool1' comes later",
        ),
        (lambda d: d["nodes"][3].update(units=11), "nodes[4]: input has 11 features"),
        (
            lambda d: d["nodes"].insert(2, {"id": "x", "type": "dropout", "inputs": ["conv1"]}),
            "nodes[2]: 'x' does not lead to the output",
        ),
        (lambda d: d["nodes"][2].update(id="conv1"), "nodes[2].id: duplicate id 'conv1'"),
        (
            lambda d: d["nodes"][1].update(out_channels=9000),
            "nodes[1].out_channels: must be <= 4096",
        ),
        (
            lambda d: d["nodes"][1].update(stride=9, padding=0, kernel=1),
            "nodes[1].stride: must be <= 4",
        ),
        (lambda d: d["nodes"][1].update(kernel=11, padding=0), "nodes[1]: output would be -2x-2"),
        (lambda d: d["nodes"][1].update(binarized=True, kernel=1, padding=0), "nodes[1].binarized"),
        (lambda d: d["nodes"][1].update(groups=3), "nodes[1].groups: must divide out_channels"),
        (lambda d: d["nodes"].pop(), "nodes[3]: the last node must be the output"),
        (
            lambda d: d["nodes"][1].update(type="add"),
            "nodes[1].batch_norm: unknown field for type 'add'",
        ),
        (
            lambda d: d["nodes"].__setitem__(
                2, {"id": "pool1", "type": "dropout", "inputs": ["conv1"], "rate": 1.5}
            ),
            "nodes[2].rate: must be in [0, 1), got 1.5",
        ),
        (lambda d: d.update(input_shape=[1, 8]), "input_shape: must be [C, H, W]"),
        (lambda d: d.update(num_classes=1), "num_classes: must be an integer >= 2"),
    ],
)
def test_error_messages_name_the_place(change, message):
    doc = minimal_doc()
    change(doc)
    with pytest.raises(G.GenomeError) as info:
        G.from_dict(doc)
    assert message in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"schema_version": 2, "nodes": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
)
def test_deeply_nested_documents_are_refused_in_one_line(text):
    with pytest.raises(G.GenomeError, match="nested too deeply") as info:
        G.loads(text)
    assert str(info.value).startswith("document: ") and "\n" not in str(info.value)


def test_every_problem_is_listed():
    doc = minimal_doc()
    doc["nodes"][1]["inputs"] = ["nope"]
    doc["nodes"][3]["inputs"] = ["nowhere"]
    with pytest.raises(G.GenomeError) as info:
        G.from_dict(doc)
    assert len(info.value.problems) == 2


def test_joins_of_maps_and_vectors_are_refused():
    nodes = [
        G.Node("input", G.Input()),
        G.Node("c", G.Conv(4), ("input",)),
        G.Node("fc", G.Dense(5), ("c",)),
        G.Node("j", G.Concat(), ("fc", "c")),
        G.Node("out", G.Dense(3, activation="none"), ("j",)),
        G.Node("output", G.Output(), ("out",)),
    ]
    with pytest.raises(G.GenomeError, match=r"nodes\[3\]: cannot join feature maps"):
        G.validate(G.Genome((1, 4, 4), 3, nodes))


def test_join_rule_shapes():
    nodes = [
        G.Node("input", G.Input()),
        G.Node("a", G.Conv(8, stride=2), ("input",)),
        G.Node("b", G.Conv(16), ("input",)),
        G.Node("sum", G.Add(), ("a", "b")),
        G.Node("cat", G.Concat(), ("sum", "b")),
        G.Node("p", G.Pool(global_pool=True), ("cat",)),
        G.Node("fc", G.Dense(2, activation="none"), ("p",)),
        G.Node("output", G.Output(), ("fc",)),
    ]
    shapes = G.infer_shapes(G.Genome((3, 9, 9), 2, nodes))
    assert shapes["sum"] == (8, 5, 5)  # the primary input decides
    assert shapes["cat"] == (24, 5, 5)


def test_bounds_are_configurable():
    genome = G.minimal((1, 8, 8), 10)
    with pytest.raises(G.GenomeError, match="params: at most 100"):
        G.validate(genome, G.Bounds(max_params=100))
    flops = sum(G.flop_counts(genome).values())
    assert flops == 2 * 8 * 9 * 64 + 2 * 8 * 10  # the 3x3 convolution, then the classifier
    G.validate(genome, G.Bounds(max_flops=flops))
    with pytest.raises(G.GenomeError, match=f"flops: at most {flops - 1:,}, got {flops:,}"):
        G.validate(genome, G.Bounds(max_flops=flops - 1))
    with pytest.raises(G.GenomeError, match=r"out_channels: must be <= 4"):
        G.loads(G.dumps(genome), G.Bounds(max_channels=4))


@pytest.mark.parametrize(
    "bounds", [G.Bounds(max_channels=16, max_kernel=3), G.Bounds(max_flops=300_000)]
)
def test_random_genomes_respect_bounds(bounds):
    for seed in range(50):
        g = G.random_genome(random.Random(seed), (3, 16, 16), 5, bounds=bounds)
        G.validate(g, bounds)


def test_genes_are_immutable_and_padding_defaults_to_same():
    conv = G.Conv(8, kernel=5)
    assert conv.padding == 2
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        conv.kernel = 3  # type: ignore[misc]
    assert G.Dropout(0).rate == 0.0 and G.Dropout(0) == G.Dropout(0.0)


def test_retarget_changes_the_classifier_and_keeps_the_rest():
    genome = G.minimal((1, 28, 28), 10)
    moved = G.retarget(genome, (3, 32, 32), 100)
    assert moved.node("classifier").gene.units == 100
    assert moved.node("conv1") == genome.node("conv1")
    with pytest.raises(G.GenomeError, match="does not fit"):
        G.retarget(
            G.Genome(
                (1, 28, 28),
                10,
                [
                    G.Node("input", G.Input()),
                    G.Node("c", G.Conv(4, kernel=11, padding=0), ("input",)),
                    G.Node("fc", G.Dense(10, activation="none"), ("c",)),
                    G.Node("output", G.Output(), ("fc",)),
                ],
            ),
            (1, 8, 8),
            10,
        )


def test_documents_are_plain_json():
    doc = json.loads(G.dumps(G.minimal((1, 8, 8), 10)))
    assert doc["schema_version"] == G.SCHEMA_VERSION
    assert doc["nodes"][1] == {
        "id": "conv1",
        "type": "conv",
        "inputs": ["input"],
        "out_channels": 8,
        "kernel": 3,
        "stride": 1,
        "padding": 1,
        "groups": 1,
        "bias": False,
        "batch_norm": True,
        "activation": "relu",
        "binarized": False,
        "binary_scale": "filter",
        "binary_offset": 0.06,
    }


def test_the_id_counter_outlives_removed_layers_and_round_trips():
    """An id a lineage has used is never handed out again, through removals and JSON alike;
    documents from before schema 3 get the counter their ids show."""
    seed = G.minimal((1, 8, 8), 10)
    assert seed.id_counter == 1 and seed.fresh_id("conv") == "conv2"
    nodes = list(seed.nodes)
    grown = attrs.evolve(
        seed,
        nodes=(
            *nodes[:2],
            G.Node("sep7_reduce", G.Conv(8, kernel=1), ("conv1",)),
            attrs.evolve(nodes[2], inputs=("sep7_reduce",)),
            *nodes[3:],
        ),
    )
    assert grown.id_counter == 7
    shrunk = attrs.evolve(grown, nodes=seed.nodes)  # sep7_reduce removed again
    assert shrunk == seed  # the same architecture and ids: history is not compared
    assert shrunk.id_counter == 7 and shrunk.fresh_id("conv") == "conv8"
    doc = G.to_dict(shrunk)
    assert doc["id_counter"] == 7
    assert G.loads(G.dumps(shrunk)).id_counter == 7
    # Never below what the ids show, whatever a document says.
    assert G.from_dict({**G.to_dict(grown), "id_counter": 3}).id_counter == 7
    old = {k: v for k, v in G.to_dict(grown).items() if k != "id_counter"}
    assert G.from_dict({**old, "schema_version": 2}).id_counter == 7
    with pytest.raises(G.GenomeError, match="id_counter: a schema 3 field in a schema 2"):
        G.from_dict({**doc, "schema_version": 2})
    for bad in (-1, True, "7"):
        with pytest.raises(G.GenomeError, match="id_counter: must be an integer >= 0"):
            G.from_dict({**doc, "id_counter": bad})


@pytest.mark.parametrize("package", ["genomics", "operators", "strategies", "zoo"])
def test_light_packages_do_not_import_torch(package):
    code = f"import sys, {package}; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- shared validators --------------------------------------------------------------------


class Refused(Exception):
    pass


E = {"error": Refused}


def checked(validator, value):
    """Build a one-field attrs class validated by ``validator`` with ``value``."""
    Probe = attrs.make_class("Probe", {"field": attrs.field(validator=validator)})
    return Probe(value)


@pytest.mark.parametrize(
    ("validator", "value", "message"),
    [
        (V.at_least(1, **E), 0, "field: must be >= 1, got 0"),
        (V.at_least(1, kind=int, **E), True, "field: must be int >= 1, got True"),
        (
            V.at_least(0, kind=float, note=" (0: no limit)", **E),
            float("inf"),
            "field: must be a finite number >= 0 (0: no limit), got inf",
        ),
        (V.at_least(0, kind=float, **E), float("nan"), "field: must be a finite number >= 0"),
        (V.at_least(0, **E), float("nan"), "field: must be >= 0, got nan"),
        (V.above(0, kind=float, **E), 0.0, "field: must be a finite number > 0, got 0.0"),
        (V.instance_of(int, "an integer", **E), "3", "field: must be an integer, got '3'"),
        (V.instance_of(int, "an integer", **E), False, "field: must be an integer, got False"),
        (V.odd(**E), 4, "field: must be odd, got 4"),
        (V.one_of(("max", "avg"), **E), "median", "field: must be one of max, avg, got 'median'"),
        (V.subset(("a", "b"), **E), ("c",), "field: must be one or more of a, b, got ['c']"),
        (V.subset(("a", "b"), **E), (), "field: must be one or more of a, b, got []"),
        (V.each(V.odd(**E), **E), (1, 4), "field[1]: must be odd, got 4"),
        (V.each(V.odd(**E), **E), [], "field: must be a list of at least one value, got []"),
        (
            V.pair(**E),
            (3, 1),
            "field: must be [low, high] integers with 0 <= low <= high, got [3, 1]",
        ),
        (V.pair(**E), 3, "field: must be [low, high] integers with 0 <= low <= high, got 3"),
        (V.pair(**E), (1.0, 2), "field: must be [low, high] integers"),
        (
            V.pair(below=1, kind=float, **E),
            (0.5, 1.0),
            "field: must be [low, high] numbers with 0 <= low <= high < 1, got [0.5, 1.0]",
        ),
        (V.pair(**E), None, "field: must be [low, high] integers"),
    ],
)
def test_shared_validators_name_the_field_expectation_and_value(validator, value, message):
    with pytest.raises(Refused) as info:
        checked(validator, value)
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize(
    ("validator", "value"),
    [
        (V.at_least(0, kind=float, **E), 2),
        (V.above(0, kind=float, **E), 1e-9),
        (V.one_of(("max", "avg"), **E), "avg"),
        (V.subset(("a", "b"), **E), ["b", "a"]),
        (V.each(V.at_least(1, kind=int, **E), V.odd(**E), **E), [1, 3]),
        (V.pair(optional=True, **E), None),
        (V.pair(below=1, kind=float, **E), (0, 0.5)),
    ],
)
def test_shared_validators_accept_what_they_promise(validator, value):
    checked(validator, value)


def test_shared_validators_take_a_prefix_and_a_prefix_per_instance():
    with pytest.raises(Refused, match=r"^mutation\.field: must be odd"):
        checked(V.odd(prefix="mutation.", **E), 2)
    with pytest.raises(Refused, match=r"^strategies\.Probe\.field: must be odd"):
        checked(V.odd(prefix=lambda inst: f"strategies.{type(inst).__name__}.", **E), 2)
