import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import genomics as G
import operators as ops
import phenotypes as ph
import zoo
from genomics import Add, Concat, Conv, Dense, Dropout, Genome, Input, Node, Output, Pool
from genomics.testing import genomes

SEEDS = st.integers(0, 2**32 - 1)


def chain(input_shape, *layers, classes=10):
    """A genome from ``(id, gene)`` pairs (each reading the one before) or ``(id, gene, inputs)``
    triples, with a dense classifier and the output appended."""
    nodes = [Node("input", Input())]
    for layer in (*layers, ("classifier", Dense(classes, activation="none"))):
        node_id, gene, *inputs = layer
        nodes.append(Node(node_id, gene, inputs[0] if inputs else (nodes[-1].id,)))
    nodes.append(Node("output", Output(), ("classifier",)))
    return G.validate(Genome(input_shape, classes, tuple(nodes)))


def conv_conv_pool_conv_conv():
    return chain(
        (3, 16, 16),
        ("conv1", Conv(8)),
        ("conv2", Conv(8)),
        ("pool1", Pool("max", kernel=2)),
        ("conv3", Conv(16)),
        ("conv4", Conv(16)),
    )


def output_shape(genome):
    return G.infer_shapes(genome)[genome.nodes[-1].id]


# --- blocks --------------------------------------------------------------------------------


def test_a_conv_conv_pool_conv_conv_genome_has_two_blocks():
    assert ops.feature_blocks(conv_conv_pool_conv_conv()) == [
        ops.Block(("conv1", "conv2"), (16, 16)),
        ops.Block(("conv3", "conv4"), (8, 8)),
    ]


def test_size_changers_the_input_and_the_classifier_part_are_in_no_block():
    genome = chain(
        (3, 16, 16),
        ("conv1", Conv(8, stride=2)),  # 8x8, entry of the first block
        ("conv2", Conv(8)),
        ("drop1", Dropout(0.2)),
        ("conv3", Conv(8, kernel=3, padding=0)),  # "valid": 6x6
        ("pool1", Pool("max", kernel=3, stride=1, padding=1)),  # keeps 6x6
        ("pool2", Pool("avg", global_pool=True)),
        ("fc1", Dense(32)),
        ("drop2", Dropout(0.3)),
    )
    assert ops.feature_blocks(genome) == [
        ops.Block(("conv2", "drop1"), (8, 8)),
        ops.Block(("pool1",), (6, 6)),
    ]


def test_a_squeezenet_classifier_convolution_is_in_no_block():
    genome = zoo.load("squeeze_classifier")
    blocks = ops.feature_blocks(genome)
    assert [b.nodes for b in blocks] == [("conv1",), ("conv2",), ("conv3",)]
    for candidate, _ in ops.duplication_candidates(genome, random.Random(0), 10):
        assert sum(n.gene == genome.node("classifier").gene for n in candidate) == 1


def test_a_residual_stage_is_one_block_and_a_downsampling_join_separates_stages():
    blocks = ops.feature_blocks(zoo.load("resnet20"))
    # The first unit of stages 2 and 3 joins a map twice its size: its add is in no block, so
    # the stage's other units form a block of their own.
    assert [(b.nodes[0], b.nodes[-1], b.size) for b in blocks] == [
        ("stem", "s1b3_add", (32, 32)),
        ("s2b1_conv2", "s2b1_conv2", (16, 16)),
        ("s2b2_conv1", "s2b3_add", (16, 16)),
        ("s3b1_conv2", "s3b1_conv2", (8, 8)),
        ("s3b2_conv1", "s3b3_add", (8, 8)),
    ]


def test_runs_that_cannot_be_chained_after_themselves_are_left_out():
    genome = chain(
        (3, 8, 8),
        ("conv1", Conv(8)),
        ("pool1", Pool("max")),
        ("conv2", Conv(8)),  # read by concat1 too: not only the run's last node leaves it
        ("conv3", Conv(8)),
        ("add1", Add(), ("conv3", "conv1")),  # joins an 8x8 map into 4x4: in no block
        ("conv4", Conv(8)),
        ("concat1", Concat(), ("conv4", "conv2")),  # reads add1 and conv2: two entries
        ("pool2", Pool("avg", global_pool=True)),
    )
    assert ops.feature_blocks(genome) == [ops.Block(("conv1",), (8, 8))]


@given(genomes())
def test_every_block_is_a_same_size_run_with_one_entry_and_one_exit(genome):
    shapes = G.infer_shapes(genome)
    position = {n.id: i for i, n in enumerate(genome.nodes)}
    for block in ops.feature_blocks(genome):
        members = set(block.nodes)
        at = [position[n] for n in block.nodes]
        assert at == list(range(at[0], at[0] + len(at))), "a run of consecutive nodes"
        outside = set()
        for node_id in block.nodes:
            node = genome.node(node_id)
            assert not isinstance(node.gene, (Input, Output, Dense))
            assert not (isinstance(node.gene, Pool) and node.gene.global_pool)
            assert node_id != G.classifier_node(genome)
            for ref in (node_id, *node.inputs):
                assert shapes[ref][1:] == block.size
            outside.update(i for i in node.inputs if i not in members)
            if node_id != block.nodes[-1]:
                assert set(genome.consumers(node_id)) <= members
        assert len(outside) == 1


# --- duplicate_blocks ----------------------------------------------------------------------


def test_repeating_a_block_chains_copies_with_fresh_ids():
    genome = conv_conv_pool_conv_conv()
    twice_first = ops.duplicate_blocks(genome, (2, 1))
    assert [(n.id, n.inputs) for n in twice_first.nodes[1:-2]] == [
        ("conv1", ("input",)),
        ("conv2", ("conv1",)),
        ("conv5", ("conv2",)),
        ("conv6", ("conv5",)),
        ("pool1", ("conv6",)),
        ("conv3", ("pool1",)),
        ("conv4", ("conv3",)),
    ]
    assert twice_first.node("conv5").gene == Conv(8)
    thrice_second = ops.duplicate_blocks(genome, (1, 3))
    assert [n.id for n in thrice_second] == [
        "input",
        *("conv1", "conv2", "pool1", "conv3", "conv4"),
        *("conv5", "conv6", "conv7", "conv8"),
        *("classifier", "output"),
    ]
    assert thrice_second.node("conv7").inputs == ("conv6",)
    assert thrice_second.node("classifier").inputs == ("conv8",)


def test_a_residual_block_repeats_as_a_residual_block():
    genome = chain(
        (3, 8, 8),
        ("pool1", Pool("max")),
        ("conv1", Conv(8)),
        ("conv2", Conv(8, activation="none")),
        ("add1", Add("relu"), ("conv2", "pool1")),
        ("pool2", Pool("avg", global_pool=True)),
    )
    assert ops.feature_blocks(genome) == [ops.Block(("conv1", "conv2", "add1"), (4, 4))]
    out = ops.duplicate_blocks(genome, (3,))
    # Copies are numbered on from the highest number any id has (2), whatever their type.
    assert [(n.id, n.inputs) for n in out.nodes[2:-3]] == [
        ("conv1", ("pool1",)),
        ("conv2", ("conv1",)),
        ("add1", ("conv2", "pool1")),
        ("conv3", ("add1",)),
        ("conv4", ("conv3",)),
        ("add5", ("conv4", "add1")),
        ("conv6", ("add5",)),
        ("conv7", ("conv6",)),
        ("add8", ("conv7", "add5")),
    ]
    assert out.node("pool2").inputs == ("add8",)


@pytest.mark.parametrize("inputs", [("conv1", "input"), ("input", "conv1")])
def test_an_add_that_reads_the_entry_stays_valid_when_the_copy_reads_other_channels(inputs):
    # The copy's add reads 16 channels where the original read the input's 3: the join rule
    # pads or truncates them, so this is a valid repeat, not an error.
    genome = chain((3, 8, 8), ("conv1", Conv(16)), ("add1", Add(), inputs), ("pool1", Pool()))
    out = ops.duplicate_blocks(genome, (2,))
    assert len(out) == len(genome) + 2
    assert output_shape(out) == output_shape(genome)


def test_a_repeat_that_breaks_the_genome_is_not_applicable_and_names_the_block():
    # The copy's grouped convolution would read the block's 3 output channels (2 groups).
    genome = chain(
        (4, 8, 8),
        ("conv1", Conv(4, groups=2)),
        ("conv2", Conv(3, kernel=1)),
        ("pool1", Pool("avg", global_pool=True)),
    )
    with pytest.raises(ops.NotApplicable, match=r"block 0 \(conv1, conv2; 8x8\).*groups"):
        ops.duplicate_blocks(genome, (2,))
    assert ops.duplication_candidates(genome, random.Random(0), 5) == []


def test_a_repeat_beyond_the_bounds_is_not_applicable():
    genome = conv_conv_pool_conv_conv()
    bounds = G.Bounds(max_params=sum(G.parameter_counts(genome).values()) + 1500)
    assert ops.duplicate_blocks(genome, (2, 1), bounds=bounds)
    with pytest.raises(ops.NotApplicable, match=r"block 1 \(conv3, conv4; 8x8\).*params"):
        ops.duplicate_blocks(genome, (1, 2), bounds=bounds)


@pytest.mark.parametrize("repeats", [(), (2,), (1, 1, 1), (0, 1)])
def test_wrong_repeat_counts_are_not_applicable(repeats):
    with pytest.raises(ops.NotApplicable, match="gene duplication"):
        ops.duplicate_blocks(conv_conv_pool_conv_conv(), repeats)


@given(genomes())
def test_repeating_every_block_once_gives_the_same_genome(genome):
    blocks = ops.feature_blocks(genome)
    out = ops.duplicate_blocks(genome, (1,) * len(blocks))
    assert G.canonical_hash(out) == G.canonical_hash(genome)


# --- duplication_candidates ----------------------------------------------------------------


def test_candidates_of_a_small_genome_are_every_combination():
    genome = conv_conv_pool_conv_conv()
    found = ops.duplication_candidates(genome, random.Random(0), count=20)
    assert sorted(r for _, r in found) == [
        (a, b) for a in (1, 2, 3) for b in (1, 2, 3) if (a, b) != (1, 1)
    ]
    known = dict((r, g) for g, r in found)[(2, 1)]
    assert known == ops.duplicate_blocks(genome, (2, 1))
    assert ops.duplication_candidates(genome, random.Random(0), count=3, max_repeat=2) != []
    assert len(ops.duplication_candidates(genome, random.Random(0), count=20, max_repeat=2)) == 3


def test_candidates_respect_the_depth_and_parameter_limits():
    genome = conv_conv_pool_conv_conv()  # 4 convolutions, 2 in each block
    shallow = ops.MutationConfig(max_convolutions=6)
    found = ops.duplication_candidates(genome, random.Random(0), 20, 3, shallow)
    assert sorted(r for _, r in found) == [(1, 2), (2, 1)]
    params = sum(G.parameter_counts(genome).values())
    small = ops.MutationConfig(bounds=G.Bounds(max_params=params + 1500))
    found = ops.duplication_candidates(genome, random.Random(0), 20, 3, small)
    # A copy of the first block adds 2 * 592 parameters; every other repeat adds more.
    assert [r for _, r in found] == [(2, 1)]


def test_genomes_without_a_repeatable_block_have_no_candidates():
    genome = chain(
        (3, 8, 8), ("conv1", Conv(8, stride=2)), ("pool1", Pool("avg", global_pool=True))
    )
    assert ops.feature_blocks(genome) == []
    assert ops.duplication_candidates(genome, random.Random(0), 5) == []
    assert ops.duplication_candidates(conv_conv_pool_conv_conv(), random.Random(0), 0) == []


def test_many_blocks_are_sampled_a_bounded_number_of_times():
    # Eight blocks between "valid" convolutions: 3**8 - 1 combinations, too many to list.
    layers = []
    for i in range(8):
        layers += [(f"conv{2 * i + 1}", Conv(4)), (f"conv{2 * i + 2}", Conv(4, padding=0))]
    genome = chain((1, 20, 20), *layers)
    assert len(ops.feature_blocks(genome)) == 8
    found = ops.duplication_candidates(genome, random.Random(1), 5)
    assert len(found) == 5
    assert len({G.canonical_hash(g) for g, _ in found}) == 5
    # At a depth limit of the 16 convolutions it has, no repeat fits: the tries run out.
    tight = ops.MutationConfig(max_convolutions=16)
    assert ops.duplication_candidates(genome, random.Random(1), 1000, config=tight) == []


@given(genomes(), SEEDS, st.integers(1, 6))
def test_candidates_are_valid_distinct_and_grow_the_source(genome, seed, count):
    source = G.canonical_hash(genome)
    blocks = ops.feature_blocks(genome)
    found = ops.duplication_candidates(genome, random.Random(seed), count)
    assert len(found) <= count
    if not blocks:
        assert found == []
    hashes = set()
    for candidate, repeats in found:
        G.validate(candidate)
        assert ops.admits(ops.DEFAULT_CONFIG, candidate)
        assert candidate.input_shape == genome.input_shape
        assert candidate.num_classes == genome.num_classes
        assert output_shape(candidate) == output_shape(genome)
        assert len(candidate) >= len(genome)
        assert len(repeats) == len(blocks) and all(1 <= r <= 3 for r in repeats)
        assert ops.duplicate_blocks(genome, repeats) == candidate
        assert G.loads(G.dumps(candidate)) == candidate
        hashes.add(G.canonical_hash(candidate))
    assert len(hashes) == len(found) and source not in hashes


@given(genomes(), SEEDS)
def test_the_same_seed_gives_the_same_candidates(genome, seed):
    first = ops.duplication_candidates(genome, random.Random(seed), 4)
    assert first == ops.duplication_candidates(genome, random.Random(seed), 4)


@given(genomes(), SEEDS)
def test_candidates_stay_within_a_run_s_limits(genome, seed):
    params = sum(G.parameter_counts(genome).values())
    config = ops.MutationConfig(
        bounds=G.Bounds(max_params=2 * params, max_nodes=len(genome) + 6),
        max_convolutions=ops.layer_census(genome)["conv"] + 2,
    )
    for candidate, _ in ops.duplication_candidates(genome, random.Random(seed), 4, 3, config):
        assert ops.admits(config, candidate)


@settings(max_examples=15)
@given(genomes(), SEEDS)
def test_candidates_compile_and_run(genome, seed):
    for candidate, _ in ops.duplication_candidates(genome, random.Random(seed), 2):
        logits = ph.compile_genome(candidate, seed=0).eval()(torch.randn(2, *genome.input_shape))
        assert logits.shape == (2, genome.num_classes)
