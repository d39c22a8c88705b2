import math

import attrs
import pytest
import torch
from hypothesis import assume, example, given
from hypothesis import strategies as st
from torch import nn

import genomics as G
import phenotypes as ph
import zoo
from genomics.testing import SMALL_SHAPES, genomes


@given(genomes(), st.integers(1, 3))
def test_every_valid_genome_compiles_and_maps_images_to_logits(genome, batch):
    model = ph.compile_genome(genome, seed=0)
    model.train(batch > 1)  # batch norm needs two images per channel to train
    out = model(torch.randn(batch, *genome.input_shape))
    assert out.shape == (batch, genome.num_classes)
    assert torch.isfinite(out).all()
    assert ph.count_params(model) == sum(G.parameter_counts(genome).values())
    compile(model.code, "<generated>", "exec")


@given(genomes(input_shapes=st.sampled_from([*SMALL_SHAPES, (1, 28, 28), (3, 32, 32)])))
def test_analytic_flops_equal_torchs_count_for_every_gene(genome):
    """``genomics.flop_counts`` (no torch) counts what ``torch.utils.flop_counter`` counts, so
    a run's ``max_flops`` can be checked on a genome before anything is built; binarized
    convolutions, grouped ones, strides, joins that resample and pad, dropout of every kind
    and dense heads included (generated genomes hold all of them)."""
    model = ph.compile_genome(genome, seed=0)
    assert ph.count_flops(model, genome.input_shape) == sum(G.flop_counts(genome).values())


@given(genomes())
def test_seeded_compilation_is_reproducible(genome):
    a, b = ph.compile_genome(genome, seed=3), ph.compile_genome(genome, seed=3)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_generated_code_reads_like_pytorch():
    code = ph.compile_genome(zoo.load("lenet5")).code
    assert "conv1 = self.conv1(x)" in code
    assert "fc1_flatten = torch.flatten(pool2, 1)" in code
    assert "torch._C" not in code


def test_join_rule_pads_channels_and_resamples():
    genome = G.Genome(
        (1, 4, 4),
        2,
        [
            G.Node("input", G.Input()),
            G.Node(
                "wide",
                G.Conv(3, kernel=1, stride=2, padding=0, batch_norm=False, activation="none"),
                ("input",),
            ),
            G.Node("join", G.Add(), ("wide", "input")),
            G.Node("pool", G.Pool("avg", global_pool=True), ("join",)),
            G.Node("fc", G.Dense(2, activation="none"), ("pool",)),
            G.Node("output", G.Output(), ("fc",)),
        ],
    )
    model = ph.compile_genome(genome)
    assert "adaptive_avg_pool2d(x, (2, 2))" in model.code
    assert "torch.nn.functional.pad" in model.code
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # The shortcut is averaged down to 2x2 and zero-padded from 1 to 3 channels.
    expected = model.wide(x).clone()
    expected[:, :1] += nn.functional.avg_pool2d(x, 2)
    values = {}

    class Capture(torch.fx.Interpreter):
        def run_node(self, n):
            values[n.name] = super().run_node(n)
            return values[n.name]

    Capture(model).run(x)
    assert torch.allclose(values["join"], expected)


def _resnet20_reference() -> nn.Module:
    """ResNet-20 written by hand (He et al. 2016, option A shortcuts)."""

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)

    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)]
    cin = 16
    for cout in (16, 32, 64):
        for i in range(3):
            layers.append(Block(cin, cout, 2 if cout != 16 and i == 0 else 1))
            cin = cout
    layers.append(nn.Linear(64, 10))
    return nn.Sequential(*layers)


def test_resnet20_matches_the_reference_parameter_for_parameter():
    model = ph.compile_genome(zoo.load("resnet20"))
    ours = [tuple(p.shape) for p in model.parameters()]
    theirs = [tuple(p.shape) for p in _resnet20_reference().parameters()]
    assert ours == theirs
    assert ph.count_params(model) == 269_722


def test_squeezenet_style_head_matches_a_hand_written_model():
    reference = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1, bias=False),
        nn.BatchNorm2d(128),
        nn.ReLU(),
        nn.Conv2d(128, 10, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    model = ph.compile_genome(zoo.load("squeeze_classifier"))
    model.load_state_dict(
        dict(zip(model.state_dict(), reference.state_dict().values(), strict=True))
    )
    x = torch.randn(2, 3, 32, 32)
    model.eval(), reference.eval()
    assert torch.allclose(model(x), reference(x), atol=1e-5)


def test_flops_of_a_single_convolution():
    genome = G.Genome(
        (3, 8, 8),
        4,
        [
            G.Node("input", G.Input()),
            G.Node("c", G.Conv(4, kernel=3, batch_norm=False, activation="none"), ("input",)),
            G.Node("p", G.Pool("avg", global_pool=True), ("c",)),
            G.Node("output", G.Output(), ("p",)),
        ],
    )
    model = ph.compile_genome(genome)
    assert ph.count_flops(model, (3, 8, 8)) == 2 * 4 * 3 * 9 * 8 * 8
    assert G.flop_counts(genome) == {"input": 0, "c": 2 * 4 * 3 * 9 * 8 * 8, "p": 0, "output": 0}


@pytest.mark.parametrize("name", zoo.names())
def test_analytic_flops_of_every_zoo_genome_equal_torchs(name):
    genome = zoo.load(name)
    model = ph.compile_genome(genome, seed=0)
    assert ph.count_flops(model, genome.input_shape) == sum(G.flop_counts(genome).values())


def test_size_counts_binarized_weights_as_bits():
    def genome(binarized: bool) -> G.Genome:
        return G.Genome(
            (16, 4, 4),
            2,
            [
                G.Node("input", G.Input()),
                G.Node(
                    "c", G.Conv(32, kernel=3, batch_norm=False, binarized=binarized), ("input",)
                ),
                G.Node("p", G.Pool("avg", global_pool=True), ("c",)),
                G.Node("fc", G.Dense(2, activation="none"), ("p",)),
                G.Node("output", G.Output(), ("fc",)),
            ],
        )

    full = ph.compile_genome(genome(False))
    binary = ph.compile_genome(genome(True))
    assert ph.count_params(full) == ph.count_params(binary)
    weights = 32 * 16 * 9
    assert ph.size_bytes(full) == 4 * ph.count_params(full)
    assert (
        ph.size_bytes(binary) == ph.size_bytes(full) - 4 * weights + math.ceil(weights / 8) + 4 * 32
    )


def test_binarized_convolution_uses_scaled_signs_and_passes_gradients():
    conv = ph.PatternBinarizedConv2d(2, 3, 3, padding=1, bias=False)
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    w = conv.weight.detach()
    alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True)
    expected = nn.functional.conv2d(x, alpha * w.sign(), padding=1)
    out = conv(x)
    assert torch.allclose(out, expected, atol=1e-6)
    out.sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_saved_models_load_with_identical_outputs(tmp_path):
    genome = zoo.load("lenet5")
    model = ph.compile_genome(genome, seed=1).eval()
    ph.save_model(tmp_path / "model.pt", genome, model)
    loaded_genome, loaded = ph.load_model(tmp_path / "model.pt")
    x = torch.randn(2, *genome.input_shape)
    assert loaded_genome == genome
    assert torch.equal(model(x), loaded.eval()(x))


def test_measure_reports_everything():
    m = ph.measure(ph.compile_genome(zoo.load("minimal")), (1, 28, 28))
    assert m.params == 178 and m.size_bytes == 178 * 4 and m.flops > 0 and m.latency_ms > 0


@pytest.mark.parametrize("activation", G.ACTIVATIONS)
def test_every_activation_compiles(activation):
    genome = G.Genome(
        (1, 4, 4),
        2,
        [
            G.Node("input", G.Input()),
            G.Node("c", G.Conv(2, activation=activation), ("input",)),
            G.Node("fc", G.Dense(2, activation="none"), ("c",)),
            G.Node("output", G.Output(), ("fc",)),
        ],
    )
    assert ph.compile_genome(genome)(torch.randn(2, 1, 4, 4)).shape == (2, 2)


def test_node_ids_that_shadow_module_attributes_still_compile():
    genome = G.Genome(
        (1, 4, 4),
        2,
        [
            G.Node("input", G.Input()),
            G.Node("training", G.Conv(2), ("input",)),
            G.Node("forward", G.Dropout(0.1), ("training",)),
            G.Node("class_", G.Dense(2, activation="none"), ("forward",)),
            G.Node("output", G.Output(), ("class_",)),
        ],
    )
    assert ph.compile_genome(genome)(torch.randn(2, 1, 4, 4)).shape == (2, 2)


# Near misses of the id rule, keywords and names the compiled module already uses.
_ID_EDGES = ["a\n", "conv\n", "a\r", "A", "1a", "a-b", "a b", "", "_", "if", "x", "training"]


# "$" also matches before a final newline, so the regex strategy draws "conv\n" too.
_node_ids = (
    st.sampled_from(_ID_EDGES) | st.from_regex(r"^[a-z_][a-z0-9_]{0,8}$") | st.text(max_size=12)
)


@given(_node_ids, st.integers(0, 4))
@example("a\n", 1)
def test_every_node_id_that_validates_compiles(node_id, index):
    try:
        G.Node(node_id, G.Input())
    except G.GenomeError:
        return  # refused where it is written, which is all the rule promises
    genome = G.minimal((1, 6, 6), 3, channels=4)
    old = genome.nodes[index].id
    assume(node_id == old or node_id not in {n.id for n in genome.nodes})

    def renamed(name: str) -> str:
        return node_id if name == old else name

    nodes = [
        attrs.evolve(n, id=renamed(n.id), inputs=tuple(map(renamed, n.inputs)))
        for n in genome.nodes
    ]
    genome = G.validate(attrs.evolve(genome, nodes=nodes))
    model = ph.compile_genome(genome, seed=0).eval()
    assert model(torch.randn(2, 1, 6, 6)).shape == (2, 3)
