"""Pattern binarization, evolutional dropout and SEP-Net blocks (docs/phenotypes.md)."""

import copy
import json
import random

import attrs
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings

import genomics as G
import operators as ops
import phenotypes as ph
import zoo
from genomics.testing import genomes
from runner.cli import main


def _conv_genome(*convs: G.Conv, shape=(4, 6, 6)) -> G.Genome:
    nodes = [G.Node("input", G.Input())]
    for i, gene in enumerate(convs, 1):
        nodes.append(G.Node(f"c{i}", gene, (nodes[-1].id,)))
    nodes += [
        G.Node("pool", G.Pool("avg", global_pool=True), (nodes[-1].id,)),
        G.Node("fc", G.Dense(3, activation="none"), ("pool",)),
        G.Node("output", G.Output(), ("fc",)),
    ]
    return G.Genome(shape, 3, nodes)


# --- pattern binarization -----------------------------------------------------------------


@pytest.mark.parametrize("scale", G.BINARY_SCALES)
def test_binarized_filters_take_exactly_two_values_and_1x1_layers_stay(scale):
    genome = _conv_genome(G.Conv(8, kernel=3), G.Conv(8, kernel=1), G.Conv(6, kernel=5, bias=True))
    model = ph.compile_genome(genome, seed=0)
    one_by_one = model.c2.weight.detach().clone()
    replaced = ph.binarize_patterns(model, scale, offset=0.04)
    assert replaced == ["c1", "c3"]
    assert type(model.c2) is torch.nn.Conv2d and torch.equal(model.c2.weight, one_by_one)
    for layer in (model.c1, model.c3):
        assert isinstance(layer, ph.BinaryPatternConv2d)
        for f, filt in enumerate(layer.weight.detach()):
            values = set(filt.flatten().tolist())
            alpha = layer.alpha.flatten()[f if scale == "filter" else 0].item()
            assert values <= {alpha, -alpha} and alpha > 0
            if scale == "offset":
                assert alpha == pytest.approx(0.04)
    # Signs are frozen; the per-filter scale learns, the layer offset does not.
    assert "sign" in dict(model.c1.named_buffers())
    assert ("c1.alpha" in dict(model.named_parameters())) == (scale == "filter")


def test_filter_scale_starts_at_the_mean_absolute_weight():
    conv = torch.nn.Conv2d(3, 4, 3, bias=False)
    layer = ph.BinaryPatternConv2d(conv, "filter")
    w = conv.weight.detach()
    expected = w.abs().mean(dim=(1, 2, 3), keepdim=True) * torch.where(w >= 0, 1.0, -1.0)
    assert torch.equal(layer.weight.detach(), expected)


def test_offset_scale_in_training_and_sizes():
    gene = G.Conv(16, kernel=3, batch_norm=False, binarized=True, binary_scale="offset")
    genome = _conv_genome(gene)
    model = ph.compile_genome(genome, seed=0)
    w = model.c1.weight.detach()
    x = torch.randn(2, 4, 6, 6)
    expected = torch.nn.functional.conv2d(x, 0.06 * w.sign(), padding=1)
    torch.testing.assert_close(model.c1(x), expected)
    weights = 16 * 4 * 9
    # One float32 offset for the layer instead of one scale per filter.
    assert ph.size_bytes(model) == -(-weights // 8) + 4 + 4 * (3 * 16 + 3)
    assert sum(G.storage_bytes(genome).values()) == ph.size_bytes(model)
    filter_scaled = _conv_genome(attrs.evolve(gene, binary_scale="filter"))
    assert G.canonical_hash(genome) != G.canonical_hash(filter_scaled)


@given(genomes(binarize=0.5))
@settings(max_examples=40, deadline=None)
def test_size_from_genes_equals_size_of_the_network(genome):
    model = ph.compile_genome(genome)
    assert sum(G.storage_bytes(genome).values()) == ph.size_bytes(model)
    assert sum(G.parameter_counts(genome).values()) == ph.count_params(model)


@pytest.mark.parametrize("scale", G.BINARY_SCALES)
def test_binarize_and_finetune_reports_three_stages_and_saves(tmp_path, scale):
    data = ph.load_dataset("digits", seed=0)
    genome = zoo.load("lenet5", data.input_shape, data.num_classes)
    model = ph.compile_genome(genome, seed=0)
    ph.train(model, data, ph.TrainSpec(epochs=2, device="cpu"))
    full_size = ph.size_bytes(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spec = ph.TrainSpec(epochs=2, lr=0.01, device="cpu")
    report = ph.binarize_and_finetune(model, data, spec, scale=scale)
    assert [s.name for s in report.stages] == ["full", "binarized", "finetuned"]
    assert report.layers == ("conv1", "conv2")
    assert report.stage("full").size_bytes == full_size > report.stage("binarized").size_bytes
    assert report.stage("finetuned").test_accuracy > 0.3
    # Fine-tuning moved the rest of the network but not one sign: each binarized layer still
    # holds the signs of the trained full-precision weights.
    for layer in report.layers:
        signs = torch.where(before[f"{layer}.weight"] >= 0, 1.0, -1.0)
        assert torch.equal(getattr(model, layer).sign, signs), layer
    moved = [
        k for k in ("fc1.weight", "fc2.weight") if not torch.equal(before[k], model.state_dict()[k])
    ]
    assert moved, "fine-tuning changed none of the full-precision layers"
    ph.save_model(tmp_path / "m.pt", genome, model)
    _, loaded = ph.load_model(tmp_path / "m.pt")
    x = data.x_test[:32]
    torch.testing.assert_close(loaded.eval()(x), model.eval()(x))
    assert ph.size_bytes(loaded) == report.stage("finetuned").size_bytes


def test_train_command_binarizes_and_reports_each_stage(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "lenet5",
            "--epochs",
            "2",
            "--device",
            "cpu",
            "--binarize-patterns",
            "--finetune-epochs",
            "1",
            "--binary-scale",
            "offset",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    for stage in ("full precision", "binarized", "fine-tuned"):
        assert stage in result.output
    summary = json.loads((out / "summary.json").read_text())
    stages = summary["binarization"]["stages"]
    assert set(stages) == {"full", "binarized", "finetuned"}
    assert summary["binarization"]["scale"] == "offset"
    assert summary["size_bytes"] == stages["finetuned"]["size_bytes"] < stages["full"]["size_bytes"]
    assert summary["test_accuracy"] == stages["finetuned"]["test_accuracy"]
    _, model = ph.load_model(out / "model.pt")
    assert isinstance(model.conv1, ph.BinaryPatternConv2d)


def test_train_command_refuses_finetuning_without_binarizing(tmp_path):
    result = CliRunner().invoke(main, ["train", "lenet5", "--finetune-epochs", "3"])
    assert result.exit_code != 0
    assert "--finetune-epochs: needs --binarize-patterns" in result.output


# --- evolutional dropout ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "per_channel", "samples"),
    [((32, 40), True, 1.0), ((16, 6, 5, 5), True, 0.5), ((16, 6, 5, 5), False, 1.0)],
)
def test_evolutional_dropout_is_unbiased_and_identity_in_eval(shape, per_channel, samples):
    torch.manual_seed(0)
    x = torch.randn(*shape).relu() + 0.05
    layer = ph.EvolutionalDropout(samples, per_channel).train()
    p = layer.probabilities(x)
    assert p.shape == (shape[1] if per_channel or len(shape) == 2 else x[0].numel(),)
    assert p.sum().item() == pytest.approx(1.0, abs=1e-6) and (p >= 0).all()
    mean = torch.stack([layer(x) for _ in range(2000)]).mean(0)
    assert ((mean - x).norm() / x.norm()).item() < 0.05
    # A single pass really drops units.
    assert (layer(x) == 0).any()
    layer.eval()
    assert torch.equal(layer(x), x)


def test_evolutional_probabilities_follow_second_moments():
    x = torch.tensor([[3.0, 0.0, 4.0], [3.0, 0.0, -4.0]])
    p = ph.EvolutionalDropout().probabilities(x)
    torch.testing.assert_close(p, torch.tensor([3 / 7, 0.0, 4 / 7]))
    # The dead unit is never drawn and its output stays 0, not NaN.
    out = ph.EvolutionalDropout().train()(x)
    assert torch.isfinite(out).all() and (out[:, 1] == 0).all()


def test_evolutional_dropout_gene_compiles_and_add_dropout_can_choose_it():
    gene = G.Dropout(kind="evolutional", samples=0.5, per_channel=False)
    genome = G.Genome(
        (1, 8, 8),
        10,
        [
            G.Node("input", G.Input()),
            G.Node("c", G.Conv(8), ("input",)),
            G.Node("drop", gene, ("c",)),
            G.Node("pool", G.Pool("avg", global_pool=True), ("drop",)),
            G.Node("fc", G.Dense(10, activation="none"), ("pool",)),
            G.Node("output", G.Output(), ("fc",)),
        ],
    )
    model = ph.compile_genome(genome)
    assert isinstance(model.drop, ph.EvolutionalDropout) and model.drop.samples == 0.5
    config = ops.MutationConfig(dropout_kinds=("evolutional",))
    child = ops.get("add_dropout").apply(zoo.load("lenet5"), random.Random(0), config)
    kinds = [n.gene.kind for n in child.nodes if isinstance(n.gene, G.Dropout)]
    assert kinds == ["evolutional"]


def test_dropout_kinds_ignore_each_others_fields_in_the_hash():
    def genome(gene):
        return G.Genome(
            (4, 6, 6),
            3,
            [
                G.Node("input", G.Input()),
                G.Node("d", gene, ("input",)),
                G.Node("pool", G.Pool("avg", global_pool=True), ("d",)),
                G.Node("fc", G.Dense(3, activation="none"), ("pool",)),
                G.Node("output", G.Output(), ("fc",)),
            ],
        )

    h = G.canonical_hash
    assert h(genome(G.Dropout(0.3))) == h(genome(G.Dropout(0.3, samples=0.2)))
    evo = G.Dropout(kind="evolutional", samples=0.7)
    assert h(genome(evo)) == h(genome(G.Dropout(0.1, kind="evolutional", samples=0.7)))
    assert h(genome(evo)) != h(genome(G.Dropout(kind="evolutional", samples=0.6)))


# --- schema -------------------------------------------------------------------------------


def test_schema_1_documents_load_and_keep_their_hash():
    genome = zoo.load("lenet5")
    doc = G.to_dict(genome)
    assert doc["schema_version"] == 3
    old = copy.deepcopy(doc)
    old["schema_version"] = 1
    del old["id_counter"]
    for node in old["nodes"]:
        for key in ("binary_scale", "binary_offset", "samples", "per_channel"):
            node.pop(key, None)
    assert G.from_dict(old) == genome
    # The hash of lenet5 as schema 1 computed it: runs stored before schema 2 still match.
    assert G.canonical_hash(genome) == (
        "2da8e21e1cb538bcd285050396fbaec521e30013a6285a90542cf4e755cf0cee"
    )
    old["nodes"][1]["binary_scale"] = "offset"
    with pytest.raises(G.GenomeError, match=r"nodes\[1\]\.binary_scale: a schema 2 field"):
        G.from_dict(old)
    with pytest.raises(G.GenomeError, match="unsupported version 4"):
        G.from_dict({**doc, "schema_version": 4})


# --- SEP-Net blocks -----------------------------------------------------------------------


def test_sep_module_template_compiles_to_named_layers_with_its_skip():
    nodes = [G.Node("input", G.Input()), G.Node("stem", G.Conv(16), ("input",))]
    nodes += G.sep_module("sep1", "stem", 16, kernel=3, groups=4, binarized=True)
    nodes += [
        G.Node("pool", G.Pool("avg", global_pool=True), ("sep1",)),
        G.Node("fc", G.Dense(10, activation="none"), ("pool",)),
        G.Node("output", G.Output(), ("fc",)),
    ]
    genome = G.validate(G.Genome((1, 8, 8), 10, nodes))
    ids = [n.id for n in genome.nodes]
    assert ids[2:10] == [
        "sep1_reduce",
        "sep1_prb1_pattern",
        "sep1_prb1_transform",
        "sep1_prb1",
        "sep1_prb2_pattern",
        "sep1_prb2_transform",
        "sep1_prb2",
        "sep1_restore",
    ]
    assert genome.node("sep1").inputs == ("sep1_restore", "stem")
    assert genome.node("sep1_reduce").gene.groups == 4
    assert genome.node("sep1_prb1_pattern").gene.binarized
    assert not genome.node("sep1_prb1_transform").gene.binarized  # 1x1: never
    model = ph.compile_genome(genome)
    assert "sep1 = sep1_restore_bn + stem_relu" in model.code
    assert isinstance(model.sep1_prb2_pattern, ph.PatternBinarizedConv2d)
    with pytest.raises(G.GenomeError, match="not a multiple of 4"):
        G.sep_module("sep2", "stem", 18)


def test_add_sep_module_inserts_a_module_that_duplication_can_repeat():
    genome = zoo.load("resnet20", (1, 8, 8), 10)
    info = ops.get("add_sep_module")
    child = info.apply(genome, random.Random(3), ops.DEFAULT_CONFIG)
    assert info.effect.problems(genome, child) == []
    prefix = genome.fresh_id("sep")
    sep = [n for n in child.nodes if n.id.startswith(prefix)]
    assert len(sep) == 9
    # A block of constant feature-map size holds the module: duplication repeats it whole.
    blocks = ops.feature_blocks(child)
    (i,) = [i for i, b in enumerate(blocks) if prefix in b.nodes]
    repeats = [2 if j == i else 1 for j in range(len(blocks))]
    doubled = ops.duplicate_blocks(child, repeats, bounds=G.Bounds(max_params=None))
    assert ops.layer_census(doubled)["conv"] >= ops.layer_census(child)["conv"] + 6
    assert ops.layer_census(doubled)["add"] >= ops.layer_census(child)["add"] + 3
    G.validate(doubled, G.Bounds(max_params=None))


def test_phenotype_mutations_are_off_by_default_and_on_with_a_weight():
    assert ops.get("add_sep_module").weight == ops.get("binarize_convolution").weight == 0
    assert all(ops.get(n).weight == 1 for n in ops.THESIS_MUTATIONS)
    genome = zoo.load("resnet20", (1, 8, 8), 10)
    rng = random.Random(0)
    drawn = set()
    for _ in range(200):
        ind = ops.Individual(genome)
        ops.mutate(ind, rng)
        drawn.update(ind.operators)
    assert drawn and not drawn & {"add_sep_module", "binarize_convolution"}
    ind = ops.Individual(genome)
    ops.mutate(ind, rng, weights={n: 0 for n in ops.THESIS_MUTATIONS} | {"binarize_convolution": 1})
    assert ind.operators == ["binarize_convolution"]
    assert sum(n.gene.binarized for n in ind.genome.nodes if isinstance(n.gene, G.Conv)) == 1
