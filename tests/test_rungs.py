"""Multi-fidelity evaluation by successive halving (the ``rungs`` strategy, docs/rungs.md): every
candidate trains to the first rung, the best share of each complete rung goes on from its own
weights to the next; the same run for any worker count, and after a kill in the middle of a
rung."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
import tomli_w
from click.testing import CliRunner
from reordering import NewestFirst

import phenotypes as ph
import strategies as st
import zoo
from runner import config as cfg
from runner import faults
from runner.cli import main
from runner.execution.base import train_task, training_subset
from runner.records import Task, evaluation_key
from runner.session import prepare_resume, start
from runner.store import Store

ECOGEN = [sys.executable, "-m", "runner.cli"]
RUNGS = {
    "dataset": "digits",
    "population": 3,
    "generations": 0,
    "epochs": 2,
    "final_epochs": 0,
    "seed": 2,
    "device": "cpu",
    "init": "random",
    "strategy": ["rungs"],
}


def _run(run_dir: Path, executor=None, **values) -> dict:
    experiment = cfg.from_dict({**RUNGS, **values, "run_dir": str(run_dir)})
    engine = start(experiment, ph.load_dataset(experiment.dataset, seed=experiment.seed))
    if executor is not None:
        engine.executor = executor(engine.executor)
    try:
        summary = engine.run()
    finally:
        engine.store.close()
    return summary


def _evaluations(run_dir: Path) -> list[dict]:
    """Every evaluation stored, in order, with its metrics and history read."""
    db = sqlite3.connect(run_dir / "ecogen.sqlite")
    db.row_factory = sqlite3.Row
    rows = db.execute("SELECT * FROM evaluations ORDER BY id").fetchall()
    db.close()
    return [
        {**dict(r), "metrics": json.loads(r["metrics"]), "history": json.loads(r["history"])}
        for r in rows
    ]


def _outcome(run_dir: Path) -> dict:
    """What a run decided, without what depends on when it ran: each individual with its
    evaluation, every evaluation, the events, the last checkpoint and the summary."""
    db = sqlite3.connect(run_dir / "ecogen.sqlite")
    individuals = db.execute(
        "SELECT i.id, i.reused, e.individual, e.status, e.reason, e.fitness, e.epochs,"
        " e.history FROM individuals i JOIN evaluations e ON e.id = i.evaluation ORDER BY i.id"
    ).fetchall()
    evaluations = db.execute(  # stored as they arrive: by individual and rung instead
        "SELECT individual, status, reason, fitness, epochs, history,"
        " json_remove(metrics, '$.device') FROM evaluations"
        " ORDER BY individual, json_extract(metrics, '$.rung')"
    ).fetchall()
    events = db.execute(
        "SELECT generation, source, kind, individual, data FROM events"
        " ORDER BY generation, kind, individual, data"
    ).fetchall()
    population, logbook, counters = db.execute(
        "SELECT population, logbook, counters FROM checkpoints ORDER BY generation DESC"
    ).fetchone()
    db.close()
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("seconds", "final_training_seconds", "run_dir", "disk_bytes", "weights_bytes"):
        summary.pop(key)
    # Where it ran, not what; and the last keep_weights networks to arrive.
    for key in ("executor", "workers", "worker_idle_seconds", "weights_files"):
        summary.pop(key)
    logbook = [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads(logbook)]
    counters = {k: v for k, v in json.loads(counters).items() if k != "seconds"}
    return {
        "individuals": individuals,
        "evaluations": evaluations,
        "events": events,
        "checkpoint": (population, logbook, counters),
        "summary": summary,
    }


def test_the_rungs_of_a_run_and_their_options(tmp_path):
    assert st.Rungs().rungs(9) == (1, 3, 9)
    assert st.Rungs().rungs(8) == (1, 3, 8)  # the last rung is max_epochs
    assert st.Rungs(min_epochs=2, reduction=2, max_epochs=8).rungs(30) == (2, 4, 8)
    assert st.Rungs(min_epochs=4).rungs(4) == (4,)
    plan = st.GenerationPlan(4, 4, (1, 1), 9, 4)
    st.Rungs(data_fraction=[0.25, 0.5, 1]).ecogen_plan(plan)
    assert (plan.rungs, plan.epochs, plan.data_fractions) == ((1, 3, 9), 9, (0.25, 0.5, 1.0))
    assert st.promoted_count(4, plan.promote) == 2
    assert st.promoted_count(3, plan.promote) == 1  # 3 * (1/3) is 1, not a float above it
    assert "rungs" in st.PRESETS and "rungs" in st.names()
    listed = CliRunner().invoke(main, ["plugins"]).output
    assert "  rungs " in listed.split("presets:")[0] and "tournament + rungs" in listed

    refused = [
        ({"min_epochs": 0}, "strategies.rungs.min_epochs: must be int >= 1, got 0"),
        ({"reduction": 1}, "strategies.rungs.reduction: must be int >= 2, got 1"),
        ({"max_epochs": -1}, "strategies.rungs.max_epochs: must be int >= 0, got -1"),
        ({"max_epochs": 2, "min_epochs": 3}, "strategies.rungs.min_epochs: 3 is more than"),
        ({"data_fraction": [0.5, 1.5]}, "strategies.rungs.data_fraction: must be a list of"),
        ({"data_fraction": "half"}, "strategies.rungs.data_fraction: must be a list of"),
        ({"max_epochs": 9, "data_fraction": [0.5, 1]}, "2 shares for 3 rungs [1, 3, 9]"),
        ({"eta": 3}, "strategies.rungs.eta: unknown option"),
        # Rungs up to the run's epochs (2 here), known from the experiment: refused as early.
        ({"data_fraction": [0.5]}, "strategies.rungs.data_fraction: 1 shares for 2 rungs [1, 2]"),
        (
            {"min_epochs": 3},
            "min_epochs: 3 is more than the last rung's 2 epochs (the epochs planned",
        ),
    ]
    for options, message in refused:
        experiment = cfg.from_dict(
            {**RUNGS, "strategies": {"rungs": options}, "run_dir": str(tmp_path / "r")}
        )
        with pytest.raises(cfg.ConfigError) as raised:
            experiment.check()
        assert message in str(raised.value) and "\n" not in str(raised.value)
    # Rungs must end at the epochs the plan trains: listed before succession, which plans
    # other epochs, they would not.
    search = st.Search(st.create(["rungs", "succession"]))
    context = st.Context(0, 0, "", plan, 0, None)
    with pytest.raises(st.StrategyError, match="list rungs after the strategies that plan"):
        search.plan(st.GenerationPlan(4, 4, (1, 1), 9, 4), context)


@pytest.mark.parametrize("base", ["eigen", "ag-evolution", "nsga2", "cost-aware"])
def test_rungs_named_after_a_selection_add_only_the_rungs_to_it(base):
    """``strategy = ["eigen", "rungs"]`` (docs/rungs.md) is eigen with rungs; alone, ``rungs``
    is the preset, tournament + rungs. Before, the preset was expanded in both places, so a
    tournament was consulted after the selection the user named."""
    alone = [name for name, _ in st.expand([base])]
    assert [name for name, _ in st.expand([base, "rungs"])] == [*alone, "rungs"]
    assert [name for name, _ in st.expand(["rungs"])] == ["tournament", "rungs"]


@pytest.mark.parametrize(
    "values",
    [
        {
            "strategy": ["succession", "rungs"],
            "strategies": {"rungs": {"data_fraction": [0.25, 0.5, 1]}},
        },
        {
            "strategy": ["eigen", "rungs"],
            "strategies": {"rungs": {"data_fraction": [0.25, 0.5, 1]}},
        },
        {
            "strategy": ["succession", "rungs"],
            "strategies": {"succession": {"secondary_epochs": 2}, "rungs": {"min_epochs": 3}},
        },
    ],
)
def test_rungs_options_are_checked_against_every_phase_of_succession(tmp_path, values):
    """With succession the secondary phase trains other epochs (10 here, the primary 5): rungs
    [1, 3, 9, 10], not [1, 3, 5]. Before, only the primary phase was checked and a run that
    started well died at the switch."""
    experiment = cfg.from_dict({**RUNGS, "epochs": 10, **values, "run_dir": str(tmp_path / "r")})
    with pytest.raises(cfg.ConfigError, match=r"^strategies\.rungs\.") as raised:
        experiment.check()
    assert "\n" not in str(raised.value)


def test_a_promoted_candidate_goes_on_from_its_own_rung_weights(tmp_path):
    """Three candidates to rung 0 (1 epoch), the most accurate third of them (one) on to the
    last rung (2 epochs) from its rung-0 weights: its evaluation has both epochs, the history
    of both, and started at the accuracy its rung ended at; the others stopped at the rung."""
    run_dir = tmp_path / "run"
    summary = _run(run_dir)
    rows = _evaluations(run_dir)
    first, promotion = rows[:3], rows[3:]
    assert [r["metrics"]["rung"] for r in rows] == [0, 0, 0, 1]
    assert all(r["status"] == "stopped" and r["epochs"] == 1 for r in first)
    assert all(r["metrics"]["stopped_by"] == "rung" for r in first)
    (promoted,) = promotion
    best_at_rung = max(first, key=lambda r: r["val_accuracy"])  # ties: the first, as max does
    assert promoted["individual"] == best_at_rung["individual"]
    assert promoted["status"] == "ok" and promoted["epochs"] == 2
    metrics = promoted["metrics"]
    assert metrics["continued_from"] == promoted["individual"] and metrics["start_epoch"] == 1
    # Its own weights: it started exactly where its rung ended (the CPU evaluates alike).
    assert metrics["start_val_accuracy"] == best_at_rung["val_accuracy"]
    assert [h["epoch"] for h in promoted["history"]] == [1, 2]
    assert promoted["history"][0] == best_at_rung["history"][0]
    assert metrics["planned_epochs"] == 2 and metrics["rungs"] == [1, 2]
    # The best is from the last rung; the run counted every epoch trained, promotions' too.
    assert summary["best"]["id"] == promoted["individual"]
    assert summary["best"]["search_val_accuracy"] == promoted["val_accuracy"]
    assert (summary["evaluations"], summary["epochs_trained"]) == (4, 4)
    # Each individual's row names its highest rung; the rung weights are gone with the
    # generation.
    with Store(run_dir / "ecogen.sqlite", readonly=True) as store:
        for row in rows[:3]:
            named = store.evaluation(store.individual(row["individual"])["evaluation"])
            assert named.metrics["rung"] == (
                1 if row["individual"] == promoted["individual"] else 0
            )
    assert not [p.name for p in (run_dir / "weights").iterdir() if "@" in p.name]


def test_one_and_two_workers_make_the_same_run(tmp_path):
    """Two workers handing results back newest first (promotions too) decide what one does:
    promotions wait for their rung to be complete and are taken in candidate order."""
    values = {"population": 4, "strategies": {"rungs": {"reduction": 2}}}
    _run(tmp_path / "one", **values)
    two = []

    def newest_first(inner):
        two.append(NewestFirst(inner))
        return two[0]

    _run(tmp_path / "two", newest_first, **values)
    order = two[0].order
    assert order[0] == ("g0_1", 0)  # the later did arrive first
    promotions = [i for i, rung in order if rung == 1]
    assert len(promotions) == 2 and promotions != sorted(promotions)
    assert _outcome(tmp_path / "one") == _outcome(tmp_path / "two")


def test_a_run_killed_in_the_middle_of_a_rung_resumes_to_the_same_result(tmp_path):
    """Killed as the second promotion's weights are written, the first promotion stored: the
    resumed run replays rung 0 and the first promotion from the store and trains the second
    again from its rung weights (not from the weights file it has just overwritten), to the
    run that never stopped."""
    values = {**RUNGS, "strategies": {"rungs": {"reduction": 2}}}
    _run(tmp_path / "straight", strategies=values["strategies"])
    config = tmp_path / "experiment.toml"
    config.write_text(tomli_w.dumps(values))
    run = tmp_path / "run"
    # Rung 0 writes each candidate's weights and rung weights (6 files), each promotion its
    # weights: killed once the second promotion's are written, before it is stored.
    env = {**os.environ, faults.VARIABLE: "weights:8"}
    killed = subprocess.run(
        [*ECOGEN, "evolve", "--config", str(config), "--run-dir", str(run)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rungs = [r["metrics"]["rung"] for r in _evaluations(run)]
    assert rungs == [0, 0, 0, 1]  # one promotion stored, the other one lost
    engine = prepare_resume(run).engine(ph.load_dataset("digits", seed=2))
    try:
        engine.run()
    finally:
        engine.store.close()
    assert _outcome(run) == _outcome(tmp_path / "straight")


def test_dedup_reuses_only_results_of_the_whole_schedule(tmp_path):
    """Children that copy their parent (no mutations): one whose parent reached the last rung
    takes its result, without training; one whose parent stopped at a rung trains, as a
    candidate stopped at a rung is not reused. Nor is a rung's result for a training of fixed
    epochs: the reuse key holds the schedule."""
    run_dir = tmp_path / "run"
    _run(run_dir, generations=1, mutations_per_child=[0, 0], strategy=["random", "rungs"])
    db = sqlite3.connect(run_dir / "ecogen.sqlite")
    children = db.execute(
        "SELECT i.id, i.parents, i.reused, e.individual, json_extract(e.metrics, '$.rung')"
        " FROM individuals i JOIN evaluations e ON e.id = i.evaluation WHERE i.generation = 1"
    ).fetchall()
    parents = dict(
        db.execute(
            "SELECT i.id, e.status FROM individuals i JOIN evaluations e ON e.id = i.evaluation"
            " WHERE i.generation = 0"
        ).fetchall()
    )
    promoted = [
        json.loads(r[0]) for r in db.execute("SELECT data FROM events WHERE kind = 'promoted'")
    ]
    db.close()
    kinds = set()
    for child, parents_json, reused, source, rung in children:
        (parent,) = json.loads(parents_json)
        kinds.add(parents[parent])
        if parents[parent] == "ok":  # its parent reached the last rung
            assert (reused, source, rung) == (1, parent, 1)
        else:
            assert not reused and source == child
    assert kinds == {"ok", "stopped"}, "the test needs children of both kinds"
    # Reused children took no part in generation 1's rung: they are past it.
    reused = {c[0] for c in children if c[2]}
    assert not reused & set(promoted[1]["finished"])
    with Store(run_dir / "ecogen.sqlite", readonly=True) as store:
        keys = store.reusable()
        assert keys and all(e.metrics["rung"] == 1 for _, e in keys.values())
        rung0 = store.rung_evaluation("g0_0", 0)
    fixed = Task("x", None, "h", 0, 0, rung0.epochs)
    assert evaluation_key("h", rung0) != fixed.key
    assert evaluation_key("h", rung0) != attrs.evolve(fixed, epochs=2).key


def test_a_rung_with_a_data_fraction_trains_on_a_fixed_seeded_subset():
    data = ph.load_dataset("digits", seed=2)
    half = training_subset(data, 0.5, 7)
    counts = data.y_train.bincount()
    assert (half.y_train.bincount() == (counts + 1) // 2).all()  # half of every class
    assert half is training_subset(data, 0.5, 7)
    again = training_subset(attrs.evolve(data), 0.5, 7)  # another copy: the same images
    assert (again.x_train == half.x_train).all()
    quarter = training_subset(data, 0.25, 7)
    rows = {tuple(x.flatten().tolist()) for x in half.x_train}
    assert all(tuple(x.flatten().tolist()) in rows for x in quarter.x_train)  # nested
    assert (half.x_val == data.x_val).all()
    # train_task trains a task with a data fraction on that subset, and nothing else.
    genome = zoo.load("minimal", data.input_shape, data.num_classes)
    spec = ph.TrainSpec(epochs=1, device="cpu")
    task = Task("a", genome, "h", 0, 3, 1, data_fraction=0.5, data_seed=7)
    judged = lambda *_: None  # noqa: E731
    subset, _ = train_task(task, data, spec, judged)
    whole, _ = train_task(attrs.evolve(task, data_fraction=1.0), half, spec, judged)
    assert subset.history == whole.history


def test_the_run_limits_count_the_epochs_and_evaluations_of_promotions(tmp_path):
    """max_epochs 4, rungs at 1 and 3 epochs: the three first trainings spend 3, so the
    promotion (2 more) is cut after 1, and its candidate stays at its rung; max_evaluations 4,
    rungs at 1 and 2 with two promotions: the second is never trained."""
    values = {"generations": 3, "epochs": 3, "final_epochs": 1}
    summary = _run(tmp_path / "epochs", max_epochs=4, **values)
    assert (summary["epochs_trained"], summary["stopped_by"]) == (4, "epochs")
    promotion = _evaluations(tmp_path / "epochs")[-1]
    assert promotion["metrics"]["stopped_by"] == "epochs" and promotion["epochs"] == 2
    with Store(tmp_path / "epochs" / "ecogen.sqlite", readonly=True) as store:
        named = store.evaluation(store.individual(promotion["individual"])["evaluation"])
    assert named.metrics["rung"] == 0 and named.metrics["stopped_by"] == "rung"

    limited = {**values, "epochs": 2, "strategies": {"rungs": {"reduction": 2}}}
    summary = _run(tmp_path / "evaluations", max_evaluations=4, **limited)
    assert (summary["evaluations"], summary["stopped_by"]) == (4, "evaluations")
    assert [r["metrics"]["rung"] for r in _evaluations(tmp_path / "evaluations")] == [0, 0, 0, 1]


@pytest.mark.parametrize("strategy", [["tournament", "rungs", "extinction"], ["eigen", "rungs"]])
def test_extinction_stops_no_training_under_rungs(tmp_path, strategy):
    """docs/rungs.md: extinction stops nothing under rungs, the rungs do the pruning. Here its
    thresholds are the best accuracy at epoch 1, so any promotion of 2 or more epochs below the
    best at its first epoch would be stopped. Before, under eigen's succession a promotion that
    added as many epochs (2) as the primary phase planned was judged by that phase's thresholds
    and died extinct."""
    extinction = {"landmarks": [1], "threshold": "kth", "k": 1, "min_samples": 1}
    summary = _run(
        tmp_path / "r",
        population=4,
        generations=3,
        epochs=4,
        strategy=strategy,
        strategies={"rungs": {"reduction": 2}, "extinction": extinction},
    )
    evaluations = _evaluations(tmp_path / "r")
    assert summary["generations"] == 3
    assert max(e["metrics"]["rung"] for e in evaluations) == 2  # promotions of 1 and 2 epochs
    assert [e["individual"] for e in evaluations if e["status"] == "extinct"] == []
