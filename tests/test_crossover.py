"""Crossovers: registered like mutations (built-ins and ``ecogen.crossovers`` plugins), each
child valid, compiled, made of its parents' genes; homologous crossover and subgraph exchange
doing what their documentation says; DEAP's convention and ``mate``."""

import random

import attrs
import pytest
import torch
from click.testing import CliRunner
from hypothesis import event, given
from hypothesis import strategies as st

import genomics as G
import operators as ops
import phenotypes as ph
import zoo
from operators.crossovers import cut_points
from operators.testing import check_crossover, crossover_pairs
from runner.cli import main

# Parametrized over the registry, so a newly registered crossover (built-in or plugin) is tested
# without anyone adding it here. Each example crosses PAIRS pairs: with 2 crossovers and the
# default 100 examples per test, a run crosses 600 pairs (1200 with CI=true, its 200 examples).
CROSSOVERS = ops.crossover_names()
PAIRS = 3


def test_the_built_in_crossovers_are_registered():
    assert CROSSOVERS[:2] == ["homologous_crossover", "subgraph_exchange"]
    toolbox = ops.make_toolbox()
    for name in CROSSOVERS:
        info = ops.get_crossover(name)
        assert info.provider == "ecogen" and info.changes and info.function.__name__ == name
        assert callable(getattr(toolbox, name))


@pytest.mark.parametrize("name", CROSSOVERS)
@given(data=st.data())
def test_every_child_is_valid_compiles_and_comes_from_its_parents(name, data):
    """check_crossover: valid within bounds, reproducible, input shape and classes kept, every
    gene from a parent, node ids keep their kind, JSON round trip, a genome crossed with itself
    is itself; and here, where torch may be imported: the child compiles to a module mapping
    (N, C, H, W) to (N, classes)."""
    info = ops.get_crossover(name)
    for _ in range(PAIRS):
        first, second = data.draw(crossover_pairs())
        seed = data.draw(st.integers(0, 2**32 - 1))
        child = check_crossover(info, first, second, random.Random(seed))
        event("not applicable" if child is None else "crossed")
        if child is None:
            continue
        G.validate(child)
        assert G.canonical_hash(G.loads(G.dumps(child))) == G.canonical_hash(child)
        model = ph.compile_genome(child, seed=0).train()
        logits = model(torch.randn(2, *child.input_shape))
        assert logits.shape == (2, child.num_classes) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", CROSSOVERS)
@given(pair=crossover_pairs(relations=("relatives",)), seed=st.integers(0, 2**32 - 1))
def test_children_keep_a_run_s_bounds(name, pair, seed):
    """The bounds are the run's: a child over its parameter limit or depth is never made."""
    first, second = pair
    limit = max(sum(G.parameter_counts(g).values()) for g in pair)
    convs = max(1, *(ops.layer_census(g)["conv"] for g in pair))
    config = ops.MutationConfig(bounds=G.Bounds(max_params=limit), max_convolutions=convs)
    child = check_crossover(ops.get_crossover(name), first, second, random.Random(seed), config)
    if child is not None:
        assert sum(G.parameter_counts(child).values()) <= limit
        assert ops.layer_census(child)["conv"] <= convs


def _lenet_relatives():
    """lenet5, a child with 8 channels in conv1 and conv2's kernel 3, and a child with a
    convolution and a dropout inserted between pool1 and conv2."""
    base = zoo.load("lenet5")
    wide = attrs.evolve(
        base,
        nodes=tuple(
            attrs.evolve(n, gene=attrs.evolve(n.gene, out_channels=8))
            if n.id == "conv1"
            else attrs.evolve(n, gene=attrs.evolve(n.gene, kernel=3, padding=1))
            if n.id == "conv2"
            else n
            for n in base.nodes
        ),
    )
    deeper_nodes = []
    for n in base.nodes:
        if n.id == "conv2":
            deeper_nodes.append(G.Node("conv3", G.Conv(12, kernel=3), ("pool1",)))
            deeper_nodes.append(G.Node("dropout1", G.Dropout(0.2), ("conv3",)))
            n = attrs.evolve(n, inputs=("dropout1",))
        deeper_nodes.append(n)
    deeper = attrs.evolve(base, nodes=tuple(deeper_nodes))
    G.validate(wide), G.validate(deeper)
    return base, wide, deeper


def test_homologous_crossover_mixes_aligned_genes_and_splices_the_second_parents_layers():
    base, wide, deeper = _lenet_relatives()
    cross = ops.get_crossover("homologous_crossover")
    seen_genes, spliced = set(), 0
    for seed in range(60):
        child = cross.apply(base, wide, random.Random(seed), ops.DEFAULT_CONFIG)
        assert [n.id for n in child.nodes] == [n.id for n in base.nodes]  # base's structure
        seen_genes.add((child.node("conv1").gene.out_channels, child.node("conv2").gene.kernel))
        child = cross.apply(base, deeper, random.Random(seed), ops.DEFAULT_CONFIG)
        ids = [n.id for n in child.nodes]
        if "conv3" in ids:  # spliced as a group, on the edge it was inserted on
            spliced += 1
            assert ids.index("pool1") < ids.index("conv3") < ids.index("dropout1")
            assert child.node("conv2").inputs == ("dropout1",)
            assert child.node("conv3").inputs == ("pool1",)
        else:
            assert child == base
    # Each aligned gene comes from either parent, independently.
    assert seen_genes == {(6, 5), (8, 5), (6, 3), (8, 3)}
    assert 15 <= spliced <= 45
    # The other way round the child has the deeper parent's structure, always.
    for seed in range(10):
        child = cross.apply(deeper, base, random.Random(seed), ops.DEFAULT_CONFIG)
        assert [n.id for n in child.nodes] == [n.id for n in deeper.nodes]


def test_homologous_crossover_repairs_by_leaving_out_what_breaks_the_child():
    """A stride of 2 from the second parent in every convolution would shrink 8x8 maps below
    1x1 after the pooling: the draws that break the child are left out, the rest kept."""
    base = G.Genome(
        (1, 8, 8),
        3,
        [
            G.Node("input", G.Input()),
            G.Node("conv1", G.Conv(4), ("input",)),
            G.Node("conv2", G.Conv(4), ("conv1",)),
            G.Node("conv3", G.Conv(4), ("conv2",)),
            G.Node("pool1", G.Pool(kernel=2), ("conv3",)),
            G.Node("conv4", G.Conv(4), ("pool1",)),
            G.Node("classifier", G.Dense(3, activation="none"), ("conv4",)),
            G.Node("output", G.Output(), ("classifier",)),
        ],
    )
    strided = attrs.evolve(
        base,
        nodes=tuple(
            attrs.evolve(n, gene=attrs.evolve(n.gene, stride=2, out_channels=8))
            if isinstance(n.gene, G.Conv)
            else n
            for n in base.nodes
        ),
    )
    cross = ops.get_crossover("homologous_crossover")
    most = 0
    for seed in range(40):
        child = cross.apply(base, strided, random.Random(seed), ops.DEFAULT_CONFIG)
        G.validate(child)
        strides = [n.gene.stride for n in child.nodes if isinstance(n.gene, G.Conv)]
        assert strides.count(2) <= 3  # a fourth would leave a 0x0 map
        most = max(most, strides.count(2))
    assert most == 3


def test_cut_points_are_the_nodes_every_path_goes_through():
    genome = zoo.load("resnet20")
    points = cut_points(genome)
    assert points[0] == "input" and genome.nodes[-1].id not in points
    index = {n.id: i for i, n in enumerate(genome.nodes)}
    for point in points:
        for node in genome.nodes:
            for ref in node.inputs:
                assert not index[ref] < index[point] < index[node.id], (point, ref, node.id)
    # Inside a residual block, the skip jumps over every node but the join.
    skipped = {n.id for n in genome.nodes if isinstance(n.gene, G.Conv)} - set(points)
    assert skipped


def test_subgraph_exchange_replaces_a_block_between_aligned_cut_points():
    base, wide, deeper = _lenet_relatives()
    cross = ops.get_crossover("subgraph_exchange")
    blocks = set()
    for seed in range(40):
        child = cross.apply(base, deeper, random.Random(seed), ops.DEFAULT_CONFIG)
        assert child != base
        ids = [n.id for n in child.nodes]
        assert "conv3" in ids and "dropout1" in ids  # the block holding deeper's new layers
        assert child.nodes[: ids.index("conv3")] == tuple(
            n for n in base.nodes[: ids.index("conv3")]
        )
        blocks.add(tuple(ids))
        G.validate(child)
    assert len(blocks) == 1  # every block that differs ends in the same child here
    child = cross.apply(base, wide, random.Random(0), ops.DEFAULT_CONFIG)
    assert child.node("conv1").gene.out_channels == 8 or child.node("conv2").gene.kernel == 3


def test_subgraph_exchange_gives_fresh_ids_where_the_first_parent_uses_them():
    """The second parent's block holds a conv2 (a 1x1 convolution before conv1); the first
    parent has a conv2 of its own after conv1, outside that block: the incoming one gets a
    fresh id, and the first parent's conv2 stays what it was."""
    minimal = G.minimal((1, 8, 8), 4)
    nodes = list(minimal.nodes)
    first = attrs.evolve(
        minimal,
        nodes=(
            *nodes[:2],
            G.Node("conv2", G.Conv(8, kernel=5), ("conv1",)),
            attrs.evolve(nodes[2], inputs=("conv2",)),
            *nodes[3:],
        ),
    )
    second = attrs.evolve(
        minimal,
        nodes=(
            nodes[0],
            G.Node("conv2", G.Conv(6, kernel=1), ("input",)),
            attrs.evolve(nodes[1], inputs=("conv2",)),
            *nodes[2:],
        ),
    )
    cross = ops.get_crossover("subgraph_exchange")
    renamed = 0
    for seed in range(20):
        child = check_crossover(cross, first, second, random.Random(seed))
        ids = [n.id for n in child.nodes]
        assert len(ids) == len(set(ids))
        if "conv2" in ids and ids.index("conv2") > ids.index("conv1"):
            assert child.node("conv2").gene == G.Conv(8, kernel=5)
        renamed += "conv3" in ids and child.node("conv3").gene == G.Conv(6, kernel=1)
    assert renamed


def test_a_layer_added_after_a_removal_is_not_aligned_with_the_removed_one():
    """A child of lenet5 that lost conv2 and then gained a convolution: crossed with lenet5,
    which still has conv2, the new layer keeps its own settings (it is not conv2)."""
    base = zoo.load("lenet5")
    remove, add = ops.get("remove_convolution"), ops.get("add_convolution")
    for seed in range(100):
        fewer = remove.apply(base, random.Random(seed), ops.DEFAULT_CONFIG)
        if "conv2" not in {n.id for n in fewer.nodes}:
            break
    relative = add.apply(fewer, random.Random(0), ops.DEFAULT_CONFIG)
    (added,) = {n.id for n in relative.nodes} - {n.id for n in fewer.nodes}
    assert added not in {n.id for n in base.nodes}
    cross = ops.get_crossover("homologous_crossover")
    for seed in range(20):
        child = check_crossover(cross, relative, base, random.Random(seed))
        assert child.node(added).gene == relative.node(added).gene


def test_parents_for_other_inputs_are_not_crossed():
    a, b = G.minimal((1, 8, 8), 10), G.minimal((3, 8, 8), 10)
    for name in CROSSOVERS:
        with pytest.raises(ops.NotApplicable, match="input shape or class count"):
            ops.get_crossover(name).function(a, b, rng=random.Random(0))
    assert ops.cross(a, b, rng=random.Random(0)) == (a, None)


def test_deap_convention_both_children_lineage_and_fitness():
    _, wide, deeper = _lenet_relatives()
    for name in CROSSOVERS:
        ind1, ind2 = ops.Individual(wide, id="a"), ops.Individual(deeper, id="b")
        ind1.fitness.values, ind2.fitness.values = (0.5,), (0.6,)
        out = ops.get_crossover(name).function(ind1, ind2, rng=random.Random(1))
        assert out == (ind1, ind2)
        assert ind1.operators == [name] and ind2.operators == [name]
        assert not ind1.fitness.valid and not ind2.fitness.valid
        genomes = ops.get_crossover(name).function(wide, deeper, rng=random.Random(1))
        assert genomes == (ind1.genome, ind2.genome)
    ind1, ind2 = ops.Individual(wide), ops.Individual(deeper)
    ops.mate(ind1, ind2, rng=random.Random(0), weights={"subgraph_exchange": 0})
    assert ind1.operators == ind2.operators == ["homologous_crossover"]


PLUGIN = """
import operators


@operators.crossover(changes="the second parent whole: no exchange at all", weight=0.0)
def take_second(first, second, rng, config):
    return second if first != second else first


not_a_crossover = len
"""


def _install(install_plugin, value):
    install_plugin(
        "ecogen-crossover-demo",
        "ecogen_crossover_demo",
        PLUGIN,
        {"ecogen.crossovers": {"demo": value}},
    )


def test_entry_point_crossovers_register_and_pass_the_same_checks(install_plugin):
    _install(install_plugin, "ecogen_crossover_demo:take_second")
    info = ops.registered_crossovers()["take_second"]
    assert info.provider == "ecogen-crossover-demo" and info.weight == 0.0
    assert callable(ops.make_toolbox().take_second)
    for seed in range(20):
        first = G.random_genome(random.Random(seed), (1, 8, 8), 10)
        second = G.random_genome(random.Random(seed + 100), (1, 8, 8), 10)
        check_crossover(info, first, second, random.Random(seed))
    listing = CliRunner().invoke(main, ["plugins"])
    assert listing.exit_code == 0, listing.output
    assert "crossovers:" in listing.output and "ecogen-crossover-demo" in listing.output
    # Off by default: mate never draws it unless a weight turns it on.
    child, name = ops.cross(first, second, rng=random.Random(0))
    assert name != "take_second"
    child, name = ops.cross(first, second, rng=random.Random(0), weights={"take_second": 1e9})
    assert (child, name) == (second, "take_second")


def test_a_plugin_that_is_not_a_crossover_is_refused_in_one_line(install_plugin):
    _install(install_plugin, "ecogen_crossover_demo:not_a_crossover")
    refused = ops.refused_crossovers()["demo"]
    assert refused.startswith("crossover 'demo' of ecogen-crossover-demo: not an ecogen crossover")
    assert "\n" not in refused
    assert CROSSOVERS[:2] == ops.crossover_names()[:2]  # the rest still load
    listing = CliRunner().invoke(main, ["plugins"])
    assert listing.exit_code == 1 and "refused:" in listing.output and refused in listing.output


def test_a_run_that_names_a_refused_crossover_stops_in_one_line(install_plugin, tmp_path):
    _install(install_plugin, "ecogen_crossover_demo:not_a_crossover")
    (tmp_path / "run.toml").write_text("crossover_rate = 0.5\n[crossover_weights]\ndemo = 1.0\n")
    run = tmp_path / "run"
    result = CliRunner().invoke(
        main, ["evolve", "--config", str(tmp_path / "run.toml"), "--run-dir", str(run)]
    )
    assert result.exit_code == 1
    line = result.output.strip()
    assert line == f"error: {ops.refused_crossovers()['demo']}" and "\n" not in line
    assert not run.exists()
