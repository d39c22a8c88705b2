"""Asynchronous (regularized) evolution, ``asynchronous = true``: a child whenever a worker
frees, accepted as it arrives, the oldest of the population dying; the same run every time
with one worker, and after a kill; resumable with more. The candidates are evaluated by the
tabular user evaluation (tests/tabular.py), so a search costs no training."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

import phenotypes as ph
from runner import config as cfg
from runner import evolve, faults, open_run
from runner.evolution.steady import birth

ROOT = Path(__file__).resolve().parent.parent
ECOGEN = [sys.executable, "-m", "runner.cli"]
ENV = {
    **{k: v for k, v in os.environ.items() if k != faults.VARIABLE},
    "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), *sys.path]),
}
RUN = {
    "dataset": "digits",
    "population": 5,
    "offspring": 4,
    "generations": 4,
    "epochs": 4,
    "seed": 3,
    "device": "cpu",
    "evaluation": "tabular:lookup",
    "asynchronous": True,
}


@pytest.fixture(scope="module")
def digits():
    return ph.load_dataset("digits", seed=RUN["seed"])


def _rows(run_dir: Path) -> list[tuple]:
    return sorted(
        (i.id, i.genome_hash, i.reused, str(i.evaluation.status), i.evaluation.fitness)
        for i in open_run(run_dir).individuals()
    )


def _checkpoints(run_dir: Path) -> list[dict]:
    db = sqlite3.connect(run_dir / "ecogen.sqlite")
    rows = db.execute("SELECT generation, population, counters FROM checkpoints ORDER BY 1")
    found = [
        {"generation": g, "population": json.loads(p), "counters": json.loads(c)}
        for g, p, c in rows
    ]
    db.close()
    return found


@pytest.fixture(scope="module")
def straight(tmp_path_factory, digits) -> tuple[Path, list]:
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    evolve(RUN, data=digits, run_dir=run_dir)
    return run_dir, _rows(run_dir)


def test_one_worker_makes_the_same_asynchronous_run_every_time(tmp_path, digits, straight):
    _, expected = straight
    assert len(expected) == RUN["population"] + RUN["generations"] * RUN["offspring"]
    evolve(RUN, data=digits, run_dir=tmp_path / "again")
    assert _rows(tmp_path / "again") == expected
    # Not the generational search under another name: survivors are chosen by age.
    evolve({**RUN, "asynchronous": False}, data=digits, run_dir=tmp_path / "generational")
    assert _rows(tmp_path / "generational") != expected


def test_the_oldest_dies_as_each_child_is_accepted(straight):
    run_dir, _ = straight
    individuals = {i.id: i for i in open_run(run_dir).individuals()}
    born = sorted(individuals.values(), key=lambda i: (i.generation, int(i.id.split("_")[1])))
    for checkpoint in _checkpoints(run_dir):
        g = checkpoint["generation"]
        # With one worker every child of a generation is accepted before it ends, and a
        # tabular evaluation is never cut short: the population is the youngest so far.
        so_far = [i.id for i in born if i.generation <= g]
        assert sorted(checkpoint["population"]) == sorted(so_far[-RUN["population"] :])
        assert checkpoint["counters"].get("in_flight", []) == []
    # Each child's parent was alive when it was made: in the population of the generation
    # before, or a child of its own generation made before it.
    for checkpoint in _checkpoints(run_dir)[:-1]:
        alive = set(checkpoint["population"])
        g = checkpoint["generation"] + 1
        for child in sorted((i for i in born if i.generation == g), key=lambda i: i.id):
            assert child.parents[0] in alive, (child.id, child.parents)
            alive.add(child.id)


def test_birth_orders_individuals_by_generation_then_index():
    class Ind:
        def __init__(self, id_: str) -> None:
            self.id, self.generation = id_, int(id_[1 : id_.index("_")])

    ids = ["g2_0", "g1_10", "g1_2", "g0_11"]
    assert sorted(ids, key=lambda i: birth(Ind(i))) == ["g0_11", "g1_2", "g1_10", "g2_0"]


@pytest.mark.parametrize(
    "point",
    [
        "record:9",  # inside the transaction that stores generation 1's fourth child
        pytest.param("checkpoint:3", marks=pytest.mark.slow),  # generation 2's checkpoint
    ],
)
def test_an_asynchronous_run_killed_resumes_to_the_same_run_with_one_worker(
    tmp_path, straight, point
):
    _, expected = straight
    config = tmp_path / "experiment.toml"
    config.write_text(tomli_w.dumps(RUN))
    run_dir = tmp_path / "run"
    command = [*ECOGEN, "evolve", "--config", str(config), "--run-dir", str(run_dir)]
    killed = subprocess.run(
        command, env={**ENV, faults.VARIABLE: point}, capture_output=True, text=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = subprocess.run(
        [*ECOGEN, "resume", str(run_dir)], env=ENV, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert _rows(run_dir) == expected


def test_two_workers_never_wait_for_a_generation_and_a_killed_run_resumes(tmp_path):
    values = {**RUN, "executor": "local", "workers": 2, "generations": 5}
    config = tmp_path / "experiment.toml"
    config.write_text(tomli_w.dumps(values))
    run_dir = tmp_path / "run"
    command = [*ECOGEN, "evolve", "--config", str(config), "--run-dir", str(run_dir)]
    killed = subprocess.run(
        command, env={**ENV, faults.VARIABLE: "checkpoint:4"}, capture_output=True, text=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # Generations end while children are still training: they go on into the next one, and
    # the checkpoint names them.
    carried = [c["counters"].get("in_flight", []) for c in _checkpoints(run_dir)]
    assert any(carried), carried
    resumed = subprocess.run(
        [*ECOGEN, "resume", str(run_dir)], env=ENV, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    run = open_run(run_dir)
    assert run.status == "complete"
    stored = {i.id: i for i in run.individuals()}
    for rows in carried:  # every child under way at a checkpoint has its evaluation
        assert all(stored[row["id"]].evaluation.ok for row in rows)
    # No child made is lost, whether it was training or waiting as its generation ended.
    for g in range(1, values["generations"] + 1):
        made = sorted(int(i.split("_")[1]) for i in stored if i.startswith(f"g{g}_"))
        assert made == list(range(len(made))), (g, made)
    last = _checkpoints(run_dir)[-1]
    assert not last["counters"].get("in_flight")  # the last generation waits for its children
    # Every generation accepted its children: the first population, then 4 each.
    assert run.summary["evaluations"] + run.summary["dedup_hits"] >= len(stored) - 1
    assert len(last["population"]) == RUN["population"]


@pytest.mark.parametrize("workers", [1, 2])
def test_max_evaluations_holds_with_any_number_of_workers(tmp_path, digits, workers):
    values = {**RUN, "executor": "local" if workers > 1 else "auto", "workers": workers}
    run = evolve({**values, "max_evaluations": 11}, data=digits, run_dir=tmp_path / "run")
    assert run.summary["evaluations"] == 11
    assert run.summary["stopped_by"] == "evaluations"


@pytest.mark.parametrize(
    "setting, named",
    [({"strategy": ["tournament", "rungs"]}, "strategy rungs"), ({"screen": "snip"}, "screen")],
)
def test_settings_that_decide_over_a_whole_generation_are_refused(setting, named):
    experiment = cfg.from_dict({**RUN, "evaluation": "", **setting})
    with pytest.raises(cfg.ConfigError, match=f"asynchronous: {named}"):
        experiment.check()


def test_the_strategies_proposals_are_each_generations_first_children(tmp_path, digits):
    values = {
        **RUN,
        "strategy": ["tournament", "duplication"],
        "strategies": {"duplication": {"phase": ""}},
    }
    run_dir = tmp_path / "run"
    evolve(values, data=digits, run_dir=run_dir)
    db = sqlite3.connect(run_dir / "ecogen.sqlite")
    proposed = [r[0] for r in db.execute("SELECT individual FROM events WHERE kind='proposed'")]
    db.close()
    assert proposed, "no proposal was made"
    stored = {i.id: i for i in open_run(run_dir).individuals()}
    for individual in proposed:  # each one evaluated, as the copy of its parent it proposes
        assert individual in stored, individual
        assert "gene_duplication" in stored[individual].operators, stored[individual].operators
    # Numbered first in their generation, as in a generational run.
    assert all(int(i.split("_")[1]) < RUN["offspring"] for i in proposed), proposed
