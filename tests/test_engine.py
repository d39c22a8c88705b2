"""What a search promises its user: the fitness it optimises, the best it reports, the limits
it keeps and when it trains a genome again. Each test here began as a failing reproduction of
a defect."""

import inspect
import json
import math
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as hs

import genomics as G
import operators as ops
import phenotypes as ph
from runner import config as cfg
from runner.cli import main
from runner.records import Evaluation, Status
from runner.session import start
from runner.store import Store
from strategies.nsga2 import assign_crowding, select_nsga2

TINY = {
    "dataset": "digits",
    "population": 3,
    "generations": 2,
    "epochs": 1,
    "final_epochs": 1,
    "seed": 2,
    "device": "cpu",
}

# Strategies that provoke what the tests look for; installed as a plugin package.
TEST_STRATEGIES = """
import attrs
import genomics
from strategies import Distill, Proposal, Strategy, best_first, hookimpl


@attrs.define
class KeepWorst(Strategy):
    '''Survival of the least fit: the best of a generation never survives it.'''

    name = "keep-worst"

    @hookimpl
    def ecogen_select_survivors(self, candidates, count):
        return best_first(candidates)[len(candidates) - count:]


@attrs.define
class Resubmit(Strategy):
    '''Proposes the minimal genome every generation, trained for epochs[generation] epochs,
    distilling from the best from generation teach_from on (0: never).'''

    name = "resubmit"
    epochs: list = attrs.field(factory=lambda: [1, 1, 1])
    teach_from: int = 0

    @hookimpl
    def ecogen_plan(self, plan, context):
        plan.epochs = self.epochs[min(max(context.generation, 0), len(self.epochs) - 1)]

    @hookimpl
    def ecogen_propose(self, population, context):
        first = population[0].genome
        genome = genomics.minimal(first.input_shape, first.num_classes)
        return [Proposal(genome, parents=(population[0].id,), operators=("resubmit",))]

    @hookimpl
    def ecogen_training(self, individual, context):
        if self.teach_from and context.generation >= self.teach_from and context.best:
            return Distill(context.best.id)
        return None
"""


@pytest.fixture
def test_strategies(install_plugin):
    install_plugin(
        "ecogen-test-strategies",
        "ecogen_test_strategies",
        TEST_STRATEGIES,
        {
            "ecogen.strategies": {
                "keep-worst": "ecogen_test_strategies:KeepWorst",
                "resubmit": "ecogen_test_strategies:Resubmit",
            }
        },
    )


def _run(tmp_path: Path, name: str = "run", **values) -> tuple[dict, Path]:
    run_dir = tmp_path / name
    experiment = cfg.from_dict({**TINY, **values, "run_dir": str(run_dir)})
    engine = start(experiment, ph.load_dataset(experiment.dataset, seed=experiment.seed))
    try:
        summary = engine.run()
    finally:
        engine.store.close()
    return summary, run_dir


def _rows(run_dir: Path, query: str, *args) -> list:
    db = sqlite3.connect(run_dir / "ecogen.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return db.execute(query, args).fetchall()
    finally:
        db.close()


def _evaluations(run_dir: Path) -> list:
    return _rows(
        run_dir,
        "SELECT i.id, i.reused, i.genome_hash, e.id AS evaluation, e.status, e.reason,"
        " e.fitness, e.params, e.epochs, e.val_accuracy, e.metrics FROM individuals i"
        " JOIN evaluations e ON e.id = i.evaluation ORDER BY i.rowid",
    )


# --- the fitness a search optimises -------------------------------------------------------------


def test_a_failed_candidates_costs_are_infinite_and_no_front_keeps_it(tmp_path, monkeypatch):
    """A candidate that fails after it was built keeps its parameter count in its metrics, but
    its fitness must be the worst in every objective, or NSGA-II keeps a small broken network
    on its first front."""
    real = ph.train
    calls = {"n": 0}

    def failing_every_other(model, data, spec, on_epoch=None, teacher=None):
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            raise RuntimeError("the training broke")
        return real(model, data, spec, on_epoch=on_epoch, teacher=teacher)

    monkeypatch.setattr(ph, "train", failing_every_other)
    summary, run_dir = _run(
        tmp_path, population=4, strategy=["nsga2"], max_failures=0, init="random"
    )
    failed = [r for r in _evaluations(run_dir) if r["status"] == "failed"]
    assert failed and all(r["params"] for r in failed)
    for row in failed:
        fitness = json.loads(row["fitness"])
        assert fitness[0] == 0.0 and all(math.isinf(v) for v in fitness[1:]), row["id"]
    on_front = {point["id"] for point in summary["pareto_front"]}
    assert on_front and not on_front & {r["id"] for r in failed}
    for event in _rows(run_dir, "SELECT data FROM events WHERE kind = 'pareto'"):
        assert not {p["id"] for p in json.loads(event["data"])["front"]} & {r["id"] for r in failed}


_cost = hs.floats(0, 1e6, allow_nan=False)
# A finished candidate may lack one cost (a store from before it was measured): infinite.
_finished = hs.tuples(hs.floats(0, 1), _cost | hs.just(math.inf), _cost) | hs.tuples(
    hs.floats(0, 1), _cost, _cost | hs.just(math.inf)
)


@given(hs.lists(_finished, min_size=1, max_size=12), hs.integers(0, 6), hs.integers(1, 18))
def test_nsga2_never_computes_a_nan_crowding_and_keeps_failures_last(finished, failures, k):
    """Costs may be infinite (a failed candidate's are all infinite). DEAP's crowding distance
    divides by a range that is then infinite and gives NaN, which makes the crowded sort
    arbitrary; ecogen's never does, and survival takes every finished candidate before any
    failed one."""
    from deap import tools

    individuals = []
    for values in [*finished, *[(0.0, math.inf, math.inf)] * failures]:
        ind = ops.Individual(G.minimal((1, 8, 8), 10), weights=(1.0, -1.0, -1.0))
        ind.fitness.values = values
        individuals.append(ind)
    k = min(k, len(individuals))
    chosen = select_nsga2(individuals, k)
    assert len(chosen) == k
    for front in tools.sortNondominated(individuals, len(individuals)):
        assign_crowding(front)
        assert not any(math.isnan(i.fitness.crowding_dist) for i in front)
    kept_failures = sum(1 for i in chosen if i.fitness.values == (0.0, math.inf, math.inf))
    assert kept_failures == max(0, k - len(finished))


# --- the best a search reports -------------------------------------------------------------------


def test_the_reported_best_is_the_best_ever_evaluated(tmp_path, test_strategies):
    """A strategy may let the best die (ageing evolution does); the run still reports the best
    network it ever evaluated, not the best of its last population."""
    summary, run_dir = _run(tmp_path, strategy=["keep-worst"], init="random", generations=3)
    finished = [r for r in _evaluations(run_dir) if r["status"] == "ok"]
    best = max(finished, key=lambda r: (r["val_accuracy"], -r["params"]))
    assert summary["best"]["search_val_accuracy"] == best["val_accuracy"]
    assert summary["best"]["genome_hash"] == best["genome_hash"]
    last = json.loads(
        _rows(run_dir, "SELECT population FROM checkpoints ORDER BY generation DESC")[0][0]
    )
    assert summary["best"]["id"] not in last  # this strategy did let it die


# --- the limits a search keeps -------------------------------------------------------------------


def test_a_first_population_over_max_params_is_refused_before_anything_is_written(tmp_path):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["evolve", "--init", "zoo:resnet20", "--max-params", "50000", "--device", "cpu",
         "--run-dir", str(run_dir)],
    )  # fmt: skip
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and line.startswith("error: init: zoo:resnet20 has ")
    assert "over max_params 50,000" in line
    assert not (run_dir / "ecogen.sqlite").exists()


def test_every_candidate_and_the_best_keep_max_params(tmp_path):
    summary, run_dir = _run(tmp_path, init="random", max_params=3000, generations=2)
    params = [r["params"] for r in _evaluations(run_dir)]
    assert params and max(params) <= 3000
    assert summary["best"]["params"] <= 3000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--init", "zoo:resnet20", "--max-flops", "1000000"],
            "error: init: zoo:resnet20 costs 5,033,216 FLOPs per image on this data",
        ),
        (
            ["--init", "minimal", "--max-latency-ms", "0.000001"],
            "error: init: minimal takes ",
        ),
    ],
)
def test_a_first_population_over_a_cost_limit_is_refused_before_anything_is_written(
    tmp_path, args, message
):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        main, ["evolve", *args, "--device", "cpu", "--run-dir", str(run_dir)]
    )
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and line.startswith(message), line
    assert ("over max_flops 1,000,000" in line) or ("over max_latency_ms 1e-06" in line), line
    assert not (run_dir / "ecogen.sqlite").exists()


def test_every_candidate_the_first_population_and_the_best_keep_max_flops(tmp_path):
    limit = 200_000
    summary, run_dir = _run(tmp_path, init="random", max_flops=limit, generations=2)
    rows = _evaluations(run_dir)
    first = [r for r in rows if r["id"].startswith("g0_")]
    assert first and all(r["status"] == "ok" for r in rows)
    flops = [r[0] for r in _rows(run_dir, "SELECT flops FROM evaluations")]
    assert max(flops) <= limit
    assert summary["best"]["flops"] <= limit


def _nodes_as_milliseconds(genome, device):
    """A stand-in for a latency measurement: one millisecond per node, whatever the machine."""
    _nodes_as_milliseconds.calls.append(G.canonical_hash(genome))
    return float(len(genome.nodes))


@pytest.fixture
def fake_latency(monkeypatch):
    from runner.evolution import costs

    _nodes_as_milliseconds.calls = []
    monkeypatch.setattr(costs, "measure_latency", _nodes_as_milliseconds)
    return _nodes_as_milliseconds.calls


def test_a_search_with_max_latency_ms_never_trains_a_candidate_over_it(tmp_path, fake_latency):
    """The minimal genome has 5 nodes (5 "ms" here); children two or three insertions away
    pass the 6.5 ms limit. Such a child is refused before it trains: stored as failed with the
    limit named, never a parent, never counted as an evaluation nor a failure in a row; the
    Pareto front is drawn against latency; each genome is measured once, even after a resume."""
    summary, run_dir = _run(
        tmp_path,
        init="minimal",
        population=4,
        generations=2,
        mutations_per_child=[2, 3],
        max_latency_ms=6.5,
        max_failures=2,
        strategy=["nsga2"],
        strategies={"nsga2": {"objectives": ["val_accuracy", "latency_ms"]}},
    )
    rows = _rows(
        run_dir,
        "SELECT i.id, i.genome, i.parents, e.status, e.reason, e.epochs, e.latency_ms,"
        " e.metrics, i.reused FROM individuals i JOIN evaluations e ON e.id = i.evaluation",
    )
    refused = [r for r in rows if json.loads(r["metrics"]).get("stage") == "limits"]
    trained = [r for r in rows if r not in refused]
    assert len(refused) >= 3  # more than max_failures in a row would have stopped the run
    for row in refused:
        assert row["status"] == "failed" and row["epochs"] == 0
        assert row["reason"] == f"over max_latency_ms: {row['latency_ms']:g} ms > 6.5 ms on cpu"
        assert len(G.loads(row["genome"]).nodes) > 6.5
        assert not (run_dir / "weights" / f"{row['id']}.pt").exists()
    assert all(r["latency_ms"] <= 6.5 and r["epochs"] == 1 for r in trained)
    refused_ids = {r["id"] for r in refused}
    assert not refused_ids & {p for r in rows for p in json.loads(r["parents"])}
    for (population,) in _rows(run_dir, "SELECT population FROM checkpoints"):
        assert not refused_ids & set(json.loads(population))
    assert summary["evaluations"] == sum(1 for r in trained if not r["reused"])
    assert summary["objectives"] == ["val_accuracy", "latency_ms"]
    assert summary["pareto_front"] and all(p["latency_ms"] <= 6.5 for p in summary["pareto_front"])
    assert summary["best"]["id"] not in refused_ids
    hashes = [r[0] for r in _rows(run_dir, "SELECT genome_hash FROM latencies")]
    assert sorted(hashes) == sorted(set(fake_latency)) and len(fake_latency) == len(hashes)

    fake_latency.clear()
    result = CliRunner().invoke(main, ["resume", str(run_dir), "--generations", "3"])
    assert result.exit_code == 0, result.output
    assert not set(fake_latency) & set(hashes)  # a genome measured before is not measured again


def test_a_latency_measurement_that_raises_fails_its_candidate_not_the_run(tmp_path, monkeypatch):
    from runner.evolution import costs

    def failing_over_six_nodes(genome, device):
        if len(genome.nodes) > 6:
            raise RuntimeError("no memory left to measure this one")
        return 1.0

    monkeypatch.setattr(costs, "measure_latency", failing_over_six_nodes)
    _, run_dir = _run(
        tmp_path, init="minimal", population=4, generations=1, mutations_per_child=[2, 3],
        max_latency_ms=5.0, max_failures=1,
    )  # fmt: skip
    failed = [r for r in _evaluations(run_dir) if r["status"] == "failed"]
    assert failed
    for row in failed:
        assert row["reason"] == "latency: RuntimeError: no memory left to measure this one"
        assert json.loads(row["metrics"])["stage"] == "limits" and row["epochs"] == 0


def test_latency_is_measured_on_the_run_s_device_when_an_objective_needs_it(tmp_path):
    _, run_dir = _run(
        tmp_path,
        init="random",
        population=2,
        generations=1,
        strategy=["nsga2"],
        strategies={"nsga2": {"objectives": ["val_accuracy", "params", "latency_ms"]}},
    )
    rows = _rows(run_dir, "SELECT genome_hash, latency_ms, fitness FROM evaluations")
    assert rows and all(r["latency_ms"] > 0 for r in rows)
    assert all(json.loads(r["fitness"])[2] == r["latency_ms"] for r in rows)
    stored = dict(
        _rows(run_dir, "SELECT genome_hash, latency_ms FROM latencies WHERE device = 'cpu'")
    )
    assert {r["genome_hash"]: r["latency_ms"] for r in rows} == {h: stored[h] for h in stored}
    _, plain = _run(tmp_path, "plain", init="random", population=2, generations=0)
    assert all(r[0] is None for r in _rows(plain, "SELECT latency_ms FROM evaluations"))


def test_the_time_budget_ends_the_training_in_progress_and_resume_trains_it_again(
    tmp_path, monkeypatch
):
    """A budget holds to within one epoch: the candidate training when it runs out stops
    after its epoch and is recorded as stopped by the budget; it takes no part in survival (its
    accuracy is that of an unfinished training), and the run resumes with a raised budget. The
    run's clock is a fake one that each epoch moves by 1 s, so the test does not depend on how
    busy the machine is."""
    from runner.evolution import budget as checkpoint

    clock = {"now": 0.0}

    class FakeTime:
        @staticmethod
        def perf_counter():
            return clock["now"]

    monkeypatch.setattr(checkpoint, "time", FakeTime)
    real = ph.train

    def one_second_epochs(model, data, spec, on_epoch=None, teacher=None):
        def tick(metrics):
            clock["now"] += 1.0
            if on_epoch is not None:
                on_epoch(metrics)

        return real(model, data, spec, on_epoch=tick, teacher=teacher)

    monkeypatch.setattr(ph, "train", one_second_epochs)
    budget = 20.0
    summary, run_dir = _run(
        tmp_path, init="random", generations=0, epochs=12, time_budget=budget, max_params=3000
    )
    assert summary["stopped_by"] == "time budget"
    assert summary["seconds"] <= budget + 1.0
    rows = _evaluations(run_dir)
    assert rows[0]["status"] == "ok" and rows[0]["epochs"] == 12  # the first is never cut
    assert [r["status"] for r in rows[1:]] == ["stopped"] and rows[1]["epochs"] == 8
    assert json.loads(rows[1]["metrics"])["stopped_by"] == "time budget"

    population = _rows(run_dir, "SELECT population FROM checkpoints WHERE generation = 0")
    assert json.loads(population[0][0]) == ["g0_0"]

    args = ["--time-budget", "600", "--generations", "1"]
    result = CliRunner().invoke(main, ["resume", str(run_dir), *args])
    assert result.exit_code == 0, result.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["generations"] == 1 and summary["stopped_by"] == "generations"


def test_max_epochs_below_one_training_is_refused_before_anything_is_written(tmp_path):
    """The run's first training is never cut (every run gets a best), so a max_epochs below
    one candidate's epochs could not be held: it is refused in one line."""
    with pytest.raises(cfg.ConfigError, match=r"^max_epochs: 2 is less than one candidate's"):
        _run(tmp_path, init="minimal", epochs=3, max_epochs=2)
    assert not (tmp_path / "run" / "ecogen.sqlite").exists()


def test_summary_seconds_are_the_search_and_the_final_training_is_apart(tmp_path):
    from runner.evolution.engine import SilentReporter

    seen = {}

    class Watch(SilentReporter):
        def final_training(self, engine, genome):
            seen["search"] = engine.seconds

    run_dir = tmp_path / "run"
    values = {
        **TINY,
        "init": "minimal",
        "generations": 0,
        "final_epochs": 20,
        "run_dir": str(run_dir),
    }
    engine = start(cfg.from_dict(values), ph.load_dataset("digits", seed=2))
    summary = engine.run(Watch())
    engine.store.close()
    assert summary["final_training_seconds"] > 0.3
    assert summary["seconds"] == pytest.approx(seen["search"], abs=0.2)
    from runner.display import final_table

    rows = dict(zip(*[c._cells for c in final_table(summary).columns], strict=True))
    assert "final training" in rows and "search time" in rows


# --- when a genome is trained again --------------------------------------------------------------


def test_a_genome_trained_for_other_epochs_is_trained_again(tmp_path, test_strategies):
    """Succession trains for half the epochs in its primary phase: such a result is no
    stand-in for a full training. The same plan is reused, and the store says why."""
    _, run_dir = _run(
        tmp_path,
        init="minimal",
        population=2,
        strategy=["resubmit"],
        strategies={"resubmit": {"epochs": [1, 2, 2]}},
    )
    minimal = _evaluations(run_dir)[0]["genome_hash"]
    rows = {r["id"]: r for r in _evaluations(run_dir) if r["genome_hash"] == minimal}
    assert rows["g0_1"]["reused"] and rows["g0_1"]["evaluation"] == rows["g0_0"]["evaluation"]
    assert not rows["g1_0"]["reused"] and rows["g1_0"]["epochs"] == 2
    assert rows["g2_0"]["reused"] and rows["g2_0"]["evaluation"] == rows["g1_0"]["evaluation"]
    why = {
        r["individual"]: json.loads(r["data"])
        for r in _rows(run_dir, "SELECT individual, data FROM events WHERE kind = 'reused'")
    }
    reused = {r["id"] for r in _evaluations(run_dir) if r["reused"]}
    assert {"g0_1", "g2_0"} <= reused and set(why) == reused
    assert why["g2_0"]["source"] == "g1_0" and why["g2_0"]["planned_epochs"] == 2


def test_a_genome_trained_with_a_teacher_is_not_reused_for_one_without(tmp_path, test_strategies):
    _, run_dir = _run(
        tmp_path,
        init="minimal",
        population=2,
        generations=1,
        strategy=["resubmit"],
        strategies={"resubmit": {"teach_from": 1}},
    )
    rows = {r["id"]: r for r in _evaluations(run_dir)}
    assert not rows["g1_0"]["reused"]
    assert json.loads(rows["g1_0"]["metrics"])["teacher"] == "g0_0"


@pytest.mark.parametrize(
    ("error", "reused"),
    [
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), False),
        (ValueError("this genome cannot be built"), True),
    ],
)
def test_a_failure_that_may_not_repeat_is_never_reused(tmp_path, monkeypatch, error, reused):
    real = ph.train
    calls = {"n": 0}

    def first_fails(model, data, spec, on_epoch=None, teacher=None):
        calls["n"] += 1
        if calls["n"] == 1:
            raise error
        return real(model, data, spec, on_epoch=on_epoch, teacher=teacher)

    monkeypatch.setattr(ph, "train", first_fails)
    _, run_dir = _run(tmp_path, init="minimal", population=2, generations=0)
    rows = _evaluations(run_dir)
    assert rows[0]["status"] == "failed"
    assert bool(rows[1]["reused"]) == reused
    assert rows[1]["status"] == ("failed" if reused else "ok")


def test_the_store_offers_for_reuse_only_what_may_stand_for_a_training(tmp_path):
    store = Store.create(tmp_path / "ecogen.sqlite", "", {})
    cases = {
        "ok": Evaluation(Status.OK, fitness=[0.9], metrics={"planned_epochs": 4}),
        "taught": Evaluation(
            Status.OK, fitness=[0.9], metrics={"planned_epochs": 4, "teacher": "g0_0"}
        ),
        "extinct": Evaluation(Status.EXTINCT, fitness=[0.2], metrics={"planned_epochs": 4}),
        "budget": Evaluation(
            Status.STOPPED, fitness=[0.2], metrics={"planned_epochs": 4, "stopped_by": "time"}
        ),
        "timeout": Evaluation(Status.FAILED, reason="timeout: evaluation took longer"),
        "old-oom": Evaluation(Status.FAILED, reason="OutOfMemoryError: CUDA out of memory"),
        "diverged": Evaluation(Status.FAILED, reason="diverged: loss nan", metrics={}),
        "mutation": Evaluation(Status.FAILED, reason="mutation: x", metrics={"stage": "mutation"}),
        "inherited": Evaluation(
            Status.OK, fitness=[0.6], metrics={"planned_epochs": 2, "inherited_from": "g0_1"}
        ),
        # rungs: stopped at a rung (never reused), and at the last rung of its schedule
        "rung": Evaluation(
            Status.STOPPED,
            fitness=[0.5],
            metrics={"planned_epochs": 3, "rung": 0, "rungs": [1, 3], "stopped_by": "rung"},
        ),
        "rungs": Evaluation(
            Status.OK,
            fitness=[0.7],
            metrics={"planned_epochs": 3, "rung": 1, "rungs": [1, 3], "data_fractions": [0.5, 1]},
        ),
    }
    for name, evaluation in cases.items():
        store.add_evaluation(name, f"hash-{name}", evaluation)
    reusable = {key[0].removeprefix("hash-"): key for key in store.reusable()}
    store.close()
    assert set(reusable) == {"ok", "taught", "diverged", "inherited", "rungs"}
    # Genome, planned epochs, teacher, the weights it started from and its rung schedule.
    assert reusable["ok"] == ("hash-ok", 4, None, None, ())
    assert reusable["taught"] == ("hash-taught", 4, "g0_0", None, ())
    assert reusable["inherited"] == ("hash-inherited", 2, None, "g0_1", ())
    assert reusable["rungs"] == ("hash-rungs", 3, None, None, ((1, 3), (0.5, 1)))


# --- the run store ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_store_gains_the_latency_column_and_table_when_opened(tmp_path, version):
    """A store of schema 1 or 2 is upgraded to 3 when opened for writing, every step in one go;
    opened read-only (a report) it is left as it is and read without a latency."""
    import shutil

    from runner.store.schema import SCHEMA_VERSION

    assert SCHEMA_VERSION == 3
    fixture = Path(__file__).parent / "fixtures" / "run-0.1.0"  # a schema 2 store
    for name in ("ecogen.sqlite", "ecogen.sqlite-wal"):
        shutil.copy(fixture / name, tmp_path / name)
    path = tmp_path / "ecogen.sqlite"
    if version == 1:  # take away what schema 2 added
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("DROP TABLE events")
        for table, column in [
            ("evaluations", "size_bytes"),
            ("individuals", "phase"),
            ("checkpoints", "strategy"),
        ]:
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        db.close()
    else:
        with Store(path, readonly=True) as store:
            evaluations = store.evaluations()
            assert evaluations and all(e.latency_ms is None for e in evaluations)
            assert store.get_meta("schema_version") == "2"
    with Store(path) as store:
        assert store.get_meta("schema_version") == "3"
        store.add_latency("abc", "cpu", 1.5)
        assert store.latencies("cpu") == {"abc": 1.5} and store.latencies("cuda") == {}
        assert all(e.latency_ms is None for e in store.evaluations())
    db = sqlite3.connect(path)
    columns = {row[1] for row in db.execute("PRAGMA table_info(evaluations)")}
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert {"latency_ms", "size_bytes"} <= columns and {"events", "latencies"} <= tables


def test_resume_works_on_a_path_with_hash_and_question_mark(tmp_path):
    run_dir = tmp_path / "run #1?x=%20"
    args = ["--dataset", "digits", "--population", "2", "--generations", "0", "--epochs", "1",
            "--final-epochs", "1", "--device", "cpu", "--run-dir", str(run_dir)]  # fmt: skip
    assert CliRunner().invoke(main, ["evolve", *args]).exit_code == 0
    result = CliRunner().invoke(main, ["resume", str(run_dir), "--generations", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "summary.json").read_text())["generations"] == 1


def test_no_store_method_takes_sql_text():
    """SQL lives behind named methods: none takes a table name or a condition to paste into a
    statement (``count(table, where)`` guarded its table name with an assert only)."""
    for name, method in inspect.getmembers(Store, inspect.isfunction):
        parameters = set(inspect.signature(method).parameters)
        assert not parameters & {"table", "where", "sql", "query"}, name


# --- what the command line shows ----------------------------------------------------------------


def test_generation_lines_are_whole_when_the_output_is_not_a_terminal(tmp_path):
    args = ["--dataset", "digits", "--population", "2", "--generations", "1", "--epochs", "1",
            "--final-epochs", "1", "--device", "cpu", "--run-dir", str(tmp_path / "a-long-name-"
            "for-a-run-directory-that-makes-the-first-line-long")]  # fmt: skip
    result = CliRunner().invoke(main, ["evolve", *args])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("gen ")]
    assert len(rows) == 2 and all("val max" in r and "best params" in r for r in rows)
    first = next(line for line in result.output.splitlines() if "ecogen evolve" in line)
    assert "on cpu" in first and "first-line-long" in first


def test_max_evaluations_help_says_what_counts():
    result = CliRunner().invoke(main, ["evolve", "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    start = text.index("--max-evaluations")
    assert "mutation" in text[start : text.index("--", start + 2)]


def test_train_binarize_prints_the_binarized_networks_accuracies(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["train", "lenet5", "--epochs", "2", "--device", "cpu", "--binarize-patterns",
         "--finetune-epochs", "1", "--out", str(out)],
        terminal_width=200,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    finetuned = summary["binarization"]["stages"]["finetuned"]
    lines = result.output.splitlines()
    val = next(x for x in lines if "val accuracy" in x and "│" in x and "%" in x)
    assert f"{finetuned['val_accuracy']:.2%}" in val
    assert summary["val_accuracy"] == finetuned["val_accuracy"]


# --- crossover in a search ---------------------------------------------------------------------


def test_children_crossed_at_the_crossover_rate_record_both_parents_and_the_crossover(tmp_path):
    _, run_dir = _run(tmp_path, init="random", population=4, generations=2, crossover_rate=1.0)
    crossovers = set(ops.crossover_names())
    rows = _rows(run_dir, "SELECT id, generation, genome, parents, operators FROM individuals")
    children = [r for r in rows if r["generation"] > 0]
    crossed = [r for r in children if len(json.loads(r["parents"])) == 2]
    assert crossed
    ids = {r["id"] for r in rows}
    for row in children:
        parents, operators = json.loads(row["parents"]), json.loads(row["operators"])
        assert set(parents) <= ids and len(set(parents)) == len(parents)
        if len(parents) == 2:  # a crossover first, then the mutations
            assert operators[0] in crossovers and not set(operators[1:]) & crossovers
        else:  # mates that were one individual twice: a mutated copy
            assert not set(operators) & crossovers
        G.validate(G.loads(row["genome"]))


def test_a_run_without_crossover_draws_nothing_for_it():
    import random

    from runner.evolution import variation

    rng = random.Random(5)
    before = rng.getstate()
    assert variation.crossing(rng, 0.0, 12) == [False] * 12
    assert rng.getstate() == before
    assert variation.crossing(random.Random(5), 1.0, 3) == [True] * 3


def test_a_crossover_that_raises_fails_its_child_not_the_run(tmp_path):
    @ops.crossover(changes="nothing: it always raises")
    def engine_explode(first, second, rng, config):
        raise ValueError("engine_explode cannot cross these")

    try:
        _, run_dir = _run(
            tmp_path,
            init="random",
            population=4,
            generations=1,
            crossover_rate=1.0,
            crossover_weights={"homologous_crossover": 0, "subgraph_exchange": 0},
            max_failures=0,
        )
    finally:
        ops.CROSSOVERS.extra.pop("engine_explode", None)
    failed = [r for r in _evaluations(run_dir) if r["status"] == "failed"]
    assert failed and all(
        r["reason"] == "crossover: ValueError: engine_explode cannot cross these" for r in failed
    )
    assert all(json.loads(r["metrics"])["stage"] == "mutation" and r["epochs"] == 0 for r in failed)
