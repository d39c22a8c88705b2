"""The first population of ``init = "mixed"``: zoo genomes scaled to the run's limits, then
random genomes."""

import json
import random
import sqlite3

import pytest

import phenotypes as ph
import zoo
from genomics import Bounds, canonical_hash, flop_counts, parameter_counts
from runner import config as cfg
from runner.errors import ConfigError
from runner.evolution.population import (
    MIXED_SKIPS,
    fit_zoo,
    initial_genomes,
    mixed_zoo,
    scale_widths,
)
from runner.session import start


def _params(genome) -> int:
    return sum(parameter_counts(genome).values())


def _flops(genome) -> int:
    return sum(flop_counts(genome).values())


def _layers(genome) -> list:
    """The architecture without its widths: node ids, gene types and inputs."""
    return [(n.id, n.gene.TYPE, n.inputs) for n in genome.nodes]


@pytest.fixture(scope="module")
def digits():
    return ph.load_dataset("digits", seed=0)


def _first(digits, size: int, seed: int = 0, **values) -> tuple[list, list]:
    experiment = cfg.from_dict({"init": "mixed", **values})
    notes: list = []
    genomes = initial_genomes(
        experiment,
        digits,
        random.Random(seed),
        experiment.mutation_config(),
        size,
        notes=notes,
    )
    return genomes, notes


def test_mixed_gives_zoo_genomes_then_random_ones_each_within_the_limits(digits):
    genomes, notes = _first(digits, 6, max_params=20_000, max_flops=400_000)
    assert len(genomes) == 6
    taken = {i: note["zoo"] for i, note in notes if i is not None}
    # On 8x8 images the 28x28 and 32x32 networks come first, the cheapest first; half the
    # population at most.
    assert taken == {0: "lenet5", 1: "squeeze_classifier", 2: "resnet20"}
    for i, name in taken.items():
        assert _layers(genomes[i]) == _layers(zoo.load(name, (1, 8, 8), 10))
        assert genomes[i] != zoo.load(name, (1, 8, 8), 10) or name == "lenet5"
    zoo_hashes = {canonical_hash(g) for g in genomes[:3]}
    assert not zoo_hashes & {canonical_hash(g) for g in genomes[3:]}
    for genome in genomes:
        assert _params(genome) <= 20_000 and _flops(genome) <= 400_000
    left_out = {note["zoo"]: note["left_out"] for i, note in notes if i is None}
    assert left_out["minimal"] == MIXED_SKIPS["minimal"]
    assert left_out["sepnet-b"].startswith("does not fit the data")
    assert left_out["mobilenet-v1-0.5"] == "the same network as mobilenet-v1"
    assert left_out["mobilenet-v1"].startswith("no room")
    assert len(taken) + len(left_out) == len(zoo.names())


def test_mixed_is_the_same_for_a_seed_and_its_random_part_follows_the_seed(digits):
    first, notes = _first(digits, 6, seed=4, max_params=20_000)
    again, notes_again = _first(digits, 6, seed=4, max_params=20_000)
    other, _ = _first(digits, 6, seed=5, max_params=20_000)
    assert [canonical_hash(g) for g in first] == [canonical_hash(g) for g in again]
    assert notes == notes_again
    assert first[:3] == other[:3]
    assert [canonical_hash(g) for g in first[3:]] != [canonical_hash(g) for g in other[3:]]


def test_random_genomes_of_mixed_keep_the_draw_budget_and_zoo_genomes_only_the_limits(digits):
    # init_flops_per_pixel x 64 pixels = 64,000 FLOPs for the random draws; resnet20 costs more.
    genomes, _ = _first(digits, 6, max_params=20_000, init_flops_per_pixel=1000)
    assert _flops(genomes[2]) > 64_000
    assert all(_flops(g) <= 64_000 for g in genomes[3:])


def test_without_limits_the_zoo_genomes_keep_their_widths(digits):
    genomes, notes = _first(digits, 2)
    assert genomes[0] == zoo.load("lenet5", (1, 8, 8), 10)
    expected = {"zoo": "lenet5", "width": 1.0, "params": _params(genomes[0])}
    assert notes[0] == (0, {**expected, "flops": _flops(genomes[0])})


@pytest.mark.parametrize("name", zoo.names())
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_every_zoo_genome_scales_within_a_small_limit_or_is_left_out_with_its_reason(name, shape):
    bounds = Bounds(max_params=5_000, max_flops=2_000_000)
    fitted = fit_zoo(name, shape, 10, bounds)
    if fitted.genome is None:
        assert fitted.reason
        # Every zoo genome but the weak seed fits 32x32 images; the 224x224 SEP-Nets shrink
        # 28x28 maps below 1x1.
        assert name in MIXED_SKIPS or (shape == (1, 28, 28) and name in ("sepnet-b", "sepnet-r"))
        return
    genome = fitted.genome
    assert _params(genome) <= 5_000 and _flops(genome) <= 2_000_000
    assert _layers(genome) == _layers(zoo.load(name, shape, 10))
    assert genome.input_shape == shape and genome.num_classes == 10
    if fitted.width < 1:  # the widest that keeps the limits: twice as wide is over one
        wider = scale_widths(zoo.load(name, shape, 10), 2 * fitted.width)
        assert _params(wider) > 5_000 or _flops(wider) > 2_000_000


def test_a_zoo_genome_over_the_limit_at_every_width_of_1_is_left_out():
    fitted = fit_zoo("resnet20", (3, 32, 32), 10, Bounds(max_params=100))
    assert fitted.genome is None
    assert fitted.reason.startswith("over max_params: ")
    assert fitted.reason.endswith("> 100 with every width at 1")


def test_depthwise_convolutions_stay_depthwise_when_narrower():
    genome = scale_widths(zoo.load("mobilenet-v1", (3, 32, 32), 10), 0.25)
    convs = [n.gene for n in genome.nodes if n.gene.TYPE == "conv" and n.gene.groups > 1]
    assert convs and all(c.groups == c.out_channels for c in convs)
    kept, _ = mixed_zoo((3, 32, 32), 10, Bounds())
    assert "mobilenet-v1" in [f.name for f in kept]


def test_init_mixed_is_a_valid_setting_and_a_bad_init_names_it():
    assert cfg.from_dict({"init": "mixed"}).init == "mixed"
    with pytest.raises(ConfigError, match="init: must be minimal, random, mixed or zoo:NAME"):
        cfg.from_dict({"init": "zoo"})


def test_a_tiny_run_with_init_mixed_records_which_zoo_genomes_it_took(tmp_path, digits):
    run_dir = tmp_path / "run"
    experiment = cfg.from_dict(
        {
            "dataset": "digits",
            "init": "mixed",
            "population": 4,
            "generations": 1,
            "epochs": 1,
            "final_epochs": 0,
            "max_params": 20_000,
            "device": "cpu",
            "run_dir": str(run_dir),
        }
    )
    engine = start(experiment, digits)
    try:
        summary = engine.run()
    finally:
        engine.store.close()
    assert summary["best"]["params"] <= 20_000
    db = sqlite3.connect(run_dir / "ecogen.sqlite")
    try:
        events = db.execute(
            "SELECT kind, individual, data FROM events WHERE source = 'init' ORDER BY id"
        ).fetchall()
        first = dict(db.execute("SELECT id, genome_hash FROM individuals WHERE generation = 0"))
    finally:
        db.close()
    taken = {i: json.loads(d)["zoo"] for k, i, d in events if k == "zoo_genome"}
    assert taken == {"g0_0": "lenet5", "g0_1": "squeeze_classifier"}
    assert len(first) == 4
    lenet = fit_zoo("lenet5", (1, 8, 8), 10, Bounds(max_params=20_000)).genome
    assert first["g0_0"] == canonical_hash(lenet)
    left = [json.loads(d)["zoo"] for k, _, d in events if k == "left_out"]
    assert sorted(left + list(taken.values())) == zoo.names()
