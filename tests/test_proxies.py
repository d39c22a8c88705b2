"""Zero-cost proxies and screening by them: every registered proxy scores the genome it names,
finitely and the same for a seed; a run that screens trains the share its proxy scores best,
decides the same after a resume, and survives a proxy that fails."""

from __future__ import annotations

import math

import attrs
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import genomics as G
import operators as ops
import phenotypes as ph
import phenotypes.proxies as phx
import zoo
from operators.testing import SMALL_SHAPES, genomes
from runner import config as cfg
from runner import proxies
from runner import rng as rngs
from runner.cli import main
from runner.evolution import screening
from runner.evolution.engine import SilentReporter
from runner.session import prepare_resume, start
from runner.store import FILENAME, Store

PROXIES = proxies.names()
# Small enough to score in a fraction of a second each on 8 x 8 digits.
ZOO = ["minimal", "lenet5", "squeeze_classifier", "resnet20"]
RUN = {
    "dataset": "digits",
    "population": 3,
    "generations": 2,
    "epochs": 1,
    "final_epochs": 0,
    "seed": 5,
    "device": "cpu",
    # A proxy of the minibatch as well as the weights (synflow reads only the images' shape).
    "screen": "snip",
    "screen_keep": 0.5,
}


@pytest.fixture(scope="module")
def digits():
    return ph.load_dataset("digits", seed=RUN["seed"])


def _batch(shape: tuple[int, int, int], classes: int, seed: int, size: int = 16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((size, *shape), generator=g), torch.randint(0, classes, (size,), generator=g)


def _on_digits(name: str, data) -> G.Genome:
    return G.retarget(zoo.load(name), data.input_shape, data.num_classes)


@pytest.mark.parametrize("genome_name", ZOO)
@pytest.mark.parametrize("name", PROXIES)
def test_every_proxy_is_finite_and_the_same_for_a_seed_on_zoo_genomes(name, genome_name, digits):
    genome = _on_digits(genome_name, digits)
    x, y = phx.minibatch(digits, 16, seed=0)
    function = proxies.get(name).function
    first = phx.score(genome, function, x, y, seed=3, name=name)
    assert first.ok, first.failure
    assert math.isfinite(first.value)
    assert phx.score(genome, function, x, y, seed=3, name=name) == first


# A 1 x 1 image leaves NASWOT too few activation patterns for its kernel to be invertible (a
# recorded failure: test_a_proxy_that_cannot_score_a_genome_gives_a_failure_not_an_error).
_IMAGES = st.sampled_from([s for s in SMALL_SHAPES if s[1] * s[2] >= 25])


@pytest.mark.parametrize("name", PROXIES)
@settings(max_examples=8)
@given(genome=genomes(input_shapes=_IMAGES), seed=st.integers(0, 2**31 - 1))
def test_every_proxy_is_finite_and_the_same_for_a_seed_on_random_genomes(name, genome, seed):
    x, y = _batch(genome.input_shape, genome.num_classes, seed % 1000)
    function = proxies.get(name).function
    first = phx.score(genome, function, x, y, seed=seed, name=name)
    assert first.ok, first.failure
    assert math.isfinite(first.value)
    assert phx.score(genome, function, x, y, seed=seed, name=name) == first


@pytest.mark.parametrize("name", PROXIES)
def test_a_score_is_the_proxy_of_the_genome_named_with_its_seed(name, digits):
    """Compiled from the genome with the seed its candidate trains with: other genomes and
    other initial weights score otherwise."""
    x, y = phx.minibatch(digits, 16, seed=0)
    function = proxies.get(name).function
    lenet = _on_digits("lenet5", digits)
    score = phx.score(lenet, function, x, y, seed=3, name=name).value
    with torch.random.fork_rng():
        torch.manual_seed(3)
        assert function(ph.compile_genome(lenet, seed=3), x, y) == score
    assert phx.score(lenet, function, x, y, seed=4, name=name).value != score
    minimal = _on_digits("minimal", digits)
    assert phx.score(minimal, function, x, y, seed=3, name=name).value != score


def _wider(genome: G.Genome, factor: int) -> G.Genome:
    nodes = []
    for node in genome.nodes:
        gene = node.gene
        if isinstance(gene, G.Conv):
            gene = attrs.evolve(gene, out_channels=gene.out_channels * factor)
        elif isinstance(gene, G.Dense) and node.id != "classifier":
            gene = attrs.evolve(gene, units=gene.units * factor)
        nodes.append(attrs.evolve(node, gene=gene))
    return G.validate(attrs.evolve(genome, nodes=tuple(nodes)))


@pytest.mark.parametrize("genome_name", ["lenet5", "minimal"])
def test_a_wider_network_has_a_larger_synflow(genome_name, digits):
    narrow = _on_digits(genome_name, digits)
    wide = _wider(narrow, 2)
    assert sum(G.parameter_counts(wide).values()) > sum(G.parameter_counts(narrow).values())
    x, y = phx.minibatch(digits, 16, seed=0)
    for seed in range(3):
        assert (
            phx.score(wide, phx.synflow, x, y, seed=seed).value
            > phx.score(narrow, phx.synflow, x, y, seed=seed).value
        )


def test_synflow_leaves_the_global_generators_alone(digits):
    x, y = phx.minibatch(digits, 16, seed=0)
    torch.manual_seed(11)
    before = torch.get_rng_state()
    phx.score(_on_digits("lenet5", digits), phx.synflow, x, y, seed=1)
    assert torch.equal(torch.get_rng_state(), before)


def test_a_proxy_that_cannot_score_a_genome_gives_a_failure_not_an_error():
    genome = G.minimal((2, 1, 1), 3)
    x = torch.tensor([[[[1.0]], [[2.0]]]] * 8)  # eight copies of one image: one pattern
    y = torch.zeros(8, dtype=torch.long)
    result = phx.score(genome, phx.naswot, x, y, seed=0)
    assert not result.ok and result.value is None
    assert result.failure == (
        "ValueError: the activation codes of the minibatch are not independent"
    )

    def nan(model, x, y):
        return float("nan")

    assert phx.score(genome, nan, x, y, seed=0).failure == "not a finite score: nan"


def test_screening_ranks_a_child_a_limit_refuses_last(digits):
    """A child over a limit is refused untrained: kept, it would take a trained child's place.
    The wider network scores higher by synflow (above) but is over max_params: both narrow
    ones are kept, the wide one is ranked last with the limit's reason; with one place only,
    the narrow one it outscored gets it. Without the limit the wide one ranks first."""
    from runner.evolution.candidate import Candidate
    from runner.evolution.costs import Costs

    narrow = _on_digits("lenet5", digits)
    wide = _wider(narrow, 2)
    limit = sum(G.parameter_counts(narrow).values())
    costs = Costs(cfg.from_dict({"max_params": limit}), "cpu")

    def refusal(candidate):
        refused = costs.refusal(candidate.individual.genome)
        return None if refused is None else refused.reason

    def candidates():
        return [
            Candidate(ops.Individual(g, weights=(1.0,), id=f"g1_{i}", parents=[], generation=1))
            for i, g in enumerate([wide, narrow, _on_digits("minimal", digits)])
        ]

    screen = {"proxy": "synflow", "data": digits, "batch_size": 16, "seed": 0}
    kept, records = screening.screen(candidates(), 2, refusal=refusal, **screen)
    assert [c.id for c in kept] == ["g1_1", "g1_2"]
    assert records[0]["rank"] == 2 and not records[0]["kept"] and records[0]["score"] is None
    assert records[0]["failure"].startswith("refused: over max_params: ")
    kept, _ = screening.screen(candidates(), 1, refusal=refusal, **screen)
    assert [c.id for c in kept] == ["g1_1"]
    _, records = screening.screen(candidates(), 1, **screen)
    assert records[0]["rank"] == 0 and records[0]["kept"]


def test_the_pool_is_the_children_over_the_share_kept():
    assert screening.pool_size(12, 0.5) == 24
    assert screening.pool_size(12, 0.3) == 40  # 12 / 0.3 is 40.000000000000007 in floating point
    assert screening.pool_size(3, 0.4) == 8
    assert screening.pool_size(5, 1.0) == 5


def test_screening_settings_are_checked_in_one_line():
    with pytest.raises(cfg.ConfigError, match=r"screen_keep: must be a number in \(0, 1\], got 0"):
        cfg.from_dict({"screen_keep": 0})
    with pytest.raises(cfg.ConfigError, match=r"^screen: no proxy named 'synfow' \(proxies: "):
        cfg.from_dict({"screen": "synfow"}).check()


def _run(run_dir, data, reporter=None, **values) -> tuple[list, list]:
    """Run a search; its individuals (id, genome hash, fitness) and its ``screened`` events
    (generation, id, data)."""
    engine = start(cfg.from_dict({**RUN, "run_dir": str(run_dir), **values}), data)
    try:
        engine.run(reporter)
    finally:
        engine.store.close()
    return _outcome(run_dir, data)


def _outcome(run_dir, data) -> tuple[list, list]:
    store = Store(run_dir / FILENAME, readonly=True)
    try:
        rows = [
            (r["id"], r["genome_hash"], store.evaluation(r["evaluation"]).fitness)
            for r in store.individuals()
        ]
        events = [(e["generation"], e["individual"], e["data"]) for e in store.events("screened")]
    finally:
        store.close()
    return sorted(rows), events


@pytest.fixture(scope="module")
def screened_run(tmp_path_factory, digits):
    run_dir = tmp_path_factory.mktemp("screened") / "run"
    return run_dir, *_run(run_dir, digits)


def test_screening_trains_the_share_its_proxy_scores_best(screened_run):
    _, rows, events = screened_run
    stored = {r[0]: r[1] for r in rows}
    children = RUN["population"]
    for gen in (1, 2):
        scored = [(i, d) for g, i, d in events if g == gen]
        assert len(scored) == screening.pool_size(children, RUN["screen_keep"]) == 6
        best = sorted(scored, key=lambda e: -e[1]["score"])[:children]
        kept = [i for i, d in scored if d["kept"]]
        assert sorted(kept) == sorted(i for i, _ in best)
        # Only the kept are individuals, each scored on its own genome.
        assert sorted(i for i in stored if i.startswith(f"g{gen}_")) == sorted(kept)
        assert all(stored[i] == d["genome_hash"] for i, d in scored if d["kept"])


def test_the_engine_scores_each_child_as_its_candidate_trains(screened_run, digits):
    """The score in a ``screened`` event is the proxy of the stored genome compiled with the
    child's training seed, on a minibatch of the training split drawn with the run's seed."""
    run_dir, _, events = screened_run
    _, child, data = next(e for e in events if e[2]["kept"])
    store = Store(run_dir / FILENAME, readonly=True)
    try:
        genome = G.loads(store.individual(child)["genome"])
    finally:
        store.close()
    x, y = phx.minibatch(digits, 64, RUN["seed"])
    seed = rngs.seed_for(RUN["seed"], child)
    function = proxies.get(RUN["screen"]).function
    assert phx.score(genome, function, x, y, seed=seed).value == data["score"]


class _StopInGeneration2(SilentReporter):
    def evaluated(self, engine, individual, result) -> None:
        if engine.generation == 2:
            raise KeyboardInterrupt


def test_a_resumed_run_screens_as_the_run_never_stopped(tmp_path, screened_run, digits):
    _, rows, events = screened_run
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _run(run_dir, digits, _StopInGeneration2())
    engine = prepare_resume(run_dir).engine(digits)
    try:
        assert engine.store.individual("g2_0") or engine.store.individual("g2_1")  # mid-way
        engine.run()
    finally:
        engine.store.close()
    assert _outcome(run_dir, digits) == (rows, events)


def test_screening_is_off_by_default_and_then_makes_only_the_children(tmp_path, digits):
    rows, events = _run(tmp_path / "run", digits, screen="", generations=1)
    assert events == []
    assert sorted(r[0] for r in rows if r[0].startswith("g1_")) == ["g1_0", "g1_1", "g1_2"]


def fails_on_small_networks(model, x, y):
    """The parameter count, or an error below 1,000 parameters."""
    count = sum(p.numel() for p in model.parameters())
    if count < 1000:
        raise RuntimeError(f"only {count} parameters\nsecond line")
    return float(count)


@pytest.fixture
def failing_proxy():
    proxies.register("fails_on_small", fails_on_small_networks)
    yield "fails_on_small"
    del proxies.PROXIES.extra["fails_on_small"]


def test_a_proxy_that_fails_is_recorded_and_the_run_goes_on(tmp_path, digits, failing_proxy):
    rows, events = _run(tmp_path / "run", digits, screen=failing_proxy, init="minimal")
    assert any(r[0].startswith("g2_") for r in rows)  # the run went on to its end
    failed = [d for _, _, d in events if d["score"] is None]
    assert failed and all(d["failure"].startswith("RuntimeError: only ") for d in failed)
    assert all("\n" not in d["failure"] for d in failed)
    for gen in (1, 2):
        scored = [d for g, _, d in events if g == gen]
        kept = [d for d in scored if d["kept"]]
        assert len(kept) == RUN["population"]
        # Failures rank after every score.
        if any(d["score"] is None for d in kept):
            assert all(d["kept"] for d in scored if d["score"] is not None)


PLUGIN = """
def param_count(model, x, y):
    '''The parameter count. Larger: a bigger network.'''
    return float(sum(p.numel() for p in model.parameters()))


def needs_four(model, x, y, extra):
    return 0.0
"""


def test_entry_point_proxies_register_and_bad_ones_are_refused(install_plugin):
    install_plugin(
        "ecogen-proxy-demo",
        "ecogen_proxy_demo",
        PLUGIN,
        {
            "ecogen.proxies": {
                "param_count": "ecogen_proxy_demo:param_count",
                "needs_four": "ecogen_proxy_demo:needs_four",
                "synflow": "ecogen_proxy_demo:param_count",
            }
        },
    )
    info = proxies.get("param_count")
    assert info.provider == "ecogen-proxy-demo" and info.summary == "The parameter count"
    refused = proxies.refused()
    assert refused["needs_four"] == (
        "proxy 'needs_four' of ecogen-proxy-demo: not a proxy (a function (model, x, y) -> float)"
    )
    assert refused["synflow"] == (
        "proxy 'synflow' of ecogen-proxy-demo: the name is already taken by ecogen"
    )
    assert proxies.get("synflow").function is phx.synflow
    listing = CliRunner().invoke(main, ["plugins"])
    assert listing.exit_code == 1
    lines = listing.output.splitlines()
    assert any(line.split()[:2] == ["param_count", "ecogen-proxy-demo"] for line in lines)
    for name in phx.BUILTIN:
        assert any(line.split()[:2] == [name, "ecogen"] for line in lines)
    assert refused["needs_four"] in listing.output


@pytest.mark.slow
def test_two_workers_screen_as_one_does(tmp_path, screened_run, digits):
    _, rows, events = screened_run
    assert _run(tmp_path / "run", digits, executor="local", workers=2) == (rows, events)
