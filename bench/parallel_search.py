"""Candidates per minute on one and on several workers, and Ray's overhead per candidate.

The same first generation of a search (the same random genomes, seeds and epochs) on 28x28
images is evaluated by the serial executor with one PyTorch thread and with every core's
threads, and by ``--workers N`` local worker processes (one thread each); the ratio is against
the better serial figure. Then many tiny candidates go through the local pool and through Ray
tasks (a local Ray) with as many workers: the difference per candidate is Ray's overhead.

    python bench/parallel_search.py                 # 12 candidates, 3 epochs, 2 workers
    python bench/parallel_search.py --smoke         # seconds: every code path at a tiny size
    python bench/parallel_search.py --device cuda --per-device 1,2,4   # on GPUs (bench/gpu.sh)

On GPUs it runs ``--candidates`` candidates with each ``--per-device`` K (every visible GPU)
and prints candidates per minute and the GPU memory still allocated as the last ones began
(``metrics.cuda_allocated_before``: it should stay flat over a run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from search_strategies import harder_digits

import genomics as G
import phenotypes as ph
from runner import config as cfg
from runner.execution.base import Judge
from runner.judge import JudgeSnapshot
from runner.records import Task
from runner.session import start

#: ``--smoke``: a run of seconds through the same code.
SMOKE = {"population": 3, "epochs": 1, "size": 16, "tiny": 4, "repeats": 1}


def search_rate(data: ph.Dataset, folder: Path, label: str, threads: int, **values) -> float:
    """Candidates per minute over the first generation (workers' start-up included)."""
    return search(data, folder, label, threads, **values)[0]


def search(
    data: ph.Dataset, folder: Path, label: str, threads: int, **values
) -> tuple[float, list[int]]:
    """Candidates per minute over the first generation, and the device memory allocated as
    each candidate began (empty on the CPU)."""
    torch.set_num_threads(threads)
    experiment = cfg.from_dict(
        {
            "dataset": data.name,
            "seed": 0,
            "device": values.pop("device", "cpu"),
            "generations": 0,
            "final_epochs": 0,
            "population": ARGS.population,
            "epochs": ARGS.epochs,
            "max_params": 200_000,
            "run_dir": str(folder / label),
            **values,
        }
    )
    engine = start(experiment, data)
    try:
        summary = engine.run()
        memory = [
            e.metrics["cuda_allocated_before"]
            for e in engine.store.evaluations()
            if "cuda_allocated_before" in e.metrics
        ]
    finally:
        engine.store.close()
    return 60 * summary["evaluations"] / summary["seconds"], memory


def _judge(experiment: cfg.Experiment) -> Judge:
    import strategies as st

    context = {
        "seed": 0,
        "generation": 0,
        "phase": "",
        "plan": st.GenerationPlan(1, 1, (1, 1), 1, 1),
        "generations": 0,
        "mutation_config": experiment.mutation_config(),
    }
    snapshot = JudgeSnapshot(experiment.strategy, experiment.strategies, 1, {}, context)
    return Judge(snapshot, local=lambda *args: None)


def seconds_per_candidate(executor, experiment: cfg.Experiment, count: int) -> float:
    """Wall seconds per candidate for ``count`` one-epoch minimal genomes, kept busy."""
    genome = G.minimal((1, 8, 8), 10)
    tasks = [
        Task(f"g0_{i}", genome, G.canonical_hash(genome), 0, seed=i, epochs=1) for i in range(count)
    ]
    judge = _judge(experiment)
    # One round first: workers import and warm up before the clock starts.
    for task in tasks[: executor.capacity]:
        executor.submit(task, judge)
    for _ in range(executor.capacity):
        executor.next()
    begin = time.perf_counter()
    waiting = list(tasks)
    running = 0
    while waiting or running:
        while waiting and running < executor.capacity:
            executor.submit(waiting.pop(), judge)
            running += 1
        outcome = executor.next()
        assert outcome.evaluation.status == "ok", outcome.evaluation.reason
        running -= 1
    return (time.perf_counter() - begin) / count


def overhead(workers: int) -> tuple[float, float] | None:
    """Seconds per tiny candidate through the local pool and through Ray (None: no Ray)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return None
    from runner.execution.local import LocalExecutor
    from runner.execution.ray_cluster import RayExecutor

    data = ph.load_dataset("digits")
    experiment = cfg.from_dict({"device": "cpu", "workers": workers, "executor": "local"})
    spec = ph.TrainSpec(epochs=1, batch_size=64, device="cpu")
    figures = []
    with tempfile.TemporaryDirectory() as folder:
        for make in (LocalExecutor, RayExecutor):
            executor = make(experiment, data, spec, Path(folder))
            try:
                times = [
                    seconds_per_candidate(executor, experiment, ARGS.tiny)
                    for _ in range(ARGS.repeats)
                ]
            finally:
                executor.close()
            figures.append(statistics.median(times))
    return figures[0], figures[1]


def on_gpus(data: ph.Dataset) -> None:
    gpus = torch.cuda.device_count()
    print(f"{ARGS.candidates} candidates on {data.name}, {ARGS.epochs} epochs, {gpus} GPUs:")
    with tempfile.TemporaryDirectory() as folder:
        for k in ARGS.per_device:
            rate, memory = search(
                data,
                Path(folder),
                f"gpu-{k}",
                threads=1,
                device="cuda",
                executor="local",
                per_device=k,
                population=ARGS.candidates,
            )
            last = max(memory[-gpus * k :], default=0) / 2**20
            print(
                f"  --per-device {k}: {rate:6.1f} candidates/min, {last:.1f} MiB allocated as"
                f" the last began (first: {memory[0] / 2**20 if memory else 0:.1f} MiB)"
            )


def main() -> None:
    data = harder_digits(0, ARGS.size)
    if ARGS.device == "cuda":
        on_gpus(data)
        return
    cores = os.cpu_count() or 1
    print(
        f"{ARGS.population} candidates of generation 0 on {data.name}, {ARGS.epochs} epochs"
        f" each, {cores} cores:"
    )
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        one = search_rate(data, folder, "serial-1", threads=1, executor="serial")
        print(f"  serial, 1 thread:          {one:6.1f} candidates/min")
        many = search_rate(data, folder, "serial-n", threads=cores, executor="serial")
        print(f"  serial, {cores} threads:         {many:6.1f} candidates/min")
        pool = search_rate(data, folder, "local", threads=1, executor="local", workers=ARGS.workers)
        print(
            f"  local, {ARGS.workers} workers x {max(1, cores // ARGS.workers)} thread:"
            f" {pool:6.1f} candidates/min"
        )
    print(f"  ratio to the better serial: {pool / max(one, many):.2f}x")
    found = overhead(ARGS.workers)
    if found is None:
        print("Ray: not installed (pip install 'ecogen[ray]'), overhead not measured")
        return
    local, ray = found
    print(
        f"{ARGS.tiny} one-epoch 8x8 candidates on {ARGS.workers} workers: local"
        f" {1000 * local:.1f} ms each, Ray {1000 * ray:.1f} ms each:"
        f" Ray's overhead {1000 * (ray - local):+.1f} ms per candidate"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--population", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=28, help="image size of the digits data")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tiny", type=int, default=40, help="tiny candidates for the overhead")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--per-device",
        type=lambda text: [int(k) for k in text.split(",")],
        default=[1, 2, 4],
        help="on GPUs: candidates at once per GPU, each value one search (1,2,4)",
    )
    parser.add_argument("--candidates", type=int, default=50, help="on GPUs: per search")
    parser.add_argument("--smoke", action="store_true", help="a run of seconds, every path")
    ARGS = parser.parse_args()
    if ARGS.smoke:
        for key, value in SMOKE.items():
            setattr(ARGS, key, value)
    main()
