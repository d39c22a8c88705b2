"""Weight inheritance: children start from their parents' trained weights.

What a user relies on: an operator declared ``exact`` gives a child that computes its parent's
function before any training; the function-preserving starts of added layers hold where their
conditions do; a search with inheritance passes parents' weights to children (trained for fewer
epochs), keeps the population's weights and nothing more, and survives a missing parent file.
"""

from __future__ import annotations

import random
from pathlib import Path

import attrs
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import genomics as G
import operators as ops
import phenotypes as ph
from operators.testing import (
    check_function_preserved,
    check_preserves_declaration,
    genomes,
    trained_like,
)
from runner import config as cfg
from runner.session import start

EXACT = [name for name, info in ops.registered().items() if info.preserves == "exact"]
BUILT_IN = [name for name, info in ops.registered().items() if info.provider == "ecogen"]


def test_an_operator_declared_with_an_unknown_preservation_is_refused():
    with pytest.raises(ValueError, match="preserves: must be one of exact, approximate, not"):
        ops.mutation(changes="x", preserves="mostly")


@pytest.mark.parametrize("name", EXACT)
@given(genome=genomes(), seed=st.integers(0, 2**31 - 1))
def test_an_exact_operators_inheriting_child_computes_its_parents_function(name, genome, seed):
    """On random genomes with random trained-like weights, before any training, in evaluation
    mode: every output within 1e-4 of the parent's."""
    check_function_preserved(name, genome, random.Random(seed), seed=seed % 1000)


def _chain() -> G.Genome:
    """Post-ReLU maps everywhere, a convolution reading a convolution, global pooling: where
    the approximate operators' starts are exact."""
    return G.Genome(
        (1, 8, 8),
        4,
        [
            G.Node("input", G.Input()),
            G.Node("conv1", G.Conv(6), ("input",)),
            G.Node("conv2", G.Conv(8), ("conv1",)),
            G.Node("pool1", G.Pool("avg", global_pool=True), ("conv2",)),
            G.Node("classifier", G.Dense(4, activation="none"), ("pool1",)),
            G.Node("output", G.Output(), ("classifier",)),
        ],
    )


def _replace(genome: G.Genome, node_id: str, **changes) -> G.Genome:
    nodes = [
        attrs.evolve(n, gene=attrs.evolve(n.gene, **changes)) if n.id == node_id else n
        for n in genome.nodes
    ]
    return G.validate(attrs.evolve(genome, nodes=tuple(nodes)))


def _insert(genome: G.Genome, after: str, node: G.Node) -> G.Genome:
    nodes = []
    for n in genome.nodes:
        if after in n.inputs:
            n = attrs.evolve(n, inputs=tuple(node.id if i == after else i for i in n.inputs))
        nodes.append(n)
        if n.id == after:
            nodes.append(node)
    return G.validate(attrs.evolve(genome, nodes=tuple(nodes)))


def _outputs_after_inheriting(parent_genome: G.Genome, child_genome: G.Genome):
    parent = trained_like(ph.compile_genome(parent_genome, seed=0), 0)
    child = ph.compile_genome(child_genome, seed=1)
    report = ph.inherit_weights(child, child_genome, parent, parent_genome)
    x = torch.rand((8, *parent_genome.input_shape), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return parent(x), child.eval()(x), report


@pytest.mark.parametrize(
    "change",
    [
        "identical",
        "added convolution",
        "more channels",
        "larger kernel",
        "added dense layer",
        "added SEP-Net module",
    ],
)
def test_function_preserving_starts_hold_where_their_conditions_do(change):
    """Each approximate operator's start is exact on a genome that meets its conditions
    (non-negative inputs to added ReLUs, layers reading the changed one that can take zero
    weights, a kernel that grows, a dense layer as wide as its input)."""
    parent = _chain()
    child = {
        "identical": parent,
        "added convolution": _insert(parent, "conv1", G.Node("conv9", G.Conv(6), ("conv1",))),
        "more channels": _replace(parent, "conv1", out_channels=11),
        "larger kernel": _replace(parent, "conv2", kernel=5, padding=2),
        "added dense layer": _insert(parent, "pool1", G.Node("dense9", G.Dense(12), ("pool1",))),
        "added SEP-Net module": G.validate(
            attrs.evolve(
                parent,
                nodes=(
                    *parent.nodes[:3],
                    *G.sep_module("sep9", "conv2", 8, groups=2),
                    attrs.evolve(parent.nodes[3], inputs=("sep9",)),
                    *parent.nodes[4:],
                ),
            )
        ),
    }[change]
    want, got, report = _outputs_after_inheriting(parent, child)
    assert torch.allclose(got, want, atol=1e-4, rtol=0), (got - want).abs().max()
    if change == "identical":
        assert report.fraction == 1.0
    if change in ("added convolution", "added dense layer"):
        assert report.identity
    if change == "added SEP-Net module":
        assert report.zeroed == ("sep9_restore",)


def _grouped_chain(groups: int) -> G.Genome:
    """Two convolutions, then ``grouped``, a 3x3 convolution of ``groups`` groups on their 8
    channels (8: depthwise, as in MobileNet), then a 1x1 convolution mixing them without an
    activation, as in a SEP-Net module."""
    return G.Genome(
        (1, 8, 8),
        4,
        [
            G.Node("input", G.Input()),
            G.Node("stem", G.Conv(8), ("input",)),
            G.Node("conv1", G.Conv(8), ("stem",)),
            G.Node("grouped", G.Conv(8, groups=groups), ("conv1",)),
            G.Node("mix", G.Conv(8, kernel=1, activation="none"), ("grouped",)),
            G.Node("pool1", G.Pool("avg", global_pool=True), ("mix",)),
            G.Node("classifier", G.Dense(4, activation="none"), ("pool1",)),
            G.Node("output", G.Output(), ("classifier",)),
        ],
    )


@pytest.mark.parametrize(
    ("groups", "change"),
    [
        (4, {"out_channels": 12}),  # 2 filters a group, then 3
        (4, {"out_channels": 16, "kernel": 5, "padding": 2}),
        (8, {"out_channels": 16}),  # depthwise, then two filters a channel
        (8, {"out_channels": 24}),
        (8, {"kernel": 5, "padding": 2}),
    ],
    ids=[
        "grouped wider",
        "grouped wider larger kernel",
        "depthwise x2",
        "depthwise x3",
        "depthwise larger kernel",
    ],
)
def test_function_preserving_starts_hold_in_grouped_and_depthwise_layers(groups, change):
    """A grouped convolution given more filters keeps each group's filters in that group (the
    filters of group g see only group g's input channels), and the layer reading it gets zero
    weights from the new ones: the child computes what its parent does."""
    parent = _grouped_chain(groups)
    child = _replace(parent, "grouped", **change)
    want, got, report = _outputs_after_inheriting(parent, child)
    assert torch.allclose(got, want, atol=1e-4, rtol=0), (got - want).abs().max()
    assert not report.fresh


def test_a_layer_reading_a_concatenation_finds_its_channels_when_an_input_widens():
    """conv3 reads [conv2, conv1] concatenated; conv2 with more filters moves conv1's channels
    along: conv3's weights follow them, and get zero weights from conv2's new filters."""
    parent = G.Genome(
        (1, 8, 8),
        4,
        [
            G.Node("input", G.Input()),
            G.Node("conv1", G.Conv(6), ("input",)),
            G.Node("conv2", G.Conv(8), ("conv1",)),
            G.Node("concat1", G.Concat(), ("conv2", "conv1")),
            G.Node("conv3", G.Conv(8), ("concat1",)),
            G.Node("pool1", G.Pool("avg", global_pool=True), ("conv3",)),
            G.Node("classifier", G.Dense(4, activation="none"), ("pool1",)),
            G.Node("output", G.Output(), ("classifier",)),
        ],
    )
    want, got, _ = _outputs_after_inheriting(parent, _replace(parent, "conv2", out_channels=11))
    assert torch.allclose(got, want, atol=1e-4, rtol=0), (got - want).abs().max()


def test_a_wider_depthwise_convolution_keeps_each_channel_s_filter_in_its_group():
    parent_genome = _grouped_chain(8)
    child_genome = _replace(parent_genome, "grouped", out_channels=16)
    parent = trained_like(ph.compile_genome(parent_genome, seed=0), 0)
    child = ph.compile_genome(child_genome, seed=1)
    ph.inherit_weights(child, child_genome, parent, parent_genome)
    # Group g (input channel g) holds filters 2g and 2g + 1: the first is the parent's filter g.
    assert torch.equal(child.grouped.weight[0::2], parent.grouped.weight)
    assert torch.equal(child.grouped_bn.running_var[0::2], parent.grouped_bn.running_var)


def _line(*layers: tuple) -> G.Genome:
    """input, ``layers`` (``(id, gene)`` reading the one before, or ``(id, gene, inputs)``),
    then a linear classifier of 4 classes."""
    nodes = [G.Node("input", G.Input())]
    for node_id, gene, *inputs in layers:
        nodes.append(G.Node(node_id, gene, tuple(inputs[0]) if inputs else (nodes[-1].id,)))
    nodes.append(G.Node("classifier", G.Dense(4, activation="none"), (nodes[-1].id,)))
    nodes.append(G.Node("output", G.Output(), ("classifier",)))
    return G.validate(G.Genome((1, 8, 8), 4, nodes))


#: Genomes that meet the approximate operators' conditions and genomes that break them: ReLU'd
#: maps and signed ones (the input, a layer without activation), a grouped convolution reading
#: what a concatenation could widen, a sum, dropout, pooling, a concatenation and a hidden dense
#: layer for the removals to remove.
DECLARATION_SAMPLES = (
    _chain(),
    _line(
        ("stem", G.Conv(8)),
        ("conv1", G.Conv(8)),
        ("conv2", G.Conv(8)),
        ("grouped", G.Conv(8, groups=4)),
        ("mix", G.Conv(8, kernel=1, activation="none")),
        ("pool1", G.Pool("avg", global_pool=True)),
    ),
    _line(
        ("stem", G.Conv(8)),
        ("conv1", G.Conv(8)),
        ("conv2", G.Conv(8, activation="none")),
        ("add1", G.Add("relu"), ("conv2", "stem")),
        ("drop1", G.Dropout(0.3)),
        ("pool1", G.Pool("max")),
        ("cat1", G.Concat(), ("pool1", "conv1")),
        ("pool2", G.Pool("avg", global_pool=True)),
        ("fc1", G.Dense(16)),
    ),
)


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_operator_s_declared_preservation_is_what_its_inheriting_children_show(name):
    """``exact``: every child computes its parent's function; ``approximate``: some do, some
    do not; ``not``: some do not. The registry only checks that the word is one of three."""
    check_preserves_declaration(name, DECLARATION_SAMPLES)


@pytest.mark.parametrize(
    ("name", "wrong", "message"),
    [
        ("add_dropout", "approximate", "declare it 'exact'"),
        ("add_dropout", "not", "declare it 'exact' or 'approximate'"),
        ("remove_convolution", "exact", "is declared 'exact', but a child"),
        ("alter_filter_size", "exact", "is declared 'exact', but a child"),
        ("remove_convolution", "approximate", "declare it 'not'"),
    ],
)
def test_a_wrong_preservation_declaration_is_caught(name, wrong, message):
    info = attrs.evolve(ops.get(name), preserves=wrong)
    with pytest.raises(AssertionError, match=message):
        check_preserves_declaration(info, DECLARATION_SAMPLES)


def test_fewer_channels_keep_the_first_filters_and_a_stride_change_keeps_its_weights():
    parent_genome = _chain()
    parent = trained_like(ph.compile_genome(parent_genome, seed=0), 0)
    for child_genome in (
        _replace(parent_genome, "conv2", out_channels=5),
        _replace(parent_genome, "conv1", stride=2),
    ):
        child = ph.compile_genome(child_genome, seed=1)
        ph.inherit_weights(child, child_genome, parent, parent_genome)
        n = child.conv2.weight.shape[0]
        assert torch.equal(child.conv2.weight, parent.conv2.weight[:n])
        assert torch.equal(child.conv2_bn.running_var, parent.conv2_bn.running_var[:n])
        assert torch.equal(child.conv1.weight, parent.conv1.weight)


def _without(genome: G.Genome, removed: str) -> G.Genome:
    """``genome`` after the ``remove_convolution`` that deletes ``removed``."""
    remove = ops.get("remove_convolution")
    for seed in range(100):
        child = remove.apply(genome, random.Random(seed), ops.DEFAULT_CONFIG)
        if removed not in {n.id for n in child.nodes}:
            return child
    raise AssertionError(f"remove_convolution never removed {removed}")


def test_a_layer_added_after_a_removal_starts_as_the_identity_not_as_the_removed_layer():
    """A child made by two mutations, conv2 removed and then a convolution added, inherits from
    its parent: the new layer must not be named conv2, or it would take the removed layer's
    trained weights instead of starting as the identity."""
    parent_genome = _chain()
    fewer = _without(parent_genome, "conv2")
    add = ops.get("add_convolution")
    child_genome = add.apply(fewer, random.Random(0), ops.DEFAULT_CONFIG)
    (added,) = {n.id for n in child_genome.nodes} - {n.id for n in fewer.nodes}
    assert added not in {n.id for n in parent_genome.nodes}
    parent = trained_like(ph.compile_genome(parent_genome, seed=0), 0)
    child = ph.compile_genome(child_genome, seed=1)
    report = ph.inherit_weights(child, child_genome, parent, parent_genome)
    assert added in report.identity
    weight = getattr(child, added).weight
    assert torch.equal(weight, torch.nn.init.dirac_(torch.empty_like(weight)))
    # A child of the child, stored and loaded in between, does not take conv2 either.
    stored = G.loads(G.dumps(fewer))
    grandchild = add.apply(stored, random.Random(0), ops.DEFAULT_CONFIG)
    assert "conv2" not in {n.id for n in grandchild.nodes}


def test_blocks_repeated_by_gene_duplication_inherit_their_originals_weights():
    parent_genome = _chain()
    blocks = ops.feature_blocks(parent_genome)
    repeats = [2] + [1] * (len(blocks) - 1)
    child_genome = ops.duplicate_blocks(parent_genome, repeats)
    copies = ops.copied_nodes(parent_genome, repeats)
    assert copies and set(copies.values()) <= set(blocks[0].nodes)
    assert set(copies) == {n.id for n in child_genome.nodes} - {n.id for n in parent_genome.nodes}
    parent = trained_like(ph.compile_genome(parent_genome, seed=0), 0)
    child = ph.compile_genome(child_genome, seed=1)
    report = ph.inherit_weights(child, child_genome, parent, parent_genome, copies)
    same = 0
    for copy, original in copies.items():
        if isinstance(child_genome.node(copy).gene, G.Conv):
            got, want = getattr(child, copy).weight, getattr(parent, original).weight
            # The overlap is the original's (a copy at the block's start reads the block's
            # output, whose channels may differ from the original's input).
            i = min(got.shape[1], want.shape[1])
            assert torch.equal(got[:, :i], want[:, :i])
            same += got.shape == want.shape
    assert same >= 1
    assert not report.fresh and not report.identity


# --- a search with inheritance -------------------------------------------------------------

RUN = {
    "dataset": "digits",
    "init": "minimal",
    "population": 3,
    "generations": 2,
    "epochs": 2,
    "final_epochs": 1,
    "seed": 5,
    "device": "cpu",
    "keep_weights": 0,
    "inherit": True,
}


@pytest.fixture(scope="module")
def digits():
    return ph.load_dataset("digits", seed=RUN["seed"])


def _run(tmp_path: Path, digits, **values) -> tuple[dict, list]:
    experiment = cfg.from_dict({**RUN, "run_dir": str(tmp_path / "run"), **values})
    engine = start(experiment, digits)
    try:
        summary = engine.run()
        rows = {r["id"]: r for r in engine.store.individuals()}
        evaluations = {r: engine.store.evaluation(rows[r]["evaluation"]) for r in rows}
        population = [i.id for i in engine.state.population]
    finally:
        engine.store.close()
    return summary, rows, evaluations, population


def test_children_start_from_their_parents_weights_for_fewer_epochs(tmp_path, digits):
    summary, rows, evaluations, population = _run(tmp_path, digits)
    children = [i for i in rows if rows[i]["generation"] > 0 and not rows[i]["reused"]]
    assert children
    for child in children:
        evaluation = evaluations[child]
        assert evaluation.inherited_from == rows[child]["parents"][0]
        assert evaluation.planned_epochs == 1  # a quarter of 2, rounded up
        assert 0 < evaluation.metrics["inherited_fraction"] <= 1
        assert 0 <= evaluation.metrics["start_val_accuracy"] <= 1
    # A child of exact operators only starts knowing exactly what its parent knew.
    exact = [c for c in children if all(op in EXACT for op in rows[c]["operators"])]
    assert exact, "this seed's run has no child of exact operators only; pick another seed"
    for child in exact:
        parent = evaluations[rows[child]["parents"][0]]
        assert evaluations[child].metrics["start_val_accuracy"] == parent.val_accuracy
    # Kept: the weights of the population, nothing else (keep_weights = 0), and counted.
    kept = {p.stem for p in (tmp_path / "run" / "weights").glob("*.pt")}
    assert kept <= set(population) | {summary["best"]["id"]}
    assert set(population) <= kept
    assert summary["weights_files"] == len(kept) and summary["weights_bytes"] > 0


def test_a_missing_parent_weight_file_makes_the_child_train_from_scratch(tmp_path, digits):
    from runner.execution.base import load_parent, train_task
    from runner.records import Task

    genome = G.minimal((1, 8, 8), 10)
    task = Task("g1_0", genome, G.canonical_hash(genome), 1, 7, 1, inherit_from="g0_1")
    evaluation, model = train_task(
        task,
        digits,
        ph.TrainSpec(device="cpu"),
        lambda *a: None,
        parent=load_parent(tmp_path / "weights"),
    )
    assert evaluation.ok and model is not None
    assert evaluation.inherited_from is None
    assert evaluation.metrics["inherit_failed"].startswith("weights of g0_1: FileNotFoundError")
    # A corrupt file too.
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "g0_1.pt").write_bytes(b"not a model")
    evaluation, _ = train_task(
        task,
        digits,
        ph.TrainSpec(device="cpu"),
        lambda *a: None,
        parent=load_parent(tmp_path / "weights"),
    )
    assert evaluation.ok and "inherit_failed" in evaluation.metrics


def test_a_child_of_a_parent_without_weights_trains_from_scratch_for_the_full_epochs(
    tmp_path, digits
):
    """A parent may have no weights kept (its file lost, a reused individual whose source's
    were not kept): its children do not inherit, so they train the full epochs, not the
    inheriting child's quarter of them, and an event says why."""
    from runner.session import prepare_resume

    _run(tmp_path, digits, generations=1, epochs=4)
    run_dir = tmp_path / "run"
    lost = {p.stem for p in (run_dir / "weights").glob("*.pt")}
    assert lost
    for path in (run_dir / "weights").glob("*.pt"):
        path.unlink()
    engine = prepare_resume(run_dir, generations=2).engine(digits)
    try:
        engine.run()
        rows = {r["id"]: r for r in engine.store.individuals()}
        children = [i for i in rows if rows[i]["generation"] == 2 and not rows[i]["reused"]]
        evaluations = {i: engine.store.evaluation(rows[i]["evaluation"]) for i in children}
        events = engine.store.events("not_inherited")
    finally:
        engine.store.close()
    orphans = [c for c in children if rows[c]["parents"][0] in lost]
    assert orphans
    for child in orphans:
        evaluation = evaluations[child]
        assert evaluation.planned_epochs == 4 and evaluation.epochs == 4
        assert evaluation.inherited_from is None and "inherit_failed" not in evaluation.metrics
    assert {e["individual"] for e in events} >= set(orphans)


def test_a_crossed_child_inherits_from_its_first_parent_only(tmp_path, digits):
    """What docs/inheritance.md promises a crossed child: its first parent's weights, matched
    by node id, also for a layer whose gene came from the mate (that layer starts from the
    first parent's layer of its id, reshaped); a layer of an id the first parent lacks starts
    as an added layer does (the identity or random), never with the mate's weights."""
    _, rows, evaluations, _ = _run(
        tmp_path, digits, init="random", population=4, generations=2, crossover_rate=1.0
    )
    genomes = {i: G.loads(rows[i]["genome"]) for i in rows}
    crossed = [i for i in rows if len(rows[i]["parents"]) == 2 and not rows[i]["reused"]]
    assert crossed
    genes_from_mate = 0
    for child in crossed:
        first, mate = (genomes[p] for p in rows[child]["parents"])
        evaluation = evaluations[child]
        assert evaluation.inherited_from == rows[child]["parents"][0]
        started = {
            *evaluation.metrics.get("inherited_identity", []),
            *evaluation.metrics.get("inherited_fresh", []),
        }
        for node in genomes[child].nodes:
            if not isinstance(node.gene, G.Conv | G.Dense):
                continue
            if node.id not in first._index:
                assert node.id in started, (child, node.id)
            elif node.id in mate._index and node.gene == mate.node(node.id).gene:
                genes_from_mate += node.gene != first.node(node.id).gene
    assert genes_from_mate, "no crossed child has a layer of its mate's; pick another seed"


def test_the_final_training_can_go_on_from_the_search_weights(tmp_path, digits):
    summary, *_ = _run(tmp_path, digits, final_from="weights", generations=1)
    assert summary["best"]["final_from"] == "weights"


def test_inherit_must_be_true_or_false():
    with pytest.raises(cfg.ConfigError, match="inherit: must be true or false, got 'yes'"):
        cfg.from_dict({"inherit": "yes"})
    with pytest.raises(cfg.ConfigError, match="final_from"):
        cfg.from_dict({"final_from": "parents"})


def test_a_stored_configuration_without_inherit_resumes_without_it():
    """Runs made before inheritance existed trained every candidate from scratch."""
    assert cfg.INTRODUCED["inherit"] is False
    stored = cfg.from_dict({**cfg.INTRODUCED, "dataset": "digits"})
    assert not stored.inherit and stored.final_from == "scratch"
