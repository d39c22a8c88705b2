import pytest
import torch

import genomics as G
import phenotypes as ph
import zoo
from zoo.builders import BUILDERS


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_genome_is_valid_compiles_and_matches_its_builder(name):
    genome = zoo.load(name)
    assert genome == BUILDERS[name][0](), "run `python -m zoo.builders` to refresh the JSON"
    model = ph.compile_genome(genome).eval()
    assert model(torch.zeros(2, *genome.input_shape)).shape == (2, genome.num_classes)
    assert zoo.describe(name)


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_genome_retargets_to_digits(name):
    genome = zoo.load(name, (1, 8, 8), 10)
    assert genome.input_shape == (1, 8, 8)
    G.validate(genome)


def test_unknown_name():
    with pytest.raises(G.GenomeError, match="no genome named 'vgg'"):
        zoo.load("vgg")


def test_builders_and_registry_agree():
    assert set(BUILDERS) == set(zoo.names())
