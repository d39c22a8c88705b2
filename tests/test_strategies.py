import json
import math
import sqlite3
import sys

import pytest
from click.testing import CliRunner
from deap import tools
from hypothesis import given, settings
from hypothesis import strategies as hs

import phenotypes as ph
import strategies as st
from operators import PluginError
from runner import config as cfg
from runner.cli import main
from runner.session import open_store, start
from strategies.testing import check_strategy, decide, generations, make_context

ALL = [*st.names(), *(p for p in st.PRESETS if p not in st.names())]


# --- every registered strategy and preset honours the contract ---------------------------------


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=12, deadline=None)
@given(generation=generations(), seed=hs.integers(0, 2**32 - 1))
def test_every_strategy_honours_the_contract(name, generation, seed):
    population, children = generation
    check_strategy(lambda: st.create([name]), population, children, seed)


@pytest.mark.parametrize("name", ALL)
def test_every_strategy_is_listed_with_its_options(name):
    for member, _ in st.expand([name]):
        info = st.get(member)
        assert info.summary and info.provider
        assert isinstance(st.options(member), dict)


# --- what each built-in decides -------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(generation=generations(min_size=4), keep=hs.sampled_from([0.25, 0.5, 1.0]))
def test_aggressive_selection_spreads_children_over_the_top_k(generation, keep):
    population, children = generation
    search = st.Search([st.Aggressive(keep=keep, mutations=(1, 3))])
    decided = decide(search, population, children)
    k = math.ceil(len(population) * keep)
    assert decided["plan"] == (k, len(population), (1, 3), 8)
    top = {i.id for i in st.best_first(population)[:k]}
    assert set(decided["parents"]) <= top
    counts = [decided["parents"].count(i) for i in top]
    assert max(counts) - min(counts) <= 1  # spread evenly


def _with_history(individual, accuracies):
    individual.evaluation["history"] = [
        {"epoch": e + 1, "train_loss": 1.0, "val_accuracy": a} for e, a in enumerate(accuracies)
    ]
    individual.evaluation["planned_epochs"] = len(accuracies)
    individual.reused = False
    return individual


@settings(max_examples=10, deadline=None)
@given(generation=generations(min_size=4, max_size=6))
def test_extinction_thresholds_and_kills_at_the_landmarks(generation):
    population, children = generation
    early = [0.1, 0.2, 0.3, 0.4]
    for i, ind in enumerate(population):
        _with_history(ind, [early[i % 4], 0.5 + 0.1 * (i % 4), 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    ext = st.Extinction()
    assert ext.landmark_epochs(8) == [2, 4] and ext.landmark_epochs(1) == []
    events = []
    context = make_context(0, population, events=events)
    ext.ecogen_generation_end(population, context)
    s = {(p, e): v for p, e, v in ext.thresholds}
    assert s[8, 2] == pytest.approx(
        sum(ind.evaluation["history"][1]["val_accuracy"] for ind in population) / len(population)
    )
    below = ext.ecogen_on_epoch(children[0], 2, 8, s[8, 2] - 0.01, context)
    assert below.status == "extinct" and below.details["landmark"] == 1
    assert ext.ecogen_on_epoch(children[0], 2, 8, s[8, 2], context) is None
    assert ext.ecogen_on_epoch(children[0], 2, 4, 0.0, context) is None  # other training length
    assert events[-1]["kind"] == "extinct" and events[-1]["individual"] == children[0].id


def test_extinction_threshold_statistics():
    values = [0.2, 0.4, 0.6, 0.8]
    assert st.Extinction().statistic(values) == pytest.approx(0.5)
    assert st.Extinction(threshold="quantile", quantile=0.75).statistic(values) == pytest.approx(
        0.65
    )
    assert st.Extinction(threshold="kth", k=2).statistic(values) == 0.6
    assert st.Extinction(threshold="kth", k=9).statistic(values) == 0.2


def test_succession_switches_by_count_or_stagnation():
    plan = st.GenerationPlan(12, 12, (1, 2), 8, 12)
    succ = st.Succession(switch_generation=3)
    context = make_context(0, [], plan)
    assert succ.ecogen_next_phase(context) == "primary"
    primary = st.Search([succ]).plan(plan, context)
    assert (primary.population, primary.mutations, primary.epochs) == (12, (1, 3), 4)
    context.generation = 1
    assert succ.ecogen_next_phase(context) == "primary"
    context.generation = 2
    assert succ.ecogen_next_phase(context) == "secondary"
    secondary = st.Search([succ]).plan(plan, context)
    assert (secondary.population, secondary.mutations, secondary.epochs) == (6, (1, 1), 8)

    stale = st.Succession(switch_generation=100, stagnation=2)
    stale.ecogen_next_phase(context)
    for _ in range(3):
        stale.ecogen_generation_end([])
    assert stale.ecogen_next_phase(make_context(1, [])) == "secondary"


@settings(max_examples=15, deadline=None)
@given(generation=generations(min_size=3))
def test_nsga2_keeps_the_non_dominated_first(generation):
    population, children = generation
    nsga = st.NSGA2()
    candidates = population + children
    for ind in candidates:
        ind.fitness.weights = (1.0, -1.0)
        ind.fitness.values = (ind.fitness.values[0], float(ind.evaluation["params"]))
    kept = st.Search([nsga]).select_survivors(candidates, len(population), make_context(1, []))
    front = tools.sortNondominated(candidates, len(candidates), first_front_only=True)[0]
    if len(front) <= len(kept):
        assert all(any(f is k for k in kept) for f in front)


@settings(max_examples=10, deadline=None)
@given(generation=generations(min_size=2))
def test_mimicry_teaches_from_the_best_and_duplication_copies_it(generation):
    population, children = generation
    context = make_context(1, population)
    advice = st.Mimicry(temperature=2.0, weight=0.3).ecogen_training(children[0], context)
    best = context.best
    if children[0].genome != best.genome:
        assert (advice.teacher, advice.temperature, advice.weight) == (best.id, 2.0, 0.3)
    assert st.Mimicry().ecogen_training(best, context) is None
    proposals = st.Search([st.Duplication(candidates=2)]).propose(population, context)
    assert len(proposals) <= 2
    for p in proposals:
        assert p.parents == (best.id,) and p.note["source"] == best.id
        assert p.operators == ("gene_duplication",) and p.source == "duplication"


@settings(max_examples=15, deadline=None)
@given(
    generation=generations(min_size=2),
    cost=hs.sampled_from(st.nsga2.COSTS),
    weight=hs.sampled_from([-0.07, -0.5, 0.0]),
)
def test_cost_aware_selection_ranks_by_accuracy_times_relative_cost(generation, cost, weight):
    """MnasNet's reward: accuracy * (cost / target) ** weight, 0 for a failure; survivors are
    the best rewards, parents win tournaments on it, and each generation's best is recorded."""
    population, children = generation
    strategy = st.CostAware(cost=cost, target=1000.0, weight=weight)
    candidates = population + children
    for ind in candidates:
        value = ind.evaluation[cost]
        want = ind.fitness.values[0] * (value / 1000.0) ** weight
        if ind.evaluation["status"] == "failed":
            want = 0.0
        assert strategy.reward(ind) == pytest.approx(want)
    search = st.Search([strategy])
    events = []
    context = make_context(1, population, events=events)
    kept = search.select_survivors(candidates, len(population), context)
    rewards = sorted((strategy.reward(i) for i in candidates), reverse=True)
    assert [strategy.reward(i) for i in kept] == rewards[: len(kept)]
    search.generation_end(kept, children, context)
    (event,) = [e for e in events if e["kind"] == "reward"]
    assert event["data"]["reward"] == rewards[0] and event["data"]["cost"] == cost
    assert search.measures() == ({"latency_ms"} if cost == "latency_ms" else set())


def test_cost_aware_selection_trades_accuracy_for_cost_as_mnasnet_does():
    """At weight -0.07, a network at the target keeps its accuracy, one twice as costly loses
    4.7% of it: 90% at 2 MFLOPs ranks below 86% at 1 MFLOP, above 85%."""
    import operators as ops
    from genomics import minimal

    def individual(name, accuracy, flops):
        ind = ops.Individual(minimal((1, 8, 8), 10), id=name)
        ind.fitness.values = (accuracy,)
        ind.evaluation = {"status": "ok", "flops": flops, "params": 100}
        return ind

    big, small = individual("a", 0.90, 2e6), individual("b", 0.86, 1e6)
    smaller = individual("c", 0.85, 1e6)
    strategy = st.CostAware()
    assert strategy.reward(small) == pytest.approx(0.86)
    assert strategy.reward(big) == pytest.approx(0.90 * 2**-0.07)
    kept = st.Search([strategy]).select_survivors([big, small, smaller], 3, make_context(1, []))
    assert [i.id for i in kept] == ["b", "a", "c"]


def test_mates_are_pairs_from_the_population_and_a_strategy_may_choose_them():
    import operators as ops
    from genomics import minimal

    population = []
    for i in range(5):
        ind = ops.Individual(minimal((1, 8, 8), 10), id=f"g0_{i}")
        ind.fitness.values = (i / 10,)
        ind.evaluation = {"status": "ok", "params": 100}
        population.append(ind)
    context = make_context(1, population)
    default = st.Search([st.Tournament()], seed=3)
    pairs = default.select_mates(population, 4, context)
    assert len(pairs) == 4 and all(a in population and b in population for a, b in pairs)
    assert default.select_mates(population, 0, context) == []

    class Siblings:
        name = "siblings"

        @st.hookimpl
        def ecogen_select_mates(self, population, count):
            return [(population[-1], population[-2])] * count

    chosen = st.Search([Siblings()]).select_mates(population, 3, context)
    assert chosen == [(population[-1], population[-2])] * 3

    class Strangers:
        name = "strangers"

        @st.hookimpl
        def ecogen_select_mates(self, population, count):
            outsider = ops.Individual(minimal((1, 8, 8), 10), id="x")
            return [(population[0], outsider)] * count

    with pytest.raises(st.StrategyError, match="mates must be taken from the individuals"):
        st.Search([Strangers()]).select_mates(population, 2, context)


def test_latency_is_measured_when_an_objective_asks_for_it():
    assert st.Search([st.NSGA2(objectives=["val_accuracy", "latency_ms"])]).measures() == {
        "latency_ms"
    }
    assert st.Search([st.NSGA2()]).measures() == set()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cost": "joules"}, "strategies.cost-aware.cost: must be one of params"),
        ({"target": 0}, "strategies.cost-aware.target: must be a finite number > 0, got 0"),
        ({"weight": 0.07}, "strategies.cost-aware.weight: must be a finite number <= 0"),
        ({"size": 0}, "strategies.cost-aware.size"),
    ],
)
def test_bad_cost_aware_options_are_named(options, message):
    with pytest.raises(st.StrategyError, match=message.replace(".", r"\.")):
        st.create(["cost-aware"], {"cost-aware": options})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"aggressive": {"keep": 0}}, "strategies.aggressive.keep"),
        ({"extinction": {"threshold": "median"}}, "strategies.extinction.threshold"),
        ({"extinction": {"landmarks": [0]}}, "strategies.extinction.landmarks"),
        ({"mimicry": {"weight": 2.0}}, "strategies.mimicry.weight"),
        ({"succession": {"primary_mutations": [3, 1]}}, "strategies.succession.primary_mutations"),
        ({"extinction": {"colour": 1}}, "strategies.extinction.colour: unknown option"),
        ({"nsga2": {}}, "strategies.nsga2: options for a strategy this run does not use"),
    ],
)
def test_bad_strategy_options_are_named(options, message):
    with pytest.raises(st.StrategyError, match=message.replace(".", r"\.")):
        st.create(["eigen"], options)


# --- plugins ------------------------------------------------------------------------------


class _WrongSignature:
    name = "wrong"

    @st.hookimpl
    def ecogen_select_parents(self, population, how_many):
        return population[:how_many]


class _UnknownHook:
    name = "unknown"

    @st.hookimpl
    def ecogen_select_parent(self, population, count):
        return population[:count]


@pytest.mark.parametrize(
    ("plugin", "hook"),
    [(_WrongSignature(), "ecogen_select_parents"), (_UnknownHook(), "ecogen_select_parent")],
)
def test_a_plugin_whose_hooks_do_not_match_is_refused(plugin, hook):
    with pytest.raises(PluginError) as err:
        st.Search([plugin])
    message = str(err.value)
    assert f"strategy {plugin.name!r}" in message and hook in message and "\n" not in message


BAD_STRATEGY = """
from strategies import Strategy, hookimpl

class Bad(Strategy):
    name = "bad"

    @hookimpl
    def ecogen_select_survivors(self, candidates, count, colour):
        return candidates[:count]
"""


@pytest.fixture
def bad_plugin(install_plugin):
    """An installed distribution whose strategy has a wrong hook."""
    install_plugin(
        "bad-strategy",
        "bad_strategy",
        BAD_STRATEGY,
        {"ecogen.strategies": {"bad": "bad_strategy:Bad"}},
    )


def test_an_installed_plugin_with_a_wrong_hook_is_refused_by_name(bad_plugin, tmp_path):
    assert "bad" not in st.names()
    refused = st.refused()["bad"]
    assert "'bad' of bad-strategy" in refused and "ecogen_select_survivors" in refused
    listing = CliRunner().invoke(main, ["plugins"])
    assert listing.exit_code == 1 and "refused:" in listing.output and "colour" in listing.output
    result = CliRunner().invoke(
        main, ["evolve", "--strategy", "bad", "--run-dir", str(tmp_path / "run")]
    )
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith("error: strategy 'bad' of bad-strategy is refused") and "\n" not in line
    assert not (tmp_path / "run").exists()


def test_unknown_strategy_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(
        main, ["evolve", "--strategy", "annealing", "--run-dir", str(tmp_path / "r")]
    )
    assert result.exit_code == 1
    assert "no strategy or preset named 'annealing'" in result.output
    assert len(result.output.strip().splitlines()) == 1


# --- presets on digits: the store records what they did ------------------------------------

PRESET_RUN = {
    "dataset": "digits",
    "population": 6,
    "generations": 2,
    "epochs": 2,
    "final_epochs": 1,
    "seed": 1,
    "device": "cpu",
}

PRESET_OPTIONS = {
    # Both phases train 2 epochs, so the thresholds learnt in generation 0 apply in generation
    # 1; the k-th best with k = 1 makes extinction certain to strike.
    "eigen": {
        "succession": {"primary_epochs": 2, "secondary_epochs": 2},
        "extinction": {"threshold": "kth", "k": 1},
    },
}


def _run_preset(tmp_path, preset):
    run_dir = tmp_path / preset
    experiment = cfg.from_dict(
        {
            **PRESET_RUN,
            "strategy": [preset],
            "strategies": PRESET_OPTIONS.get(preset, {}),
            "run_dir": str(run_dir),
        }
    )
    engine = start(experiment, ph.load_dataset("digits", seed=1))
    summary = engine.run()
    engine.store.close()
    db = sqlite3.connect(run_dir / "ecogen.sqlite")
    db.row_factory = sqlite3.Row
    return summary, db


@pytest.mark.parametrize("preset", list(st.PRESETS))
def test_each_preset_runs_two_generations_and_records_what_it_did(tmp_path, preset):
    summary, db = _run_preset(tmp_path, preset)
    assert summary["generations"] == 2 and summary["strategy"] == [preset]
    checkpoints = db.execute("SELECT generation, population, strategy FROM checkpoints").fetchall()
    assert [c["generation"] for c in checkpoints] == [0, 1, 2]
    sizes = [len(json.loads(c["population"])) for c in checkpoints]
    events = [
        {**dict(e), "data": json.loads(e["data"])} for e in db.execute("SELECT * FROM events")
    ]
    individuals = {r["id"]: dict(r) for r in db.execute("SELECT * FROM individuals")}

    if preset == "tournament":
        assert sizes == [6, 6, 6] and events == []
    if preset == "ag-evolution":
        assert sizes == [6, 2, 2]  # k = ceil(6 / 4)
        gen1 = [r for r in individuals.values() if r["generation"] == 1]
        assert len(gen1) == 6
        parents = [json.loads(r["parents"])[0] for r in gen1]
        assert len(set(parents)) == 2 and all(parents.count(p) == 3 for p in set(parents))
        counts = [len(json.loads(r["operators"])) for r in gen1]
        assert all(1 <= c <= 3 for c in counts)
    if preset == "eigen":
        phase = [e for e in events if e["kind"] == "phase"]
        assert [(e["data"]["before"], e["data"]["after"]) for e in phase] == [
            ("primary", "secondary")
        ]
        assert {r["phase"] for r in individuals.values() if r["generation"] == 0} == {"primary"}
        assert {r["phase"] for r in individuals.values() if r["generation"] > 0} == {"secondary"}
        extinct = db.execute(
            "SELECT individual, epochs, metrics FROM evaluations WHERE status = 'extinct'"
        ).fetchall()
        assert extinct and summary["extinct"] == len(extinct)
        for row in extinct:
            metrics = json.loads(row["metrics"])
            assert metrics["landmark"] == 1 and metrics["landmark_epoch"] == row["epochs"] == 1
            assert metrics["epochs_saved"] == 1
        assert summary["epochs_saved"] == len(extinct)
        proposed = [e for e in events if e["kind"] == "proposed"]
        assert proposed and all(e["source"] == "duplication" for e in proposed)
        for e in proposed:
            row = individuals[e["individual"]]
            assert json.loads(row["parents"]) == [e["data"]["source"]]
            assert json.loads(row["operators"]) == ["gene_duplication"]
        taught = db.execute(
            "SELECT count(*) FROM evaluations WHERE json_extract(metrics, '$.teacher') IS NOT NULL"
        ).fetchone()[0]
        assert taught > 0
        saved = json.loads(checkpoints[-1]["strategy"])["strategies"]
        assert saved["succession"]["phase"] == "secondary" and saved["extinction"]["thresholds"]
    if preset == "nsga2":
        front = summary["pareto_front"]
        assert front and summary["objectives"] == ["val_accuracy", "params"]
        for a in front:
            for b in front:
                assert not (
                    a["val_accuracy"] >= b["val_accuracy"]
                    and a["params"] <= b["params"]
                    and (a["val_accuracy"], a["params"]) != (b["val_accuracy"], b["params"])
                )
        pareto = [e for e in events if e["kind"] == "pareto"]
        assert [e["generation"] for e in pareto] == [0, 1, 2]
        assert pareto[-1]["data"]["front"] == front


class _InterruptAfter:
    def __init__(self, evaluations: int) -> None:
        self.left = evaluations

    def started(self, engine):
        pass

    def evaluating(self, engine, individual):
        pass

    def evaluated(self, engine, individual, result):
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt

    def generation_done(self, engine, record):
        pass

    def final_training(self, engine, genome):
        pass


def _trace(run_dir):
    db = sqlite3.connect(run_dir / "ecogen.sqlite")
    rows = db.execute(
        "SELECT i.id, i.genome_hash, i.phase, e.status, e.epochs, e.metrics FROM individuals i"
        " JOIN evaluations e ON e.id = i.evaluation ORDER BY i.id"
    ).fetchall()
    events = db.execute(
        "SELECT generation, source, kind, individual, data FROM events ORDER BY generation, kind,"
        " individual, data"
    ).fetchall()
    strategy = db.execute("SELECT strategy FROM checkpoints ORDER BY generation").fetchall()
    db.close()
    return rows, events, strategy


@pytest.mark.parametrize("preset", ["eigen", pytest.param("nsga2", marks=pytest.mark.slow)])
def test_a_strategy_resumes_exactly_after_an_interrupt(tmp_path, preset):
    values = {**PRESET_RUN, "strategy": [preset], "strategies": PRESET_OPTIONS.get(preset, {})}
    values["generations"] = 3
    straight = cfg.from_dict({**values, "run_dir": str(tmp_path / "straight")})
    data = ph.load_dataset("digits", seed=1)
    engine = start(straight, data)
    engine.run()
    engine.store.close()

    cut = cfg.from_dict({**values, "run_dir": str(tmp_path / "cut")})
    engine = start(cut, data)
    with pytest.raises(KeyboardInterrupt):
        engine.run(_InterruptAfter(9))  # in the middle of generation 1
    engine.store.close()
    store, again = open_store(tmp_path / "cut")
    from runner.evolution.engine import Engine

    Engine(again, tmp_path / "cut", store, data).run()
    store.close()
    expected, got = _trace(tmp_path / "straight"), _trace(tmp_path / "cut")
    assert [r[:5] for r in got[0]] == [r[:5] for r in expected[0]]
    assert got[1] == expected[1] and got[2] == expected[2]


# --- a third-party strategy, installed -----------------------------------------------------


@pytest.mark.slow
def test_the_example_plugin_installs_and_evolves(tmp_path):
    """examples/ageing-evolution, pip-installed beside ecogen, runs `ecogen evolve --strategy
    ageing` with no change to ecogen."""
    import os
    import subprocess
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "ageing-evolution"
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(example)],
        check=True, capture_output=True,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *sys.path])}
    ecogen = [sys.executable, "-m", "runner.cli"]
    listing = subprocess.run([*ecogen, "plugins"], env=env, capture_output=True, text=True)
    assert "ageing" in listing.stdout and "ecogen-ageing" in listing.stdout, listing.stderr
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [*ecogen, "evolve", "--strategy", "ageing", "--dataset", "digits", "--population", "4",
         "--generations", "2", "--epochs", "1", "--final-epochs", "1", "--device", "cpu",
         "--run-dir", str(run_dir)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["strategy"] == ["ageing"] and summary["generations"] == 2
    db = sqlite3.connect(run_dir / "ecogen.sqlite")
    population = json.loads(
        db.execute("SELECT population FROM checkpoints WHERE generation = 2").fetchone()[0]
    )
    assert all(i.startswith("g2_") for i in population)  # ageing: the oldest died
