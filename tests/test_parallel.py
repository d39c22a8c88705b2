"""Candidates trained on several workers: worker processes of this machine and Ray tasks give
the run one worker gives, failures stay with their candidate, and no worker outlives a run."""

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

import genomics as G
import phenotypes as ph
from runner import config as cfg
from runner.execution.base import Judge
from runner.execution.local import LocalExecutor
from runner.judge import JudgeSnapshot
from runner.records import Task

ECOGEN = [sys.executable, "-m", "runner.cli"]
ENV = {**{k: v for k, v in os.environ.items() if k != "ECOGEN_CRASH_AT"}, "OMP_NUM_THREADS": "1"}

# EIGEN: succession (phases), aggressive selection, extinction (thresholds, trainings stopped
# by the per-epoch hook), duplication and mimicry (a teacher's weights in every worker).
EIGEN = {
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
}

# What differs between runs of one experiment on other executors or at other times.
RUN_DEPENDENT = (
    "seconds",
    "final_training_seconds",
    "run_dir",
    "disk_bytes",
    "weights_bytes",
    # keep_weights keeps the last trainings to arrive, which depends on the workers' timing.
    "weights_files",
    "executor",
    "workers",
    "worker_idle_seconds",
)


def _outcome(run_dir: Path) -> dict:
    import sqlite3

    summary = json.loads((run_dir / "summary.json").read_text())
    for key in RUN_DEPENDENT:
        summary.pop(key, None)
    db = sqlite3.connect(run_dir / "ecogen.sqlite")
    individuals = db.execute(
        "SELECT i.id, i.generation, i.genome_hash, i.parents, i.operators, i.reused, i.phase,"
        " e.individual, e.status, e.reason, e.fitness, e.epochs, e.history,"
        " json_extract(e.metrics, '$.teacher') FROM individuals i"
        " JOIN evaluations e ON e.id = i.evaluation ORDER BY i.id"
    ).fetchall()
    events = db.execute(
        "SELECT generation, source, kind, individual, data FROM events"
        " ORDER BY generation, kind, individual, data"
    ).fetchall()
    checkpoint = db.execute(
        "SELECT generation, population, hall_of_fame, rng, strategy FROM checkpoints"
        " ORDER BY generation DESC LIMIT 1"
    ).fetchone()
    db.close()
    return {"summary": summary, "individuals": individuals, "events": events, "last": checkpoint}


def _evolve(run_dir: Path, *flags: str, values: dict = EIGEN, **popen) -> subprocess.Popen:
    config = run_dir.with_suffix(".toml")
    config.write_text(tomli_w.dumps(values))
    return subprocess.Popen(
        [*ECOGEN, "evolve", "--config", str(config), "--run-dir", str(run_dir), *flags],
        env=popen.pop("env", ENV),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _finished(run_dir: Path, *flags: str, values: dict = EIGEN, env: dict = ENV) -> dict:
    proc = _evolve(run_dir, *flags, values=values, env=env)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return _outcome(run_dir)


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> dict:
    return _finished(tmp_path_factory.mktemp("serial") / "run")


def test_two_local_workers_decide_as_one(tmp_path, serial):
    """Survivors, thresholds, phases, teachers, reuse: the same run, candidate for candidate."""
    got = _finished(tmp_path / "run", "--workers", "2")
    assert got == serial
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["executor"], summary["workers"]) == ("local", 2)
    statuses = {row[8] for row in got["individuals"]}
    teachers = {row[13] for row in got["individuals"]} - {None}
    assert "extinct" in statuses and teachers  # the per-epoch hook and mimicry both acted


@pytest.mark.slow
def test_ray_decides_as_one_worker(tmp_path, serial):
    """On a local Ray (2 CPUs), started and stopped by the run, with a TMPDIR as long as
    macOS's or pytest's: too long for the Unix sockets Ray would put under it."""
    pytest.importorskip("ray")
    temp = tmp_path / ("t" * 40)
    temp.mkdir()
    env = {**ENV, "TMPDIR": str(temp)}
    assert _finished(tmp_path / "run", "--executor", "ray", "--workers", "2", env=env) == serial


@pytest.mark.slow
def test_inheriting_children_get_their_parents_weights_on_every_executor(tmp_path):
    """Weight inheritance: local workers read a parent's file, Ray gets its bytes with the
    task; the run is the same as on one worker, and its children did inherit."""
    values = {**EIGEN, "inherit": True}
    one = _finished(tmp_path / "one", values=values)
    inherited = sqlite3.connect(tmp_path / "one" / "ecogen.sqlite").execute(
        "SELECT count(*) FROM evaluations WHERE json_extract(metrics, '$.inherited_from')"
        " IS NOT NULL"
    )
    assert inherited.fetchone()[0] >= 4
    assert _finished(tmp_path / "two", "--workers", "2", values=values) == one
    if importlib.util.find_spec("ray") is not None:
        temp = tmp_path / ("t" * 40)
        temp.mkdir()
        env = {**ENV, "TMPDIR": str(temp)}
        flags = ("--executor", "ray", "--workers", "2")
        assert _finished(tmp_path / "ray", *flags, values=values, env=env) == one


def test_a_local_ray_keeps_its_sockets_under_the_unix_limit(tmp_path):
    from runner.execution.ray_cluster import _AFTER_ROOT, _SOCKET_PATH_MAX, local_ray_root

    assert local_ray_root("/tmp") is None  # Ray's own default where it fits
    root = local_ray_root(str(tmp_path / ("t" * 60)))
    try:
        assert root is not None and Path(root).is_dir()
        assert len(os.fsencode(root)) + _AFTER_ROOT <= _SOCKET_PATH_MAX
    finally:
        os.rmdir(root)


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found.update(int(c) for c in children)
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie has ended; its parent has yet to reap it


def _wait_gone(pids: set[int], seconds: float = 15) -> set[int]:
    deadline = time.time() + seconds
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if _alive(p)}


def _workers_busy(run_dir: Path, proc: subprocess.Popen, stored: int) -> set[int]:
    """Once ``stored`` individuals are stored and both workers train: their pids."""
    import sqlite3

    deadline = time.time() + 120
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            db = sqlite3.connect(f"file:{run_dir / 'ecogen.sqlite'}?mode=ro", uri=True)
            count = db.execute("SELECT count(*) FROM individuals").fetchone()[0]
            db.close()
        except sqlite3.Error:
            count = 0
        workers = {c for c in _children(proc.pid) if "spawn_main" in _cmdline(c)}
        if count >= stored and len(workers) >= 2:
            return workers
        time.sleep(0.05)
    raise AssertionError("the run never had both workers busy")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except FileNotFoundError:
        return ""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads processes from /proc")
@pytest.mark.slow
def test_a_run_killed_with_two_workers_busy_resumes_to_the_same_result(tmp_path, serial):
    """SIGKILL of the engine mid-generation: its workers leave by themselves, and the run
    resumes (here with one worker) to the run never stopped."""
    run_dir = tmp_path / "run"
    proc = _evolve(run_dir, "--workers", "2")
    workers = _workers_busy(run_dir, proc, stored=6)
    proc.kill()
    proc.wait()
    assert not _wait_gone(workers), "workers outlived their engine"
    done = subprocess.run(
        [*ECOGEN, "resume", str(run_dir), "--workers", "1"], env=ENV, capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _outcome(run_dir) == serial


# Slow (about 30 s each): tests/test_reliability.py's one-worker Ctrl-C test runs by default.
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads processes from /proc")
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_stop_every_worker_and_the_run_resumes(tmp_path, serial, sig, code):
    run_dir = tmp_path / "run"
    proc = _evolve(run_dir, "--workers", "2")
    workers = _workers_busy(run_dir, proc, stored=5)
    everything = _children(proc.pid)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"ecogen resume {run_dir}" in err
    assert not _wait_gone(everything | workers, seconds=5), "a child of ecogen is left"
    done = subprocess.run(
        [*ECOGEN, "resume", str(run_dir), "--workers", "2"], env=ENV, capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _outcome(run_dir) == serial


def _task(name: str, epochs: int = 30) -> Task:
    genome = G.minimal((1, 8, 8), 10)
    return Task(name, genome, G.canonical_hash(genome), 0, seed=1, epochs=epochs)


def _judge(experiment: cfg.Experiment) -> Judge:
    import strategies as st

    plan = st.GenerationPlan(4, 4, (1, 1), 30, 4)
    context = {
        "seed": 0,
        "generation": 0,
        "phase": "",
        "plan": plan,
        "generations": 1,
        "mutation_config": experiment.mutation_config(),
    }
    snapshot = JudgeSnapshot(experiment.strategy, experiment.strategies, 1, {}, context)
    return Judge(snapshot, local=lambda *args: None)


def test_a_worker_that_dies_fails_only_its_candidate_and_is_replaced(tmp_path):
    experiment = cfg.from_dict({"workers": 2, "device": "cpu"})
    data = ph.load_dataset("digits")
    spec = ph.TrainSpec(epochs=30, batch_size=64, device="cpu")
    executor = LocalExecutor(experiment, data, spec, tmp_path)
    try:
        judge = _judge(experiment)
        executor.submit(_task("g0_0"), judge)
        executor.submit(_task("g0_1", epochs=2), judge)
        victim = next(w for w in executor._workers if w.task.individual == "g0_0")
        time.sleep(2.0)  # inside its training by now
        os.kill(victim.process.pid, signal.SIGKILL)
        outcomes = {o.task.individual: o for o in (executor.next(), executor.next())}
        died = outcomes["g0_0"].evaluation
        assert died.status == "failed" and died.reason == "worker died: signal 9"
        assert died.transient  # never reused as the genome's result
        assert outcomes["g0_1"].evaluation.status == "ok"
        assert not victim.process.is_alive()
        executor.submit(_task("g0_2", epochs=1), judge)
        executor.submit(_task("g0_3", epochs=1), judge)  # the replacement takes one
        again = [executor.next(), executor.next()]
        assert all(o.evaluation.status == "ok" and o.model_bytes for o in again)
    finally:
        executor.close()
    assert not any(w.process.is_alive() for w in executor._workers)


def test_a_dead_workers_closed_pipe_fails_its_candidate_instead_of_spinning(tmp_path):
    """A worker's pipe at end-of-file stays readable: the engine must take that as the
    worker's death (it once waited on the pipe again and again, at full CPU, for ever)."""
    import multiprocessing
    import threading

    experiment = cfg.from_dict({"workers": 1, "device": "cpu"})
    data = ph.load_dataset("digits")
    spec = ph.TrainSpec(epochs=30, batch_size=64, device="cpu")
    executor = LocalExecutor(experiment, data, spec, tmp_path)
    try:
        executor.submit(_task("g0_0"), _judge(experiment))
        victim = executor._workers[0]
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.join()
        closed, writer = multiprocessing.Pipe(duplex=False)
        writer.close()  # what the engine sees once nothing holds the worker's end any more
        victim.outbox.close()
        victim.outbox = closed
        got: list = []
        waiting = threading.Thread(target=lambda: got.append(executor.next()), daemon=True)
        waiting.start()
        waiting.join(timeout=60)
        assert got, "the engine kept waiting on a dead worker's closed pipe"
        assert got[0].evaluation.reason == "worker died: signal 9"
        assert executor._workers[0].process.is_alive()  # replaced
    finally:
        executor.close()


PLUGIN = """
import attrs
from strategies import Stop, Strategy, hookimpl


@attrs.define
class EvenEpochCut(Strategy):
    '''Stops every candidate whose id ends in an even digit after its first epoch.'''

    name = "even-cut"

    @hookimpl
    def ecogen_on_epoch(self, individual, epoch, epochs, val_accuracy, context):
        if epoch == 1 < epochs and int(individual.id[-1]) % 2 == 0:
            self.record(context, "cut", individual.id, accuracy=val_accuracy)
            return Stop(f"{individual.id} is even", details={"cut_at": epoch})
        return None
"""


@pytest.mark.slow
def test_a_plugins_per_epoch_hook_decides_in_workers_as_in_the_engine(tmp_path, install_plugin):
    """The per-epoch contract (docs/writing-a-strategy.md): a plugin's hook, run in worker
    processes from the strategies' state as the generation began, stops the same trainings
    and records the same events as in the engine's own process."""
    folder = install_plugin(
        "even-cut", "even_cut", PLUGIN, {"ecogen.strategies": {"even-cut": "even_cut:EvenEpochCut"}}
    )
    values = {**EIGEN, "strategy": ["even-cut", "tournament"], "strategies": {}, "epochs": 3}
    values["generations"] = 1
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(folder), *sys.path])}
    outcomes = []
    for flags in ([], ["--workers", "2"]):
        run_dir = tmp_path / f"run{len(flags)}"
        proc = _evolve(run_dir, *flags, values=values, env=env)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outcomes.append(_outcome(run_dir))
    assert outcomes[0] == outcomes[1]
    cut = [e for e in outcomes[0]["events"] if e[2] == "cut"]
    stopped = [r for r in outcomes[0]["individuals"] if r[8] == "stopped"]
    assert cut and len(cut) == len(stopped)


@pytest.mark.skipif(not ph.resolve_device().type == "cuda", reason="needs a CUDA GPU")
def test_gpu_workers_train_on_their_gpus_and_give_memory_back(tmp_path):
    """--per-device 2 on every GPU: each candidate trains on a GPU, and the memory a worker
    still holds as a candidate begins stays flat over the run."""
    import sqlite3

    values = {**EIGEN, "device": "cuda", "strategy": ["tournament"], "strategies": {}}
    values.update(population=8, generations=2, init="random", max_params=50_000)
    _finished(tmp_path / "run", "--per-device", "2", values=values)
    db = sqlite3.connect(tmp_path / "run" / "ecogen.sqlite")
    rows = db.execute(
        "SELECT json_extract(metrics, '$.device'), json_extract(metrics, '$.cuda_allocated_before')"
        " FROM evaluations WHERE status = 'ok' ORDER BY id"
    ).fetchall()
    assert rows and all(device.startswith("cuda") for device, _ in rows)
    allocated = [a for _, a in rows if a is not None]
    assert allocated and max(allocated[-4:]) <= allocated[0] + 64 * 2**20


@pytest.mark.parametrize(
    "limit", [{"max_evaluations": 7}, pytest.param({"max_epochs": 11}, marks=pytest.mark.slow)]
)
def test_budgets_stop_two_workers_where_they_stop_one(tmp_path, limit):
    """A budget reached mid-generation: the engine waits for the trainings under way before
    it decides a candidate that might lie past it, so two workers stop where one does."""
    from runner.session import start

    values = {**EIGEN, "strategy": ["extinction", "tournament"], "strategies": {}}
    values.update(init="random", generations=6, population=4, max_params=20_000, **limit)
    data = ph.load_dataset("digits", seed=values["seed"])
    outcomes = []
    for workers in (1, 2):
        run_dir = tmp_path / f"w{workers}"
        engine = start(cfg.from_dict({**values, "workers": workers, "run_dir": str(run_dir)}), data)
        try:
            summary = engine.run()
        finally:
            engine.store.close()
        assert summary["stopped_by"] == next(iter(limit)).removeprefix("max_")
        outcomes.append(_outcome(run_dir))
    assert outcomes[0] == outcomes[1]


@pytest.mark.slow
def test_max_epochs_holds_for_the_last_training_with_one_worker_as_with_two(tmp_path):
    """``max_epochs`` is never passed: the training that would pass it stops at it, recorded
    as stopped by the epochs budget (an unfinished training: stored, but no parent and never
    the best), the same with two workers as with one."""
    from runner.session import start

    values = {**EIGEN, "strategy": ["tournament"], "strategies": {}}
    # The first population is one genome (trained once, 2 epochs), then 2 + 1 of 2 epochs.
    values.update(population=3, generations=1, max_epochs=5)
    data = ph.load_dataset("digits", seed=values["seed"])
    outcomes = []
    for workers in (1, 2):
        run_dir = tmp_path / f"w{workers}"
        engine = start(cfg.from_dict({**values, "workers": workers, "run_dir": str(run_dir)}), data)
        try:
            summary = engine.run()
        finally:
            engine.store.close()
        assert summary["epochs_trained"] == 5
        assert summary["stopped_by"] == "epochs"
        outcomes.append(_outcome(run_dir))
    assert outcomes[0] == outcomes[1]
    db = sqlite3.connect(tmp_path / "w1" / "ecogen.sqlite")
    rows = db.execute("SELECT individual, status, epochs, metrics FROM evaluations").fetchall()
    (population,) = db.execute("SELECT population FROM checkpoints WHERE generation = 1").fetchone()
    db.close()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("g0_0", "ok", 2), ("g1_0", "ok", 2), ("g1_1", "stopped", 1)
    ]  # fmt: skip
    cut = json.loads(rows[2][3])
    assert cut["stopped_by"] == "epochs" and cut["planned_epochs"] == 2
    assert "g1_1" not in json.loads(population)  # its accuracy is that of an unfinished training
    assert summary["best"]["id"] != "g1_1"


@pytest.mark.slow
def test_latency_is_measured_while_no_training_of_the_run_is_under_way(tmp_path, monkeypatch):
    """A measurement made while workers train runs on a loaded machine, and would refuse
    other candidates over ``max_latency_ms`` with two workers than with one: each genome of a
    generation is measured before any of its trainings starts."""
    from runner.evolution import costs
    from runner.session import start

    values = {**EIGEN, "strategy": ["tournament"], "strategies": {}}
    values.update(population=3, generations=1, epochs=1, max_latency_ms=1000.0, workers=2)
    engine = None
    busy_at = []

    def measure(genome, device):
        busy_at.append(bool(engine and engine.executor.busy()))
        return float(len(genome.nodes))  # a stand-in: the test is about when, not how long

    monkeypatch.setattr(costs, "measure_latency", measure)
    data = ph.load_dataset("digits", seed=values["seed"])
    engine = start(cfg.from_dict({**values, "run_dir": str(tmp_path / "run")}), data)
    try:
        engine.run()
    finally:
        engine.store.close()
    assert len(busy_at) >= 3 and not any(busy_at), busy_at


@pytest.mark.slow
@pytest.mark.parametrize("gpus", [3, 0])
def test_ray_trains_on_every_gpu_of_the_cluster_not_only_this_processs(tmp_path, gpus):
    """The engine's process may see fewer GPUs than the cluster (a head node with none): the
    GPUs Ray offers decide how many candidates train at once, and a cluster with none is
    refused in one line. A local Ray told how many GPUs it has stands for such a cluster
    (resource accounting only: nothing is trained)."""
    ray = pytest.importorskip("ray")
    from runner.errors import RunError
    from runner.execution.ray_cluster import RayExecutor, local_ray_root

    root = local_ray_root()
    ray.init(
        num_cpus=1, num_gpus=gpus, _temp_dir=root, include_dashboard=False, log_to_driver=False,
        logging_level="ERROR", configure_logging=False,
    )  # fmt: skip
    try:
        experiment = cfg.from_dict({"executor": "ray", "device": "cuda", "per_device": 2})
        spec = ph.TrainSpec(epochs=1, device="cuda")
        data = ph.load_dataset("digits")
        if not gpus:
            with pytest.raises(RunError, match=r"^executor ray: the Ray cluster offers no GPU"):
                RayExecutor(experiment, data, spec, tmp_path)
            return
        executor = RayExecutor(experiment, data, spec, tmp_path)
        executor.close()
        assert executor.capacity == 6
        assert executor._options == {"num_cpus": 1, "num_gpus": 0.5}
    finally:
        ray.shutdown()
        if root is not None:
            import shutil

            shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_the_time_budget_cuts_every_training_but_the_runs_first_with_two_workers(
    tmp_path, monkeypatch
):
    """Only the run's first training is never cut (it gives the run a best): the second, sent
    to another worker while the first trains, is cut like any later one. The engine's clock
    stands still, so both are sent before the budget ends; the workers' clock is the real one,
    and the budget ends a millisecond after they are sent, before any epoch ends."""
    from runner.evolution import budget as checkpoint
    from runner.session import start

    class Frozen:
        @staticmethod
        def perf_counter():
            return 0.0

    monkeypatch.setattr(checkpoint, "time", Frozen)
    values = {**EIGEN, "strategy": ["tournament"], "strategies": {}, "workers": 2}
    values.update(init="random", population=2, generations=0, epochs=3, max_params=3000)
    values.update(time_budget=0.001)
    data = ph.load_dataset("digits", seed=values["seed"])
    engine = start(cfg.from_dict({**values, "run_dir": str(tmp_path / "run")}), data)
    try:
        engine.run()
    finally:
        engine.store.close()
    db = sqlite3.connect(tmp_path / "run" / "ecogen.sqlite")
    rows = db.execute(
        "SELECT individual, status, epochs, json_extract(metrics, '$.stopped_by')"
        " FROM evaluations ORDER BY individual"
    ).fetchall()
    db.close()
    assert rows == [("g0_0", "ok", 3, None), ("g0_1", "stopped", 1, "time budget")]
