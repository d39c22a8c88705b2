import pytest
import torch

import genomics as G
import phenotypes as ph
import zoo
from zoo.builders import BUILDERS


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_genome_is_valid_compiles_and_matches_its_builder(name):
    genome = zoo.load(name)
    assert genome == BUILDERS[name].build(), "run `python -m zoo.builders` to refresh the JSON"
    model = ph.compile_genome(genome).eval()
    with torch.inference_mode():
        assert model(torch.zeros(1, *genome.input_shape)).shape == (1, genome.num_classes)
    assert zoo.describe(name)


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_genome_has_its_documented_parameter_count_and_size(name):
    genome = zoo.load(name)
    model = ph.compile_genome(genome)
    assert ph.count_params(model) == zoo.params(name) == BUILDERS[name].params
    assert sum(G.parameter_counts(genome).values()) == zoo.params(name)
    # The size computed from the genes (ecogen show, limits) is the size of the network.
    assert sum(G.storage_bytes(genome).values()) == ph.size_bytes(model)


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_genome_retargets_to_digits_or_says_it_cannot(name):
    try:
        genome = zoo.load(name, (1, 8, 8), 10)
    except G.GenomeError as exc:
        # Strides and pooling built for larger images shrink 8x8 below 1x1.
        assert name not in ("minimal", "lenet5", "resnet20", "squeeze_classifier")
        assert str(exc).startswith("does not fit input (1, 8, 8) with 10 classes")
        return
    assert genome.input_shape == (1, 8, 8)
    G.validate(genome)
    assert ph.compile_genome(genome)(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_squeezenet_matches_torchvision_exactly():
    torchvision = pytest.importorskip("torchvision")
    reference = torchvision.models.squeezenet1_1(num_classes=1000)
    model = ph.compile_genome(zoo.load("squeezenet1_1")).eval()
    assert ph.count_params(model) == ph.count_params(reference) == 1_235_496
    # Layer by layer: the same parameter shapes in the same order.
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [tuple(p.shape) for p in reference.parameters()]
    # With torchvision's weights copied in, the two compute the same function.
    with torch.no_grad():
        for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
            mine.copy_(theirs)
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), reference.eval()(x), rtol=1e-4, atol=1e-4)


def test_sepnet_b_is_smaller_than_sepnet_r_and_binarizes_only_patterns():
    r, b = zoo.load("sepnet-r"), zoo.load("sepnet-b")
    assert zoo.params("sepnet-b") == zoo.params("sepnet-r")
    size_r, size_b = (sum(G.storage_bytes(g).values()) for g in (r, b))
    assert size_b < size_r
    binarized = [n for n in b.nodes if isinstance(n.gene, G.Conv) and n.gene.binarized]
    assert binarized and all(n.id.endswith("_pattern") and n.gene.kernel == 3 for n in binarized)
    for small, big in (("sepnet-r-cifar", "sepnet-r"), ("sepnet-b-cifar", "sepnet-b")):
        assert zoo.load(small).input_shape == (3, 32, 32) and zoo.params(small) < zoo.params(big)


def test_unknown_name():
    with pytest.raises(G.GenomeError, match="no genome named 'vgg'"):
        zoo.load("vgg")


def test_builders_and_registry_agree():
    assert set(BUILDERS) == set(zoo.names())
