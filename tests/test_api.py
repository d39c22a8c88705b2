"""The Python API (``runner.api``: ``evolve``, ``open_run``, ``Run``) and user evaluations
(``runner.evaluations``): a search through the API reads the best its summary and store hold;
a user evaluation (a lookup table, ``tests/tabular.py``) replaces the training for every
executor, survives a kill and a resume, is de-duplicated, fails as data, and comes by name from
an entry point."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tabular
import tomli_w
from click.testing import CliRunner

import genomics as G
import phenotypes as ph
from runner import Run, evaluations, evolve, faults, open_run
from runner import config as cfg
from runner import rng as rngs
from runner.cli import main
from runner.errors import RunError

ROOT = Path(__file__).resolve().parent.parent
ECOGEN = [sys.executable, "-m", "runner.cli"]
# Processes the tests start find tests/tabular.py by name.
ENV = {
    **{k: v for k, v in os.environ.items() if k != faults.VARIABLE},
    "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), *sys.path]),
}
TABLE = "tabular:lookup"
# No training: the whole search takes well under a second but for loading the data.
RUN = {
    "dataset": "digits",
    "population": 4,
    "generations": 3,
    "epochs": 4,
    "seed": 7,
    "device": "cpu",
    "evaluation": TABLE,
}


@pytest.fixture(scope="module")
def digits():
    return ph.load_dataset("digits", seed=RUN["seed"])


def _rows(run_dir: Path) -> list[tuple]:
    """Every individual of a run by id (workers store them as they finish): id, genome hash,
    whether reused, and its evaluation's status and fitness."""
    return sorted(
        (i.id, i.genome_hash, i.reused, str(i.evaluation.status), i.evaluation.fitness)
        for i in open_run(run_dir).individuals()
    )


@pytest.fixture(scope="module")
def straight(tmp_path_factory, digits) -> tuple[Path, list]:
    """The tabular search, never interrupted."""
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    evolve(RUN, data=digits, run_dir=run_dir)
    return run_dir, _rows(run_dir)


# --- the API ------------------------------------------------------------------------------------


def test_a_search_through_the_api_reports_the_best_its_summary_and_store_hold(tmp_path, digits):
    # final_epochs = 0: the best keeps its search weights, no final training to wait for.
    run = evolve(
        cfg.from_dict(
            {
                "dataset": "digits",
                "population": 3,
                "generations": 1,
                "epochs": 1,
                "final_epochs": 0,
                "device": "cpu",
                "seed": 2,
            }
        ),
        data=digits,
        run_dir=tmp_path / "run",
    )
    assert isinstance(run, Run) and run.status == "complete"
    summary = run.summary
    best = run.best
    assert best.id == summary["best"]["id"]
    assert best.val_accuracy == summary["best"]["search_val_accuracy"]
    assert best.params == summary["best"]["params"]
    assert G.canonical_hash(best.genome) == summary["best"]["genome_hash"]
    individuals = list(run.individuals())
    assert len(individuals) == summary["individuals"] == 6
    ok = [i for i in individuals if i.evaluation.ok and not i.reused]
    # The best is the most accurate the store holds (fewer parameters, then candidate order,
    # break ties).
    top = max(i.evaluation.val_accuracy for i in ok)
    assert best.val_accuracy == top
    stored = next(i for i in individuals if i.id == best.id)
    assert stored.evaluation == best.evaluation and stored.genome == best.genome


def test_evolve_takes_a_toml_file_and_refuses_a_directory_that_holds_a_run(
    tmp_path, digits, straight
):
    config = tmp_path / "experiment.toml"
    config.write_text(tomli_w.dumps({**RUN, "generations": 1}))
    run = evolve(config, data=digits, run_dir=tmp_path / "run")
    assert run.summary["generations"] == 1
    with pytest.raises(RunError, match=r"already holds a run; continue it with `ecogen resume"):
        evolve(config, data=digits, run_dir=tmp_path / "run")
    with pytest.raises(RunError, match=r"^.*nowhere: no run here \(no ecogen.sqlite\)$"):
        open_run(tmp_path / "nowhere")


def test_the_readme_example_runs(tmp_path, monkeypatch):
    """README.md's "Python API" example, as written there."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert (tmp_path / "runs" / "readme" / "summary.json").is_file()


# --- user evaluations ---------------------------------------------------------------------------


def test_a_user_evaluation_gives_every_candidate_its_metrics_and_nothing_is_trained(straight):
    run_dir, _ = straight
    run = open_run(run_dir)
    for individual in run.individuals():
        evaluation = individual.evaluation
        params = sum(G.parameter_counts(individual.genome).values())
        assert evaluation.ok and evaluation.val_accuracy == tabular.accuracy_of(params)
        assert evaluation.params == params and evaluation.epochs == RUN["epochs"]
        assert evaluation.metrics["evaluation"] == TABLE
        assert evaluation.metrics["source"] == "formula"  # the user's own metric, kept
    assert not (run_dir / "weights").exists() or not list((run_dir / "weights").iterdir())
    summary = run.summary
    assert summary["evaluation"] == TABLE
    best = summary["best"]
    assert best["final_from"] == "none" and best["final_epochs"] == 0
    assert summary["final_training_seconds"] == 0
    assert best["val_accuracy"] == best["search_val_accuracy"] == run.best.val_accuracy
    assert best["test_accuracy"] == run.best.metrics["test_accuracy"]
    assert sorted(p.name for p in (run_dir / "best").iterdir()) == ["genome.json"]
    assert G.loads((run_dir / "best" / "genome.json").read_text()) == run.best.genome


def test_the_context_tells_what_the_training_would_have_had(tmp_path, digits):
    seen = []

    def evaluate(genome, context):
        seen.append(context)
        return {"val_accuracy": 0.5}

    run = evolve(
        {**RUN, "generations": 1}, data=digits, run_dir=tmp_path / "run", evaluate=evaluate
    )
    stored = {i.id: i for i in run.individuals()}
    assert [c.individual for c in seen] == [i for i in stored if not stored[i].reused]
    for context in seen:
        individual = stored[context.individual]
        assert context.generation == individual.generation
        assert context.parents == individual.parents
        assert context.seed == rngs.seed_for(RUN["seed"], context.individual)
        assert (context.epochs, context.planned_epochs, context.start_epoch) == (4, 4, 0)
        assert (context.data_fraction, context.rung) == (1.0, 0)
    assert any(c.parents for c in seen)


def test_rungs_tell_a_promotion_its_rung_and_the_epochs_it_has(tmp_path, digits):
    seen = []

    def evaluate(genome, context):
        seen.append((context.rung, context.start_epoch, context.epochs, context.planned_epochs))
        return tabular.lookup(genome, context)

    run = evolve(
        {**RUN, "strategy": ["rungs"], "epochs": 9, "generations": 1, "population": 6},
        data=digits,
        run_dir=tmp_path / "run",
        evaluate=evaluate,
    )
    # Rungs at 1, 3 and 9 epochs: a promotion adds the epochs to its next rung.
    assert set(seen) == {(0, 0, 1, 9), (1, 1, 2, 9), (2, 3, 6, 9)}
    assert run.best.metrics["rung"] == 2 and run.best.evaluation.epochs == 9


@pytest.mark.parametrize(
    "point",
    [
        # inside the transaction that stores the sixth evaluation (generation 1's second)
        "record:6",
        # inside the transaction of generation 1's checkpoint
        pytest.param("checkpoint:2", marks=pytest.mark.slow),
        # the search done, where the final training would start
        pytest.param("final:1", marks=pytest.mark.slow),
    ],
)
def test_a_run_by_a_user_evaluation_killed_at_any_moment_resumes_to_the_same_result(
    tmp_path, straight, point
):
    _, expected = straight
    config = tmp_path / "experiment.toml"
    config.write_text(tomli_w.dumps(RUN))
    run_dir = tmp_path / "run"
    killed = subprocess.run(
        [*ECOGEN, "evolve", "--config", str(config), "--run-dir", str(run_dir)],
        env={**ENV, faults.VARIABLE: point},
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (run_dir / "summary.json").exists()
    resumed = subprocess.run(
        [*ECOGEN, "resume", str(run_dir)], env=ENV, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert _rows(run_dir) == expected


def test_a_stopped_run_resumes_through_the_api_with_its_function(tmp_path, digits, straight):
    _, expected = straight
    calls = []
    stop_at = [7]

    def stopping(genome, context):
        calls.append(context.individual)
        if len(calls) == stop_at[0]:
            raise KeyboardInterrupt
        return tabular.lookup(genome, context)

    # A function of its own, registered under its name: the run must be given it again.
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        evolve({**RUN, "evaluation": ""}, data=digits, run_dir=run_dir, evaluate=stopping)
    run = open_run(run_dir)
    assert run.status == "interrupted" and run.summary is None
    with pytest.raises(RunError, match=r"this run is evaluated by .*stopping; evaluate is"):
        run.resume(data=digits, evaluate=tabular.lookup)
    stop_at[0] = 0
    run.resume(data=digits, evaluate=stopping)
    assert _rows(run_dir) == expected
    assert run.status == "complete"


def test_two_local_workers_store_what_one_does(tmp_path, digits, straight):
    _, expected = straight
    run_dir = tmp_path / "run"
    run = evolve({**RUN, "executor": "local", "workers": 2}, data=digits, run_dir=run_dir)
    assert run.summary["executor"] == "local" and run.summary["workers"] == 2
    assert _rows(run_dir) == expected


def test_de_duplication_reuses_a_user_evaluations_result_for_a_repeated_genome(tmp_path, digits):
    calls = []

    def counting(genome, context):
        calls.append(G.canonical_hash(genome))
        return tabular.lookup(genome, context)

    # Every first genome is the minimal one: one evaluation, reused by the others.
    run = evolve(
        {**RUN, "init": "minimal", "generations": 1},
        data=digits,
        run_dir=tmp_path / "run",
        evaluate=counting,
    )
    individuals = list(run.individuals())
    assert len(calls) == len(set(calls))
    reused = [i for i in individuals if i.reused]
    assert [i.id for i in reused][:3] == ["g0_1", "g0_2", "g0_3"]
    first = next(i for i in individuals if i.id == "g0_0")
    assert all(i.evaluation.fitness == first.evaluation.fitness for i in reused[:3])
    assert run.summary["dedup_hits"] == len(reused)


def test_a_user_evaluation_never_reuses_a_built_in_training_s_result():
    from runner.records import Evaluation, Task, evaluation_key

    genome = G.minimal((1, 8, 8), 10)
    task = Task("g0_0", genome, G.canonical_hash(genome), 0, 1, 4)
    trained = Evaluation(status="ok", fitness=(0.9,), metrics={"planned_epochs": 4})
    looked_up = Evaluation(
        status="ok", fitness=(0.9,), metrics={"planned_epochs": 4, "evaluation": TABLE}
    )
    # The built-in training's key is the one stores written before user evaluations hold.
    assert (
        task.key
        == evaluation_key(task.genome_hash, trained)
        == (task.genome_hash, 4, None, None, ())
    )
    user_task = Task("g0_0", genome, task.genome_hash, 0, 1, 4, evaluation=TABLE)
    assert user_task.key == evaluation_key(task.genome_hash, looked_up) != task.key


def _moody(genome, context) -> dict:
    """Raises for some genomes, returns no accuracy for others."""
    params = sum(G.parameter_counts(genome).values())
    if params % 3 == 0:
        raise ValueError(f"no entry for {params} parameters\nsecond line")
    if params % 3 == 1:
        return {"accuracy": 0.5}
    return {"val_accuracy": tabular.accuracy_of(params)}


def test_an_evaluation_that_raises_or_gives_no_accuracy_fails_and_the_run_goes_on(tmp_path, digits):
    run = evolve(
        {**RUN, "max_failures": 0, "generations": 2},
        data=digits,
        run_dir=tmp_path / "run",
        evaluate=_moody,
    )
    assert run.status == "complete" and run.summary["generations"] == 2
    reasons = [i.evaluation.reason for i in run.individuals() if not i.evaluation.ok]
    name = evaluations.name_of(_moody)
    raised = [r for r in reasons if "ValueError" in r]
    empty = [r for r in reasons if "val_accuracy" in r]
    assert raised and all(
        re.fullmatch(rf"evaluation {name}: ValueError: no entry for \d+ parameters", r)
        for r in raised
    )
    assert empty and set(empty) == {
        f"evaluation {name}: val_accuracy must be a number in [0, 1], got no val_accuracy"
    }
    assert run.summary["failures"] == len(reasons)
    assert run.best.evaluation.ok


# --- by name: config, flag, entry points --------------------------------------------------------


def test_settings_a_user_evaluation_cannot_serve_are_refused_in_one_line():
    def check(**values):
        with pytest.raises(cfg.ConfigError) as caught:
            cfg.from_dict({**RUN, **values}).check()
        assert "\n" not in str(caught.value)
        return str(caught.value)

    assert check(evaluation="nosuch") == (
        "evaluation: no evaluation named 'nosuch' (evaluations: "
        + (", ".join(evaluations.names()) or "none registered")
        + "; or MODULE:FUNCTION); see `ecogen plugins`"
    )
    assert check(evaluation="tabular:nosuch").startswith(
        "evaluation: no evaluation named 'tabular:nosuch' (AttributeError: "
    )
    assert check(inherit=True) == (
        f"inherit: a user evaluation (evaluation = '{TABLE}') trains no network, so children"
        " have no weights to inherit; set inherit = false"
    )
    assert check(strategy=["eigen"]).startswith(
        "strategy: mimicry trains candidates toward the best's network, and a user evaluation"
    )
    evaluations.register("closure", lambda genome, context: {"val_accuracy": 1.0})
    try:
        assert check(evaluation="closure", executor="local", workers=2).startswith(
            "evaluation: closure cannot go to local worker processes (AttributeError: Can't"
            " pickle local object"
        )
    finally:
        del evaluations.EVALUATIONS.extra["closure"]
    cfg.from_dict(RUN).check()  # screening, rungs and the rest are fine


PLUGIN = """
import tabular


def table(genome, context):
    '''A tabular benchmark's accuracy. Looked up, never trained.'''
    return tabular.lookup(genome, context)


def one_argument(genome):
    return {"val_accuracy": 1.0}
"""


def test_entry_point_evaluations_run_by_name_and_bad_ones_are_refused(
    install_plugin, tmp_path, straight
):
    _, expected = straight
    install_plugin(
        "ecogen-table-demo",
        "ecogen_table_demo",
        PLUGIN,
        {
            "ecogen.evaluations": {
                "table": "ecogen_table_demo:table",
                "one_argument": "ecogen_table_demo:one_argument",
            }
        },
    )
    info = evaluations.get("table")
    assert info.provider == "ecogen-table-demo" and info.summary == "A tabular benchmark's accuracy"
    assert evaluations.refused()["one_argument"] == (
        "evaluation 'one_argument' of ecogen-table-demo: not an evaluation (a function"
        " (genome, context) -> metrics)"
    )
    listing = CliRunner().invoke(main, ["plugins"])
    assert listing.exit_code == 1  # for the refused one
    assert any(
        line.split()[:2] == ["table", "ecogen-table-demo"] for line in listing.stdout.splitlines()
    )
    assert evaluations.refused()["one_argument"] in listing.output
    run_dir = tmp_path / "run"
    config = tmp_path / "experiment.toml"
    config.write_text(tomli_w.dumps({k: v for k, v in RUN.items() if k != "evaluation"}))
    result = CliRunner().invoke(
        main,
        ["evolve", "--config", str(config), "--evaluation", "table", "--run-dir", str(run_dir)],
    )
    assert result.exit_code == 0, result.output
    assert _rows(run_dir) == expected
    assert json.loads((run_dir / "summary.json").read_text())["evaluation"] == "table"
    # The run's evaluation cannot change on resume: it would be another run.
    refused = CliRunner().invoke(main, ["resume", str(run_dir), "--evaluation", "tabular:lookup"])
    assert refused.exit_code != 0 and "this run has evaluation = table;" in refused.output


def test_stores_written_before_user_evaluations_resume_as_built_in_training(tmp_path):
    stored = cfg.dumps(cfg.from_dict({"dataset": "digits"}))
    values = cfg.tomllib.loads(stored)
    del values["evaluation"]
    assert cfg.from_dict({**cfg.introduced(values), **values}).evaluation == ""
