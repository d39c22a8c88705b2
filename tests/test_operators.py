import copy
import pickle
import random
import sys

import attrs
import pytest
import torch
from click.testing import CliRunner
from deap import algorithms, tools
from hypothesis import event, given
from hypothesis import strategies as st

import genomics as G
import operators as ops
import phenotypes as ph
import zoo
from operators.testing import apply_chain, check_mutation, genomes, mutation_chains
from runner.cli import main

# Parametrized over the registry, so a newly registered operator (built-in or plugin) is tested
# without anyone adding it here. With 15 operators and the default 100 examples per test, each
# run applies 1500 chains of 5-8 mutations (3000 with CI=true).
OPERATORS = ops.names()


def test_the_thesis_table_is_registered_in_order():
    assert OPERATORS[:15] == list(ops.THESIS_MUTATIONS)
    toolbox = ops.make_toolbox()
    for name in ops.THESIS_MUTATIONS:
        assert callable(getattr(toolbox, name))
        assert ops.get(name).provider == "ecogen"


@pytest.mark.parametrize("name", OPERATORS)
@given(chain=st.data())
def test_mutation_chains_stay_valid_compile_and_round_trip(name, chain):
    genome, names, seed = chain.draw(mutation_chains(first=name))
    out, applied = apply_chain(genome, names, seed)
    event(f"{len(applied)} of {len(names)} mutations applied")
    G.validate(out)
    assert G.loads(G.dumps(out)) == out
    assert G.canonical_hash(G.loads(G.dumps(out))) == G.canonical_hash(out)
    model = ph.compile_genome(out, seed=0).train()
    logits = model(torch.randn(2, *out.input_shape))
    assert logits.shape == (2, out.num_classes)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", OPERATORS)
@given(genome=genomes(), seed=st.integers(0, 2**32 - 1))
def test_an_applied_mutation_does_what_its_metadata_says(name, genome, seed):
    info = ops.get(name)
    assert info.changes and info.function.__name__ == name
    check_mutation(info, genome, random.Random(seed))


@pytest.mark.parametrize("name", OPERATORS)
def test_mutations_apply_to_the_zoo_and_record_lineage(name):
    applied = 0
    for genome_name in zoo.names():
        ind = ops.Individual(zoo.load(genome_name), id="a")
        ind.fitness.values = (0.5,)
        if not ops.get(name).applies(ind.genome):
            with pytest.raises(ops.NotApplicable, match=name):
                ops.get(name).function(ind, rng=random.Random(0))
            continue
        (child,) = ops.get(name).function(ind, rng=random.Random(0))
        assert child is ind and child.operators == [name] and not child.fitness.valid
        applied += 1
    # Every operator applies to some zoo genome (removals after their addition at worst).
    if not applied:
        grown = ops.get(name.replace("remove_", "add_")).function(zoo.load("lenet5"))[0]
        assert ops.get(name).applies(grown)


def test_not_applicable_is_said_and_mutate_picks_another():
    genome = G.minimal((1, 8, 8), 10)
    for name in ("remove_skip", "remove_concatenate", "remove_dropout", "remove_pooling"):
        assert not ops.get(name).applies(genome)
        with pytest.raises(ops.NotApplicable):
            ops.get(name).function(genome, rng=random.Random(0))
    # Only removals that cannot apply, plus one that can: mutate must find the one that can.
    (out,) = ops.mutate(
        genome,
        rng=random.Random(1),
        operators=["remove_skip", "remove_dropout", "add_dropout"],
        weights={"remove_skip": 100, "remove_dropout": 100},
    )
    assert ops.layer_census(out)["dropout"] == 1


def test_mutations_respect_configured_bounds():
    config = ops.MutationConfig(
        bounds=G.Bounds(max_params=20_000), channel_range=(4, 64), max_convolutions=4
    )
    rng = random.Random(0)
    genome = G.minimal((1, 8, 8), 10)
    for _ in range(300):
        (genome,) = ops.mutate(genome, rng=rng, config=config, count=(1, 3))
        assert sum(G.parameter_counts(genome).values()) <= 20_000
        assert ops.layer_census(genome)["conv"] <= 4
        assert all(n.gene.out_channels <= 64 for n in genome.nodes if isinstance(n.gene, G.Conv))


# Where each mutation setting ends up in a genome: the gene a value of it must make.
_SETTING_GENES = {
    "kernel_sizes": lambda v: G.Conv(4, kernel=v),
    "new_conv_kernel": lambda v: G.Conv(4, kernel=v),
    "sep_kernel": lambda v: G.Conv(4, kernel=v),
    "channel_range": lambda v: G.Conv(v),
    "dropout_rates": lambda v: G.Dropout(v),
    "pool_kernel": lambda v: G.Pool(kernel=v),
    "dense_units": lambda v: G.Dense(v),
    "sep_groups": lambda v: G.Conv(4 * v, groups=v),  # the SEP module's 1x1 group convolutions
}
_setting_values = st.integers(-2, 12) | st.sampled_from(
    [0.0, 0.5, 0.95, 1.0, 2.0, 3.0, True, False, float("inf"), float("nan"), "3", None]
)


def _as_setting(field: str, value):
    if field in ("kernel_sizes", "dense_units"):
        return [value]
    if field in ("channel_range", "dropout_rates"):
        return (value, value)
    return value


@given(st.sampled_from(sorted(_SETTING_GENES)), _setting_values)
def test_mutation_settings_accept_exactly_what_genes_accept(field, value):
    try:
        _SETTING_GENES[field](value)
        gene_takes = True
    except (G.GenomeError, TypeError):
        gene_takes = False
    try:
        ops.MutationConfig(**{field: _as_setting(field, value)})
        setting_takes = True
    except ValueError as exc:
        setting_takes = False
        assert str(exc).startswith(field) and "\n" not in str(exc), str(exc)
    assert setting_takes == gene_takes


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kernel_sizes": [2, 4]}, "kernel_sizes[0]: must be odd, got 2"),
        ({"kernel_sizes": [3, 0]}, "kernel_sizes[1]: must be int >= 1, got 0"),
        ({"kernel_sizes": []}, "kernel_sizes: must be a list of at least one value, got []"),
        ({"new_conv_kernel": 4}, "new_conv_kernel: must be odd, got 4"),
        ({"channel_range": (0, 8)}, "channel_range: must be [low, high] integers with 1 <= low"),
        ({"channel_range": (8, 4)}, "channel_range: must be [low, high] integers"),
        ({"dropout_rates": (0.2, 1.0)}, "dropout_rates: must be [low, high] numbers with 0 <="),
        ({"dropout_rates": (-0.1, 0.5)}, "dropout_rates: must be [low, high] numbers"),
        ({"dense_units": [64, 0]}, "dense_units[1]: must be int >= 1, got 0"),
        ({"pool_kernel": 0}, "pool_kernel: must be int >= 1, got 0"),
        ({"max_convolutions": 0}, "max_convolutions: must be int >= 1, got 0"),
        ({"sep_groups": 0}, "sep_groups: must be int >= 1, got 0"),
        ({"sep_kernel": 2}, "sep_kernel: must be odd, got 2"),
        ({"dropout_kinds": ["gaussian"]}, "dropout_kinds: must be one or more of bernoulli"),
        ({"pool_modes": []}, "pool_modes: must be one or more of max, avg, got []"),
    ],
)
def test_mutation_settings_no_genome_satisfies_are_refused(settings, message):
    with pytest.raises(ValueError) as info:
        ops.MutationConfig(**settings)
    assert str(info.value).startswith(message), str(info.value)


def test_alter_channel_number_scales_within_a_factor_of_two():
    config = ops.MutationConfig(channel_range=(1, 10_000))
    genome = zoo.load("lenet5")
    before = {n.id: n.gene.out_channels for n in genome.nodes if isinstance(n.gene, G.Conv)}
    for seed in range(50):
        (out,) = ops.get("alter_channel_number").function(
            genome, rng=random.Random(seed), config=config
        )
        changed = [
            (before[n.id], n.gene.out_channels)
            for n in out.nodes
            if isinstance(n.gene, G.Conv) and n.gene.out_channels != before[n.id]
        ]
        (old, new), *_ = changed
        assert old / 2 - 1 <= new <= old * 2 + 1


def test_same_seed_same_mutations():
    genome = zoo.load("resnet20")
    a = ops.mutate(genome, rng=random.Random(7), count=(3, 3))[0]
    b = ops.mutate(genome, rng=random.Random(7), count=(3, 3))[0]
    assert a == b


def _cheap_fitness(ind: ops.Individual) -> tuple[float]:
    # Favour small networks: analytic parameters, no training.
    return (-float(sum(G.parameter_counts(ind.genome).values())),)


@pytest.mark.parametrize("algorithm", ["eaMuPlusLambda", "eaSimple"])
def test_deap_algorithms_run_unchanged_on_the_toolbox(algorithm):
    random.seed(0)
    toolbox = ops.make_toolbox(
        rng=random.Random(0), evaluate=_cheap_fitness, mutations_per_child=(1, 3)
    )
    population = [toolbox.individual(zoo.load("lenet5")) for _ in range(8)]
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", max)
    hof = tools.HallOfFame(3, similar=ops.same_genome)
    # Crossover and mutation both: genomes cross over (toolbox.mate) as DEAP's varAnd and varOr
    # expect, each child made of its parents' genes.
    if algorithm == "eaMuPlusLambda":
        population, logbook = algorithms.eaMuPlusLambda(
            population, toolbox, mu=8, lambda_=8, cxpb=0.4, mutpb=0.6, ngen=3,
            stats=stats, halloffame=hof, verbose=False,
        )  # fmt: skip
    else:
        population, logbook = algorithms.eaSimple(
            population, toolbox, cxpb=0.5, mutpb=0.8, ngen=3,
            stats=stats, halloffame=hof, verbose=False,
        )  # fmt: skip
    assert len(logbook) == 4 and logbook.select("gen") == [0, 1, 2, 3]
    assert all(ind.fitness.valid for ind in population)
    assert logbook[-1]["max"] >= logbook[0]["max"]
    assert any(ind.operators for ind in population)
    applied = {name for ind in population for name in ind.operators}
    assert applied & set(ops.crossover_names()), applied
    for ind in population:
        G.validate(ind.genome)


def test_toolbox_and_individuals_pickle_for_process_pools():
    toolbox = ops.make_toolbox(rng=random.Random(0), evaluate=_cheap_fitness)
    ind = toolbox.individual(zoo.load("lenet5"), id="g0_0")
    ind.fitness.values = (1.0,)
    names = [*OPERATORS, *ops.crossover_names(), "mutate", "mate", "select", "clone", "evaluate"]
    for name in [*names, "individual"]:
        pickle.loads(pickle.dumps(getattr(toolbox, name)))
    back = pickle.loads(pickle.dumps(ind))
    assert back.genome == ind.genome and back.fitness.values == (1.0,) and back.id == "g0_0"
    clone = copy.deepcopy(ind)
    assert clone.genome is ind.genome and clone.fitness.values == (1.0,)
    clone.operators.append("x")
    assert ind.operators == []


def test_multi_objective_weights_travel_with_the_individual():
    ind = ops.Individual(zoo.load("lenet5"), weights=(1.0, -1.0))
    ind.fitness.values = (0.9, 1000)
    clone = copy.deepcopy(pickle.loads(pickle.dumps(ind)))
    assert clone.fitness.weights == (1.0, -1.0) and clone.fitness.wvalues == (0.9, -1000)


PLUGIN = """
import attrs
import operators
from genomics import Conv


@operators.mutation(
    changes="doubles the first convolution's channels",
    effect=operators.Effect("conv", 0, "out_channels"),
)
def double_first_conv(genome, rng, config):
    for i, node in enumerate(genome.nodes):
        if isinstance(node.gene, Conv) and node.gene.out_channels * 2 <= config.channel_range[1]:
            gene = attrs.evolve(node.gene, out_channels=node.gene.out_channels * 2)
            nodes = list(genome.nodes)
            nodes[i] = attrs.evolve(node, gene=gene)
            return attrs.evolve(genome, nodes=tuple(nodes))
    return None


not_an_operator = len


@operators.mutation(
    changes="doubles the first convolution's channels, only when asked for",
    effect=operators.Effect("conv", 0, "out_channels"),
    weight=0.0,
)
def off_by_default(genome, rng, config):
    return double_first_conv.transform(genome, rng, config)
"""


def _install(install_plugin, value="ecogen_plugin_demo:double_first_conv"):
    install_plugin(
        "ecogen-plugin-demo", "ecogen_plugin_demo", PLUGIN, {"ecogen.operators": {"demo": value}}
    )


def test_entry_point_operators_register_and_pass_the_same_checks(install_plugin):
    _install(install_plugin)
    table = ops.registered()
    info = table["double_first_conv"]
    assert info.provider == "ecogen-plugin-demo"
    toolbox = ops.make_toolbox()
    assert callable(toolbox.double_first_conv)
    rng = random.Random(0)
    for seed in range(50):
        genome = G.random_genome(random.Random(seed), (1, 8, 8), 10)
        check_mutation(info, genome, rng)
        apply_chain(genome, ["double_first_conv", *random.Random(seed).sample(OPERATORS, 5)], seed)


def test_a_plugin_operator_keeps_the_weight_it_declares(install_plugin):
    """An operator declared off by default (weight 0) stays off when it comes from a plugin."""
    _install(install_plugin, "ecogen_plugin_demo:off_by_default")
    info = ops.registered()["off_by_default"]
    assert info.provider == "ecogen-plugin-demo" and info.weight == 0.0
    genome = zoo.load("lenet5")
    for seed in range(30):
        child = ops.Individual(genome)
        ops.mutate(child, rng=random.Random(seed), count=(3, 3))
        assert "off_by_default" not in child.operators
    child = ops.Individual(genome)
    ops.mutate(child, rng=random.Random(0), weights={"off_by_default": 1e9})
    assert child.operators == ["off_by_default"]


def test_a_bad_plugin_is_refused_with_its_name_and_the_others_still_load(install_plugin):
    _install(install_plugin, "ecogen_plugin_demo:not_an_operator")
    refused = ops.refused()["demo"]
    assert refused.startswith("operator 'demo' of ecogen-plugin-demo: not an ecogen operator")
    assert "\n" not in refused
    assert set(ops.THESIS_MUTATIONS) <= set(ops.names())  # the rest still load
    listing = CliRunner().invoke(main, ["plugins"])
    assert listing.exit_code == 1 and "refused:" in listing.output and refused in listing.output


def test_operators_never_import_torch():
    import subprocess

    code = "import sys, operators, operators.toolbox; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def _rename_first_conv(genome, rng, config):
    """Changes a node id only: the same architecture."""
    old = next(n.id for n in genome.nodes if isinstance(n.gene, G.Conv))
    new = f"{old}_renamed"
    nodes = [
        attrs.evolve(
            n, id=new if n.id == old else n.id, inputs=[new if i == old else i for i in n.inputs]
        )
        for n in genome.nodes
    ]
    return attrs.evolve(genome, nodes=tuple(nodes))


def _unseeded_channels(genome, rng, config):
    """Draws from the global generator instead of ``rng``: not reproducible."""
    import random as global_random

    i = next(i for i, n in enumerate(genome.nodes) if isinstance(n.gene, G.Conv))
    node = genome.nodes[i]
    gene = attrs.evolve(node.gene, out_channels=global_random.randint(4, 64))
    return attrs.evolve(
        genome, nodes=(*genome.nodes[:i], attrs.evolve(node, gene=gene), *genome.nodes[i + 1 :])
    )


def _dropout_in_place_of_a_pool(genome, rng, config):
    """Puts a dropout where a pooling layer was, keeping its id."""
    i = next(
        i
        for i, n in enumerate(genome.nodes)
        if isinstance(n.gene, G.Pool) and not n.gene.global_pool
    )
    node = genome.nodes[i]
    return attrs.evolve(
        genome,
        nodes=(
            *genome.nodes[:i],
            attrs.evolve(node, gene=G.Dropout(rate=0.2)),
            *genome.nodes[i + 1 :],
        ),
    )


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (_rename_first_conv, "changed node ids only"),
        (_unseeded_channels, "is not reproducible"),
        (_dropout_in_place_of_a_pool, "was a pool, is now a dropout"),
    ],
)
def test_check_mutation_catches_what_apply_lets_through(transform, message):
    """Each of these gives a valid genome other than its input, all ``apply`` checks; the
    checks exported for plugin authors must still refuse them."""
    info = ops.OperatorInfo("broken", None, transform, "broken on purpose", None, "tests")
    genome = zoo.load("lenet5")
    info.apply(genome, random.Random(0), ops.DEFAULT_CONFIG)  # apply accepts it
    with pytest.raises(AssertionError, match=message):
        for seed in range(20):  # a random draw may repeat once; not twenty times
            check_mutation(info, genome, random.Random(seed))
