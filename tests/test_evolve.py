import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import operators as ops
import phenotypes as ph
from genomics import canonical_hash, loads
from runner import config as cfg
from runner.cli import main
from runner.evolution.engine import SilentReporter
from runner.session import open_store, start

TINY = [
    "--dataset", "digits", "--population", "4", "--generations", "2", "--epochs", "1",
    "--final-epochs", "2", "--seed", "3", "--device", "cpu",
]  # fmt: skip


def evolve(*args: str) -> object:
    result = CliRunner().invoke(main, ["evolve", *args])
    assert result.exit_code == 0, result.output
    return result


def test_evolve_writes_a_complete_run_directory(tmp_path):
    run = tmp_path / "run"
    evolve(*TINY, "--init", "minimal", "--run-dir", str(run))
    for name in ("experiment.toml", "ecogen.sqlite", "summary.json"):
        assert (run / name).is_file()
    summary = json.loads((run / "summary.json").read_text())
    for key in ("best", "evaluations", "epochs_trained", "dedup_hits", "failures", "seconds"):
        assert key in summary
    # The first population is four copies of the minimal seed: trained once, reused three times.
    assert summary["dedup_hits"] >= 3
    assert summary["evaluations"] + summary["dedup_hits"] == summary["individuals"] == 12
    best = json.loads((run / "best" / "summary.json").read_text())
    assert set(best) >= {"test_accuracy", "val_accuracy", "params", "flops", "history"}
    assert best["genome_hash"] == summary["best"]["genome_hash"]
    genome, _ = ph.load_model(run / "best" / "model.pt")
    assert canonical_hash(genome) == best["genome_hash"]
    assert loads((run / "best" / "genome.json").read_text()) == genome


def test_the_store_holds_every_individual_with_its_lineage(tmp_path):
    run = tmp_path / "run"
    evolve(*TINY, "--run-dir", str(run))
    db = sqlite3.connect(run / "ecogen.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    columns = "id, generation, genome, genome_hash, parents, operators, evaluation"
    rows = db.execute(f"SELECT {columns} FROM individuals").fetchall()
    ids = {r[0] for r in rows}
    assert len(rows) == 12
    for _, generation, genome, genome_hash, parents, operators, evaluation in rows:
        assert canonical_hash(loads(genome)) == genome_hash
        parents, operators = json.loads(parents), json.loads(operators)
        assert (parents == []) == (generation == 0)
        assert set(parents) <= ids
        assert set(operators) <= set(ops.names())
        status, fitness, history = db.execute(
            "SELECT status, fitness, history FROM evaluations WHERE id = ?", (evaluation,)
        ).fetchone()
        assert status == "ok" and json.loads(fitness)[0] == json.loads(history)[-1]["val_accuracy"]
    checkpoints = db.execute("SELECT generation, rng FROM checkpoints").fetchall()
    assert [c[0] for c in checkpoints] == [0, 1, 2]
    assert set(json.loads(checkpoints[-1][1])) >= {
        "engine",
        "python",
        "numpy",
        "torch",
    }


def test_experiment_toml_runs_again_as_is_and_flags_override_it(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    evolve(*TINY, "--run-dir", str(first))
    evolve("--config", str(first / "experiment.toml"), "--run-dir", str(second))
    a = json.loads((first / "summary.json").read_text())
    b = json.loads((second / "summary.json").read_text())
    assert a["best"]["genome_hash"] == b["best"]["genome_hash"]  # CPU runs are reproducible
    assert cfg.load(first / "experiment.toml") == cfg.load(second / "experiment.toml")
    third = tmp_path / "c"
    evolve(
        "--config", str(first / "experiment.toml"), "--generations", "1", "--run-dir", str(third)
    )
    assert cfg.load(third / "experiment.toml")["generations"] == 1


@pytest.mark.parametrize(
    ("limit", "stopped_by"),
    [(["--max-evaluations", "6"], "evaluations"), (["--time-budget", "1e-9"], "time budget")],
)
def test_evaluation_and_time_limits_stop_the_search(tmp_path, limit, stopped_by):
    run = tmp_path / "run"
    evolve(*TINY, "--generations", "50", *limit, "--run-dir", str(run))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_by"] == stopped_by
    assert summary["evaluations"] == (6 if stopped_by == "evaluations" else 1)
    assert (run / "best" / "model.pt").is_file()


class _InterruptAfter(SilentReporter):
    def __init__(self, evaluations: int) -> None:
        self.left = evaluations

    def evaluated(self, engine, individual, result):
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


@pytest.mark.parametrize("extra", [[], ["--crossover-rate", "0.5"]], ids=["mutation", "crossover"])
def test_an_interrupted_run_resumes_to_the_same_result(tmp_path, extra):
    straight = tmp_path / "straight"
    evolve(*TINY, *extra, "--generations", "3", "--run-dir", str(straight))
    expected = json.loads((straight / "summary.json").read_text())

    interrupted = tmp_path / "interrupted"
    values = {**cfg.load(straight / "experiment.toml"), "run_dir": str(interrupted)}
    experiment = cfg.from_dict(values)
    data = ph.load_dataset("digits", seed=experiment.seed)
    engine = start(experiment, data)
    with pytest.raises(KeyboardInterrupt):
        engine.run(_InterruptAfter(7))  # in the middle of generation 1
    engine.store.close()
    store, _ = open_store(interrupted)
    assert store.get_meta("status") == "interrupted"
    store.close()

    result = CliRunner().invoke(main, ["resume", str(interrupted)])
    assert result.exit_code == 0, result.output
    got = json.loads((interrupted / "summary.json").read_text())
    for key in ("evaluations", "epochs_trained", "dedup_hits", "failures", "individuals"):
        assert got[key] == expected[key], key
    assert got["best"]["genome_hash"] == expected["best"]["genome_hash"]
    assert got["best"]["test_accuracy"] == expected["best"]["test_accuracy"]
    lineage = "SELECT id, genome_hash, parents, operators FROM individuals ORDER BY id"
    assert _query(interrupted, lineage) == _query(straight, lineage)


def _query(run: Path, query: str) -> list:
    db = sqlite3.connect(run / "ecogen.sqlite")
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def test_a_failing_candidate_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_train = ph.train

    def flaky_train(model, data, spec, on_epoch=None, teacher=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real_train(model, data, spec, on_epoch=on_epoch, teacher=teacher)

    monkeypatch.setattr(ph, "train", flaky_train)
    run = tmp_path / "run"
    evolve(*TINY, "--run-dir", str(run))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["failures"] == 1
    db = sqlite3.connect(run / "ecogen.sqlite")
    status, reason, fitness = db.execute(
        "SELECT status, reason, fitness FROM evaluations WHERE status != 'ok'"
    ).fetchone()
    assert status == "failed" and reason.startswith("RuntimeError: CUDA error")
    assert json.loads(fitness) == [0.0]


def test_a_diverging_candidate_fails_with_its_reason(tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(
        main, ["evolve", *TINY, "--run-dir", str(run), "--init", "minimal", "--generations", "0"]
    )
    assert result.exit_code == 0
    (run / "huge.toml").write_text("lr = 1e12\nepochs = 2\npopulation = 2\ngenerations = 1\n")
    evolve(
        "--config", str(run / "huge.toml"), "--run-dir", str(tmp_path / "nan"), "--device", "cpu"
    )
    summary = json.loads((tmp_path / "nan" / "summary.json").read_text())
    assert summary["failures"] >= 1
    db = sqlite3.connect(tmp_path / "nan" / "ecogen.sqlite")
    reasons = [r[0] for r in db.execute("SELECT reason FROM evaluations WHERE status = 'failed'")]
    assert reasons and all(r.startswith("diverged") for r in reasons)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("populaton = 3\n", "error: populaton: unknown key"),
        ("population = 0\n", "error: population: must be >= 1, got 0"),
        ("population = '3'\n", "error: population: must be int, got '3'"),
        ("init = 'zoo:nope'\n", "error: init: no zoo genome ['nope']"),
        ("[mutation]\nchanel_range = [4, 8]\n", "error: mutation.chanel_range: unknown key"),
        ("[weights]\nadd_skipp = 2.0\n", "error: weights.add_skipp: no such operator"),
        ("crossover_rate = 1.5\n", "error: crossover_rate: must be a number in [0, 1], got 1.5"),
        ("max_flops = -1\n", "error: max_flops: must be >= 0 (0: no limit), got -1"),
        ("max_latency_ms = 'fast'\n", "error: max_latency_ms: must be float, got 'fast'"),
        ("max_latency_ms = inf\n", "error: max_latency_ms: must be a finite number >= 0"),
        (
            "[crossover_weights]\nhomologous = 1.0\n",
            "error: crossover_weights.homologous: no such crossover (see `ecogen plugins`)",
        ),
        (
            "[crossover_weights]\nsubgraph_exchange = -1\n",
            "error: crossover_weights.subgraph_exchange: must be a finite number >= 0, got -1",
        ),
        (
            "strategy = 'cost-aware'\n[strategies.cost-aware]\ncost = 'joules'\n",
            "error: strategies.cost-aware.cost: must be one of params, size_bytes, flops,"
            " latency_ms, got 'joules'",
        ),
        ("population = [\n", "not valid TOML"),
    ],
)
def test_bad_configs_fail_in_one_line(tmp_path, toml, message):
    (tmp_path / "bad.toml").write_text(toml)
    result = CliRunner().invoke(
        main, ["evolve", "--config", str(tmp_path / "bad.toml"), "--run-dir", str(tmp_path / "r")]
    )
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--crossover-rate", "2"], "error: crossover_rate: must be a number in [0, 1], got 2.0"),
        (["--max-flops", "-5"], "error: max_flops: must be >= 0 (0: no limit), got -5"),
        (["--max-latency-ms", "-1"], "error: max_latency_ms: must be a finite number >= 0"),
    ],
)
def test_bad_cost_and_crossover_flags_fail_in_one_line(tmp_path, flags, message):
    result = CliRunner().invoke(main, ["evolve", *flags, "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_run_directories_are_never_overwritten_and_resume_needs_a_run(tmp_path):
    run = tmp_path / "run"
    evolve(*TINY, "--generations", "0", "--run-dir", str(run))
    again = CliRunner().invoke(main, ["evolve", *TINY, "--run-dir", str(run)])
    assert again.exit_code == 1 and "already holds a run" in again.output
    done = CliRunner().invoke(main, ["resume", str(run)])
    assert done.exit_code == 1 and "complete" in done.output
    more = CliRunner().invoke(main, ["resume", str(run), "--generations", "1"])
    assert more.exit_code == 0, more.output
    assert json.loads((run / "summary.json").read_text())["generations"] == 1
    (tmp_path / "empty").mkdir()
    missing = CliRunner().invoke(main, ["resume", str(tmp_path / "empty")])
    assert missing.exit_code == 1 and "no run store here" in missing.output


def test_plugins_lists_every_operator_with_its_provider():
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0
    for name in ops.THESIS_MUTATIONS:
        assert any(line.split()[:2] == [name, "ecogen"] for line in result.output.splitlines())


@pytest.mark.slow
def test_ctrl_c_on_the_command_line_then_resume_completes(tmp_path):
    run = tmp_path / "run"
    ecogen = [sys.executable, "-m", "runner.cli"]
    args = [*TINY, "--generations", "4", "--epochs", "3", "--run-dir", str(run)]
    proc = subprocess.Popen([*ecogen, "evolve", *args], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        db = run / "ecogen.sqlite"
        if (
            db.exists()
            and sqlite3.connect(db).execute("SELECT count(*) FROM checkpoints").fetchone()[0] >= 2
        ):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"ecogen resume {run}" in err
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    done = subprocess.run([*ecogen, "resume", str(run)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["generations"] == 4 and summary["stopped_by"] == "generations"
