"""Runs survive anything: a hard kill at any moment, failing candidates, a second process,
damaged run directories and malformed input files (docs/reliability.md maps each guarantee to
the tests here)."""

import atexit
import hashlib
import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs
import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import genomics as G
import operators as ops
import phenotypes as ph
from genomics.testing import genomes, invalid_documents
from runner import config as cfg
from runner import faults
from runner.cli import main
from runner.lock import RunLock
from runner.session import prepare_resume

ECOGEN = [sys.executable, "-m", "runner.cli"]
ENV = {k: v for k, v in os.environ.items() if k != faults.VARIABLE}

# A stateful search: succession (phases), aggressive selection, extinction (thresholds learnt
# per generation, candidates stopped mid-training), duplication and mimicry (a teacher's
# weights), so that a resume must restore every kind of strategy state to come out the same.
EIGEN_RUN = {
    "dataset": "digits",
    "init": "minimal",
    "population": 4,
    "generations": 3,
    "epochs": 2,
    "final_epochs": 1,
    "seed": 3,
    "device": "cpu",
    "strategy": ["eigen"],
    "strategies": {
        "succession": {"primary_epochs": 2, "secondary_epochs": 2},
        "extinction": {"threshold": "kth", "k": 1},
    },
    # Children start from their parents' weights: resume and workers must carry them too.
    # For all the epochs, so that extinction's landmarks still cut some of them short.
    "inherit": True,
    "inherit_epochs": 2,
}

# Summary fields that differ between two runs of one experiment, left out of comparisons:
# wall-clock times (seconds, final_training_seconds), where the run lives (run_dir), and its size
# on disk (disk_bytes: SQLite's page layout and write-ahead log depend on when each process
# stopped and checkpointed, and a resumed run writes its status and times again).
RUN_DEPENDENT = ("seconds", "final_training_seconds", "run_dir", "disk_bytes", "weights_bytes")


def _config(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "experiment.toml"
    path.write_text(tomli_w.dumps(values))
    return path


def _outcome(run_dir: Path) -> dict:
    """Everything a run decided, without what depends on when it ran: the summary, every
    individual with its evaluation, the events, and the last checkpoint (population, hall of
    fame, logbook, generator and strategy states, counters)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in RUN_DEPENDENT:
        summary.pop(key)
    db = sqlite3.connect(run_dir / "ecogen.sqlite")
    individuals = db.execute(
        "SELECT i.id, i.generation, i.genome_hash, i.parents, i.operators, i.reused, i.phase,"
        " e.individual, e.status, e.reason, e.fitness, e.epochs, e.history FROM individuals i"
        " JOIN evaluations e ON e.id = i.evaluation ORDER BY i.id"
    ).fetchall()
    events = db.execute(
        "SELECT generation, source, kind, individual, data FROM events"
        " ORDER BY generation, kind, individual, data"
    ).fetchall()
    last = db.execute(
        "SELECT generation, population, hall_of_fame, logbook, rng, counters, strategy"
        " FROM checkpoints ORDER BY generation DESC LIMIT 1"
    ).fetchone()
    status = db.execute("SELECT value FROM meta WHERE key = 'status'").fetchone()[0]
    db.close()
    logbook = [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads(last[3])]
    counters = {k: v for k, v in json.loads(last[5]).items() if k != "seconds"}
    return {
        "summary": summary,
        "individuals": individuals,
        "events": events,
        "checkpoint": (last[0], last[1], last[2], logbook, last[4], counters, last[6]),
        "status": status,
    }


def _store_count(run_dir: Path, table: str) -> int:
    try:
        db = sqlite3.connect(f"file:{run_dir / 'ecogen.sqlite'}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:  # not created yet
        return 0


def _evolve(config: Path, run: Path, **popen) -> subprocess.Popen:
    """``ecogen evolve --config CONFIG --run-dir RUN`` in a process of its own."""
    return subprocess.Popen(
        [*ECOGEN, "evolve", "--config", str(config), "--run-dir", str(run)],
        env=popen.pop("env", ENV),
        stdout=subprocess.DEVNULL,
        stderr=popen.pop("stderr", subprocess.DEVNULL),
        text=True,
        **popen,
    )


def _wait_for_individuals(run: Path, count: int, proc: subprocess.Popen) -> None:
    """Until the run's store holds ``count`` individuals (the run must still be going)."""
    deadline = time.time() + 120
    while _store_count(run, "individuals") < count:
        assert proc.poll() is None, "the run ended before the moment the test waits for"
        assert time.time() < deadline, "timed out"
        time.sleep(0.01)


def _resume(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [*ECOGEN, "resume", str(run_dir), *args], env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done


def _straight(folder: Path, values: dict) -> tuple[Path, dict]:
    """The experiment file of ``values`` and the outcome of its run never interrupted."""
    config = _config(folder, values)
    run = folder / "straight"
    straight = _evolve(config, run)
    assert straight.wait() == 0
    return config, _outcome(run)


@pytest.fixture(scope="module")
def eigen(tmp_path_factory) -> tuple[Path, dict]:
    return _straight(tmp_path_factory.mktemp("eigen"), EIGEN_RUN)


# --- a hard kill at any moment, then `ecogen resume` -------------------------------------------


# One crash point runs in `make test`, every one in `make test-slow` (CI runs both).
_SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "point",
    [
        # during a candidate's training (after its first epoch of two)
        pytest.param("epoch:3", marks=_SLOW),
        # weights written, evaluation not yet stored
        pytest.param("weights:2", marks=_SLOW),
        # inside the transaction that stores an evaluation
        "record:4",
        # between two evaluations
        pytest.param("evaluation:6", marks=_SLOW),
        # inside the transaction of generation 1's checkpoint
        pytest.param("checkpoint:2", marks=_SLOW),
        # the search done, at the final training of the best
        pytest.param("final:1", marks=_SLOW),
    ],
)
def test_a_run_killed_at_any_moment_resumes_to_the_same_result(tmp_path, eigen, point):
    config, expected = eigen
    run = tmp_path / "run"
    killed = _evolve(config, run, env={**ENV, faults.VARIABLE: point}, stderr=subprocess.PIPE)
    _, err = killed.communicate()
    assert killed.returncode == -signal.SIGKILL, err
    assert not (run / "summary.json").exists()
    _resume(run)
    assert _outcome(run) == expected


@pytest.mark.slow
def test_a_run_killed_at_its_evaluation_budget_resumes_to_the_same_result(tmp_path):
    """Killed after the last evaluation its budget allows, before that generation's checkpoint:
    the resumed run must count the evaluations it replays, not all those the store holds."""
    values = {**EIGEN_RUN, "strategy": ["tournament"], "strategies": {}, "epochs": 1}
    config, expected = _straight(tmp_path, {**values, "generations": 6, "max_evaluations": 6})
    assert expected["summary"]["stopped_by"] == "evaluations"
    run = tmp_path / "run"
    killed = _evolve(config, run, env={**ENV, faults.VARIABLE: "evaluation:9"})
    assert killed.wait() == -signal.SIGKILL
    _resume(run)
    assert _outcome(run) == expected


def _subset_of(expected, got, where: str = "outcome") -> None:
    """``got`` holds everything ``expected`` does, equal (dicts may have gained keys). Numbers
    that are not integers agree to 1e-6 relative: the fixture was written on another CPU, whose
    float32 kernels may round a training loss's last digits otherwise (every decision, counts
    and accuracies included, still compares exactly). JSON text (a stored history) is read."""
    if isinstance(expected, str) and expected[:1] in "[{" and isinstance(got, str):
        try:
            expected, got = json.loads(expected), json.loads(got)
        except ValueError:
            pass
    if isinstance(expected, float) and isinstance(got, float):
        assert math.isclose(expected, got, rel_tol=1e-6), f"{where}: {expected!r} != {got!r}"
    elif isinstance(expected, dict):
        assert isinstance(got, dict), where
        for key, value in expected.items():
            assert key in got, f"{where}.{key}: missing"
            _subset_of(value, got[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(expected, got, strict=True)):
            _subset_of(a, b, f"{where}[{i}]")
    else:
        assert expected == got, f"{where}: expected {expected!r}, got {got!r}"


def test_a_run_directory_from_ecogen_0_1_resumes_to_the_same_result(tmp_path):
    """A run killed by ecogen 0.1.0 mid-generation (tests/fixtures/README.md) resumes with this
    version to the outcome 0.1.0 had running it straight through."""
    fixtures = Path(__file__).parent / "fixtures"
    run = tmp_path / "old run"
    shutil.copytree(fixtures / "run-0.1.0", run)
    _resume(run)
    expected = json.loads((fixtures / "run-0.1.0.expected.json").read_text())
    got = json.loads(json.dumps(_outcome(run)))  # tuples as JSON lists, as stored
    _subset_of(expected, got)


def test_a_run_killed_from_outside_resumes_to_the_same_result(tmp_path, eigen):
    """SIGKILL by timing, wherever the process happens to be once 3 individuals are stored."""
    config, expected = eigen
    run = tmp_path / "run"
    proc = _evolve(config, run)
    _wait_for_individuals(run, 3, proc)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    _resume(run)
    assert _outcome(run) == expected


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGINT, 130), pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow)],
)
def test_ctrl_c_and_sigterm_stop_gracefully_and_say_how_to_resume(tmp_path, eigen, sig, code):
    config, expected = eigen
    run = tmp_path / "run"
    proc = _evolve(config, run, stderr=subprocess.PIPE)
    _wait_for_individuals(run, 2, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == (
        f"interrupted: everything evaluated is kept; continue with `ecogen resume {run}`"
    )
    db = sqlite3.connect(run / "ecogen.sqlite")
    assert db.execute("SELECT value FROM meta WHERE key = 'status'").fetchone()[0] == "interrupted"
    db.close()
    _resume(run)
    assert _outcome(run) == expected


def test_crash_points_are_off_by_default_and_checked(monkeypatch):
    monkeypatch.delenv(faults.VARIABLE, raising=False)
    for point in faults.POINTS:
        faults.reached(point)  # counts, and the process lives on
    monkeypatch.setenv(faults.VARIABLE, "nowhere:1")
    with pytest.raises(cfg.ConfigError, match="ECOGEN_CRASH_AT='nowhere:1': must be POINT:N"):
        faults.check()


# --- one writer per run directory --------------------------------------------------------------


@pytest.mark.slow
def test_a_second_evolve_is_refused_while_the_first_runs_and_resume_works_after_a_kill(
    tmp_path, eigen
):
    config, expected = eigen
    run = tmp_path / "run"
    command = [*ECOGEN, "evolve", "--config", str(config), "--run-dir", str(run)]
    first = _evolve(config, run)
    try:
        _wait_for_individuals(run, 1, first)
        first.send_signal(signal.SIGSTOP)  # hold it mid-run, its lock held
        before = _snapshot(run)
        for second in (command, [*ECOGEN, "resume", str(run)]):
            refused = subprocess.run(second, env=ENV, capture_output=True, text=True)
            assert refused.returncode == 1
            assert refused.stderr.strip().splitlines() == [
                f"error: {run}: in use by another ecogen process (pid {first.pid} on"
                f" {socket.gethostname()} since {_since(run)}); wait for it to end or stop it,"
                " then run `ecogen resume` on it"
            ]
        assert _snapshot(run) == before
    finally:
        first.kill()
        first.wait()
    _resume(run)  # the dead process's lock does not block
    assert _outcome(run) == expected


def _since(run: Path) -> str:
    holder = json.loads((run / "ecogen.lock").read_text())
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["since"]))


def test_the_lock_is_exclusive_and_released_with_its_holder(tmp_path):
    first = RunLock(tmp_path)
    with pytest.raises(
        cfg.RunError, match=f"in use by another ecogen process \\(pid {os.getpid()}"
    ):
        RunLock(tmp_path)
    first.release()
    # A lock file naming a process that is gone blocks nothing: only a live flock does.
    (tmp_path / "ecogen.lock").write_text(json.dumps({"pid": 999999, "host": "elsewhere"}))
    with RunLock(tmp_path) as again:
        assert again.held
        assert json.loads((tmp_path / "ecogen.lock").read_text())["pid"] == os.getpid()


# --- failing candidates are recorded and the run goes on ---------------------------------------


@pytest.fixture
def exploding_operator():
    """A user operator that always raises, registered for one test only."""

    @ops.mutation(changes="nothing: it always raises")
    def explode(genome, rng, config):
        raise ValueError("explode cannot mutate this genome")

    yield
    ops.OPERATORS.extra.pop("explode", None)


def test_raising_diverging_slow_and_out_of_memory_candidates_and_a_raising_mutation(
    tmp_path, monkeypatch, exploding_operator
):
    import torch

    real_train, calls = ph.train, []

    def faulty_train(model, data, spec, on_epoch=None, teacher=None):
        calls.append(1)
        n = len(calls)
        if n == 2:
            raise RuntimeError("a bug in a layer")
        if n == 3:  # a real NaN loss, through the real training loop
            next(model.parameters()).data.fill_(float("nan"))
        if n == 4:
            time.sleep(600)  # cut short by --evaluation-timeout
        if n == 5:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_train(model, data, spec, on_epoch=on_epoch, teacher=teacher)

    monkeypatch.setattr(ph, "train", faulty_train)
    run = tmp_path / "run"
    toml = "[weights]\nexplode = 2.0\n"
    (tmp_path / "c.toml").write_text(toml)
    result = CliRunner().invoke(
        main,
        ["evolve", "--config", str(tmp_path / "c.toml"), "--dataset", "digits", "--init",
         "minimal", "--population", "4", "--generations", "3", "--epochs", "1",
         "--final-epochs", "1", "--seed", "3", "--device", "cpu", "--evaluation-timeout", "8",
         "--run-dir", str(run)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "summary.json").read_text())
    db = sqlite3.connect(run / "ecogen.sqlite")
    failed = db.execute(
        "SELECT individual, reason, fitness, json_extract(metrics, '$.stage') FROM evaluations"
        " WHERE status = 'failed' ORDER BY id"
    ).fetchall()
    reasons = [r[1] for r in failed]
    assert reasons[:4] == [
        "RuntimeError: a bug in a layer",
        "diverged: training loss became nan in epoch 1",
        "timeout: evaluation took longer than its 8 s limit",
        "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    ]
    mutations = [r for r in failed if r[3] == "mutation"]
    assert mutations and all(
        r[1] == "mutation: ValueError: explode cannot mutate this genome" for r in mutations
    )
    assert all(json.loads(r[2]) == [0.0] for r in failed)  # the worst fitness
    assert summary["failures"] == len(failed) and summary["generations"] == 3
    # A child whose mutation failed never trained: its parent's genome is not marked failed.
    hashes = dict(db.execute("SELECT id, genome_hash FROM individuals"))
    assert db.execute(
        "SELECT count(*) FROM individuals WHERE reused = 1 AND evaluation IN"
        " (SELECT id FROM evaluations WHERE json_extract(metrics, '$.stage') = 'mutation')"
    ).fetchone() == (0,)
    assert len(hashes) == summary["individuals"]


def test_the_time_limit_holds_in_the_main_thread_and_elsewhere():
    """SIGALRM in the main thread, a check after each epoch in any other; a finished
    evaluation leaves no alarm behind."""
    import threading

    from runner.execution.training import evaluate_candidate

    data = ph.load_dataset("digits", seed=0)
    genome = G.minimal(data.input_shape, data.num_classes)
    spec = ph.TrainSpec(epochs=6, batch_size=64, device="cpu")

    def slow(metrics):
        time.sleep(0.4)

    results = {}

    def evaluate(where):
        results[where] = evaluate_candidate(genome, data, spec, on_epoch=slow, timeout=1.0)[0]

    evaluate("main")
    thread = threading.Thread(target=evaluate, args=("thread",))
    thread.start()
    thread.join()
    for where, result in results.items():
        assert result["status"] == "failed", where
        assert result["reason"] == "timeout: evaluation took longer than its 1 s limit"
    quick = evaluate_candidate(genome, data, attrs.evolve(spec, epochs=1), timeout=1.0)[0]
    assert quick["status"] == "ok"
    time.sleep(1.2)  # past the limit of the finished evaluation: no alarm goes off


def test_failures_in_a_row_stop_the_run_with_their_reasons_and_resume_goes_on(
    tmp_path, monkeypatch
):
    real_train = ph.train

    def broken(model, data, spec, on_epoch=None, teacher=None):
        raise RuntimeError(f"broken device {spec.seed % 97}")

    monkeypatch.setattr(ph, "train", broken)
    run = tmp_path / "run"
    args = ["--dataset", "digits", "--population", "4", "--generations", "2", "--epochs", "1",
            "--final-epochs", "1", "--seed", "3", "--device", "cpu"]  # fmt: skip
    stopped = CliRunner().invoke(
        main, ["evolve", *args, "--max-failures", "3", "--run-dir", str(run)]
    )
    assert stopped.exit_code == 1
    last = stopped.output.strip().splitlines()[-1]  # after the live display's lines
    assert last.startswith("error: 3 evaluations failed in a row, the last:")
    assert last.count("RuntimeError: broken device") == 3
    assert f"`ecogen resume {run} --max-failures N` (N > 3" in last
    assert "Traceback" not in stopped.output
    db = sqlite3.connect(run / "ecogen.sqlite")
    meta = dict(db.execute("SELECT key, value FROM meta"))
    assert (meta["status"], meta["stopped_by"]) == ("stopped", "failures")
    assert db.execute("SELECT count(*) FROM evaluations").fetchone() == (3,)
    db.close()

    monkeypatch.setattr(ph, "train", real_train)  # the cause fixed
    again = CliRunner().invoke(main, ["resume", str(run), "--max-failures", "0"])
    assert again.exit_code == 0, again.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["failures"] >= 3 and summary["generations"] == 2


# --- weights and checkpoints do not grow without bound -----------------------------------------


def test_weights_kept_are_the_best_and_the_last_k_and_old_checkpoints_are_slim(tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["evolve", "--dataset", "digits", "--init", "minimal", "--population", "4",
         "--generations", "4", "--epochs", "1", "--final-epochs", "1", "--seed", "3",
         "--device", "cpu", "--keep-weights", "1", "--run-dir", str(run)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(run / "ecogen.sqlite")
    best = json.loads(
        db.execute("SELECT counters FROM checkpoints WHERE generation = 4").fetchone()[0]
    )
    last = db.execute(
        "SELECT individual FROM evaluations WHERE status != 'failed' ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    assert {p.stem for p in (run / "weights").iterdir()} == {best["best"], last}
    rows = db.execute("SELECT generation, rng, strategy, logbook FROM checkpoints").fetchall()
    assert [r[0] for r in rows] == [0, 1, 2, 3, 4]
    assert all(r[1:] == ("{}", "{}", "[]") for r in rows[:-1])
    assert len(json.loads(rows[-1][3])) == 5 and "torch" in json.loads(rows[-1][1])
    db.close()
    summary = json.loads((run / "summary.json").read_text())
    files = sum(p.stat().st_size for p in run.rglob("*") if p.name != "summary.json")
    # Measured before the run's last two writes (its status, then closing the store).
    assert abs(summary["disk_bytes"] - files) <= 64 * 1024 and "disk" in result.output


@pytest.mark.skipif(not ph.resolve_device().type == "cuda", reason="needs a CUDA GPU")
def test_gpu_memory_is_released_between_evaluations(tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["evolve", "--dataset", "digits", "--population", "10", "--generations", "20",
         "--max-evaluations", "50", "--epochs", "1", "--final-epochs", "1", "--device", "cuda",
         "--run-dir", str(run)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(run / "ecogen.sqlite")
    held = [
        r[0]
        for r in db.execute(
            "SELECT json_extract(metrics, '$.cuda_allocated_before') FROM evaluations ORDER BY id"
        )
    ]
    # Before evaluation 2 is what evaluation 1 left; before evaluation 50, what 49 left.
    after_1, after_49 = held[1], held[49]
    print(f"CUDA memory allocated after 1 evaluation: {after_1}, after 49: {after_49}")
    assert after_49 <= after_1 + 2**20


# --- refused commands: one line, non-zero exit, nothing stored changed -------------------------


def _snapshot(run_dir: Path) -> dict[str, str]:
    """The bytes of every file the run had (files a refused command may add: its lock file and
    SQLite's empty shared-memory files of a read-only look are left out)."""
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name not in ("ecogen.lock", "ecogen.sqlite-wal", "ecogen.sqlite-shm")
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    result = CliRunner().invoke(
        main,
        ["evolve", "--dataset", "digits", "--init", "minimal", "--population", "2",
         "--generations", "1", "--epochs", "1", "--final-epochs", "1", "--seed", "3",
         "--device", "cpu", "--run-dir", str(run)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return run


def _refused(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert "Traceback" not in result.output and "--debug" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "this run is complete; raise a limit to go on"),
        (["--seed", "4"], "--seed: this run has seed = 3; resuming with 4 would make it differ"),
        (["--epochs", "2"], "--epochs: this run has epochs = 1"),
        (["--strategy", "nsga2"], "--strategy: this run has strategy = tournament"),
        (["--dataset", "fake:1,8,8"], "--dataset: this run has dataset = digits"),
        (["--augment", "translate"], "--augment: this run has augment = auto"),
        (["--no-decay-norm-and-bias"], "this run has decay_norm_and_bias = True"),
        (["--label-smoothing", "0"], "--label-smoothing: this run has label_smoothing = 0.1"),
        (["--generations", "0"], "--generations 0: a resumed run may only raise its limits"),
        (["--max-evaluations", "5"], "this run's max_evaluations is none"),
    ],
)
def test_resume_refuses_changes_that_would_alter_the_run(tmp_path, finished, args, message):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = _snapshot(run)
    _refused(["resume", str(run), *args], message)
    assert _snapshot(run) == before


def test_resume_extends_a_finished_run_and_keeps_its_other_settings(tmp_path, finished):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    result = CliRunner().invoke(
        main, ["resume", str(run), "--generations", "2", "--keep-weights", "0", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    saved = cfg.load(run / "experiment.toml")
    assert (saved["generations"], saved["keep_weights"], saved["seed"]) == (2, 0, 3)
    assert json.loads((run / "summary.json").read_text())["generations"] == 2


def test_evolve_into_a_run_directory_refuses_and_changes_nothing(tmp_path, finished):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = _snapshot(run)
    _refused(["evolve", "--run-dir", str(run), "--init", "minimal"], "already holds a run")
    assert _snapshot(run) == before


def test_resume_refuses_other_data_than_the_run_started_with(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((40, 6, 6)), "y_train": np.arange(40) % 4,
        "x_test": rng.random((12, 6, 6)), "y_test": np.arange(12) % 4,
    }  # fmt: skip
    data = tmp_path / "d.npz"
    np.savez(data, **arrays)
    run = tmp_path / "run"
    args = ["--dataset", str(data), "--init", "minimal", "--population", "2", "--generations",
            "0", "--epochs", "1", "--final-epochs", "0", "--device", "cpu"]  # fmt: skip
    assert CliRunner().invoke(main, ["evolve", *args, "--run-dir", str(run)]).exit_code == 0
    arrays["x_train"][0, 0, 0] += 1
    np.savez(data, **arrays)
    before = _snapshot(run)
    _refused(
        ["resume", str(run), "--generations", "1"],
        f"dataset {data} is not the data this run started with",
    )
    assert _snapshot(run) == before


def _damage(run: Path, how: str) -> None:
    store = run / "ecogen.sqlite"
    if how == "missing directory":
        shutil.rmtree(run)
    elif how == "no store":
        store.unlink()
    elif how == "empty store":
        store.write_bytes(b"")
    elif how == "not SQLite":
        store.write_bytes(b"this is not a database\n" * 40)
    elif how == "truncated":
        store.write_bytes(store.read_bytes()[: store.stat().st_size // 2])
    elif how == "corrupted":
        raw = bytearray(store.read_bytes())
        page = int.from_bytes(raw[16:18], "big")
        raw[page + 8 : 3 * page] = os.urandom(2 * page - 8)  # pages 2 and 3: a table's b-tree
        store.write_bytes(bytes(raw))
    else:
        db = sqlite3.connect(store, isolation_level=None)
        if how == "newer schema":
            db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        elif how == "no configuration":
            db.execute("DELETE FROM config")
        elif how == "another database":
            db.execute("DROP TABLE meta")
        db.close()


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("missing directory", "run: no such run directory"),
        ("no store", "ecogen.sqlite: no run store here (is this a run directory?)"),
        ("empty store", "ecogen.sqlite: empty file, not an ecogen run store"),
        ("not SQLite", "ecogen.sqlite: not an SQLite database (damaged, or not a run store)"),
        ("truncated", "ecogen.sqlite: truncated ("),
        ("corrupted", "ecogen.sqlite: "),
        ("newer schema", "run store schema 99 was written by a newer ecogen"),
        ("no configuration", "ecogen.sqlite: the run store holds no configuration"),
        ("another database", "ecogen.sqlite: not an ecogen run store"),
    ],
)
def test_damaged_run_directories_are_refused_in_one_line_and_left_as_they_are(
    tmp_path, finished, how, message
):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    for name in ("ecogen.sqlite-wal", "ecogen.sqlite-shm"):
        assert not (run / name).exists()  # the run closed cleanly: its log is in the file
    _damage(run, how)
    before = _snapshot(run) if run.exists() else {}
    _refused(["resume", str(run), "--generations", "2"], message)
    assert (_snapshot(run) if run.exists() else {}) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "nosuch"], "nosuch: unknown dataset (known: digits"),
        (["--dataset", "fake:1,x,8"], "fake:1,x,8"),
        (["--dataset", "missing.npz"], "missing.npz: no such .npz file"),
        (["--dataset", "imagefolder:/nonexistent"], "/nonexistent: no such image folder"),
        (["--strategy", "nosuch"], "nosuch"),
        (["--init", "zoo:nosuch"], "init: no zoo genome ['nosuch']"),
        (["--config", "missing.toml"], "missing.toml: no such config file"),
    ],
)
def test_bad_dataset_plugin_and_config_arguments_fail_in_one_line(
    tmp_path, monkeypatch, args, message
):
    monkeypatch.chdir(tmp_path)
    _refused(["evolve", *args, "--run-dir", str(tmp_path / "run")], message)
    assert not (tmp_path / "run" / "ecogen.sqlite").exists()


def test_prepare_resume_writes_nothing_until_opened(tmp_path, finished):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = _snapshot(run)
    resumption = prepare_resume(run, generations=3)
    assert resumption.experiment.generations == 3 and _snapshot(run) == before
    resumption.abandon()
    assert cfg.load(run / "experiment.toml")["generations"] == 1


# --- malformed genome and config files: never a traceback, always one line --------------------

# At least 2000 malformed files of each kind per run (ECOGEN_MALFORMED_EXAMPLES for more).
EXAMPLES = max(2000, int(os.environ.get("ECOGEN_MALFORMED_EXAMPLES", "0")))
_FOLDER = Path(tempfile.mkdtemp(prefix="ecogen-malformed-"))
atexit.register(shutil.rmtree, _FOLDER, ignore_errors=True)

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def _malformed_genome_files(draw) -> bytes:
    """Genome documents broken in every way a file can be: one field wrong, random edits of a
    valid document, other JSON, cut-off text, bytes that are not text."""
    kind = draw(st.sampled_from(["one field", "edits", "json", "cut", "bytes"]))
    if kind == "one field":
        return json.dumps(draw(invalid_documents())[0]).encode()
    if kind == "json":
        return json.dumps(draw(_json)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    genome = draw(genomes())
    if kind == "cut":
        text = G.dumps(genome)
        return text[: draw(st.integers(0, len(text) - 1))].encode()
    doc = G.to_dict(genome)
    for _ in range(draw(st.integers(1, 3))):
        nodes = doc.get("nodes")
        target = doc
        if (
            isinstance(nodes, list)
            and nodes
            and isinstance(nodes[-1], dict)
            and draw(st.booleans())
        ):
            target = draw(st.sampled_from([n for n in nodes if isinstance(n, dict)]))
        key = draw(st.sampled_from([*target, "extra"]))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(_json)
    return json.dumps(doc).encode()


def _one_line_or_ok(result, path: Path) -> bool:
    """True when the command accepted the file; otherwise it must have failed in one line
    naming the file, with no traceback and no unexplained exception."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and "--debug" not in result.output, result.output
    if result.exit_code == 0:
        return True
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and str(path) in lines[0], result.output
    return False


@settings(max_examples=EXAMPLES, deadline=None)
@given(_malformed_genome_files())
def test_malformed_genome_files_get_one_line_errors(content):
    path = _FOLDER / "genome.json"
    path.write_bytes(content)
    shown = CliRunner().invoke(main, ["show", str(path), "--no-code"])
    if not _one_line_or_ok(shown, path):
        assert shown.output.startswith(f"error: {path}: ")
    checked = CliRunner().invoke(main, ["validate", str(path)])  # one line per problem
    assert checked.exception is None or isinstance(checked.exception, SystemExit)
    assert checked.exit_code == (0 if shown.exit_code == 0 else 1), checked.output
    assert all(line.startswith(f"{path}: ") for line in checked.output.splitlines())
    assert "Traceback" not in checked.output


_toml_scalar = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["tournament", "eigen", "nsga2", "zoo:lenet5", "minimal", "cpu", "kth"])
)
_toml = st.recursive(
    _toml_scalar,
    lambda inner: (
        st.lists(_toml_scalar, max_size=3)
        | st.dictionaries(
            st.sampled_from([*cfg.FIELDS, "k", "size", "threshold", "add_skip"]), inner, max_size=3
        )
    ),
    max_leaves=8,
)
# run_dir aside: evolve's --run-dir below would replace a wrong one.
_keys = st.sampled_from([*(f for f in cfg.FIELDS if f != "run_dir"), "populaton", "colour"])


@st.composite
def _malformed_config_files(draw) -> bytes:
    """Experiment files broken in every way: wrong keys and values (also deep in strategy,
    mutation and weight tables), cut-off text, bytes that are not text."""
    kind = draw(st.sampled_from(["values", "values", "cut", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    doc = {"dataset": "digits", "population": 4, "strategy": ["eigen"]}
    doc.update(draw(st.dictionaries(_keys, _toml, min_size=1, max_size=4)))
    text = tomli_w.dumps(doc)
    if kind == "cut":
        text = text[: draw(st.integers(0, len(text) - 1))]
    return text.encode()


@settings(max_examples=EXAMPLES, deadline=None)
@given(_malformed_config_files())
def test_malformed_config_files_get_one_line_errors(content):
    path = _FOLDER / "experiment.toml"
    path.write_bytes(content)
    checked = CliRunner().invoke(main, ["validate", str(path)])
    if _one_line_or_ok(checked, path):
        return  # a valid experiment: evolve would start a run
    run = _FOLDER / "run"
    started = CliRunner().invoke(main, ["evolve", "--config", str(path), "--run-dir", str(run)])
    assert started.exception is None or isinstance(started.exception, SystemExit)
    lines = started.output.strip().splitlines()
    assert started.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: ")
    assert lines[0].removeprefix("error: ").removeprefix(f"{path}: ") in checked.output
    assert not run.exists()
