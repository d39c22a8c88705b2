"""Candidates trained in long-lived worker processes of this machine: several CPU workers
sharing its cores, or workers pinned to its GPUs, K per GPU.

Workers are started with ``spawn`` (CUDA does not survive ``fork``), get the dataset once
(CPU tensors in shared memory, moved once to their device) and talk to the engine through a
pipe each, so a worker that dies (SIGKILL, a segfault, the out-of-memory killer) breaks only
its own pipe: its candidate becomes a failed evaluation (``worker died: signal 9``, never
reused), the worker is replaced and the run goes on. Workers ignore Ctrl-C (the engine stops
them) and leave by themselves when the engine's process is gone.
"""

from __future__ import annotations

import os
import signal
import time
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import attrs

from ..failures import worker_died
from ..records import Task
from .base import Judge, Outcome, TeacherCache, load_parent, model_bytes, train_task
from .training import release_memory
from .user import UserEvaluation, user_evaluation

#: Seconds between a worker's looks at whether the engine's process is still there.
_PARENT_CHECK = 1.0


def worker_devices(experiment: Any, device: str) -> list[str]:
    """One entry per worker: ``per_device`` for each GPU (``experiment.devices``, default every
    visible one) when the run trains on CUDA, else ``workers`` times the CPU."""
    import torch

    if device.startswith("cuda"):
        gpus = list(experiment.devices) or [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return [gpu for gpu in gpus for _ in range(experiment.per_device)]
    return ["cpu"] * experiment.workers


@attrs.define
class _Worker:
    name: str
    device: str
    process: Any
    inbox: Any  # the engine's end of the pipe to the worker
    outbox: Any  # the engine's end of the pipe from the worker
    task: Task | None = None
    idle_since: float = attrs.field(factory=time.monotonic)


class LocalExecutor:
    """Worker processes on this machine; see the module docstring."""

    def __init__(self, experiment: Any, data: Any, spec: Any, weights_dir: Path) -> None:
        import torch.multiprocessing as tmp

        self._context = tmp.get_context("spawn")
        self.spec, self.weights_dir = spec, Path(weights_dir)
        self.timeout = experiment.evaluation_timeout
        # Sent to each worker by pickle, as a reference its process imports.
        self.user = user_evaluation(experiment)
        self.devices = worker_devices(experiment, spec.device)
        self.capacity = len(self.devices)
        cpus = sum(1 for d in self.devices if d == "cpu")
        # Tiny networks gain nothing from a thread pool of their own, and several pools on the
        # same cores wait on each other: the cores are divided among the CPU workers.
        self.threads = max(1, (os.cpu_count() or 1) // max(cpus, 1))
        self.data = _shared(data)
        self.idle_seconds = 0.0
        self._workers: list[_Worker] = []
        self._finished: list[Outcome] = []
        for index, device in enumerate(self.devices):
            self._workers.append(self._start(f"worker-{index}", device))

    def _start(self, name: str, device: str) -> _Worker:
        to_worker, inbox = self._context.Pipe(duplex=False)
        outbox, from_worker = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_serve,
            args=(
                name,
                device,
                self.threads,
                self.data,
                self.spec,
                self.weights_dir,
                self.timeout,
                to_worker,
                from_worker,
                os.getpid(),
                self.user,
            ),
            name=f"ecogen-{name}",
            daemon=True,
        )
        process.start()
        to_worker.close()
        from_worker.close()
        return _Worker(name, device, process, inbox, outbox)

    def submit(self, task: Task, judge: Judge) -> None:
        worker = next(w for w in self._workers if w.task is None)
        self.idle_seconds += time.monotonic() - worker.idle_since
        worker.task = task
        worker.inbox.send((task, judge.snapshot))

    def next(self) -> Outcome:
        while True:
            busy = [w for w in self._workers if w.task is not None]
            ready = wait([w.outbox for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                if worker.outbox in ready:
                    try:
                        outcome = worker.outbox.recv()
                    except (EOFError, OSError):
                        # Its end of the pipe closed with nothing more in it: it died. (A
                        # closed pipe stays readable, so waiting on it again would spin.)
                        return self._replace(worker)
                    worker.task, worker.idle_since = None, time.monotonic()
                    return outcome
            for worker in busy:
                if worker.process.sentinel in ready and not worker.outbox.poll():
                    return self._replace(worker)

    def _replace(self, worker: _Worker) -> Outcome:
        """The outcome of ``worker``'s candidate when the worker died, and a new worker."""
        worker.process.join(timeout=5)
        if worker.process.is_alive():  # its pipe is gone, so it can do no more for the run
            worker.process.kill()
            worker.process.join()
        code = worker.process.exitcode
        cause = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        task = worker.task
        self._workers[self._workers.index(worker)] = self._start(worker.name, worker.device)
        return Outcome(task, worker_died(task, cause, worker.name), worker=worker.name)

    def busy(self) -> dict[str, str]:
        return {f"{w.name} ({w.device})": w.task.individual for w in self._workers if w.task}

    def stats(self) -> dict[str, Any]:
        idle = self.idle_seconds + sum(
            time.monotonic() - w.idle_since for w in self._workers if w.task is None
        )
        return {
            "executor": "local",
            "workers": self.capacity,
            "worker_idle_seconds": round(idle, 3),
        }

    def close(self) -> None:
        """Stop every worker (those training too) and wait for them to be gone."""
        for worker in self._workers:
            try:
                worker.inbox.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 2
        for worker in self._workers:
            if worker.task is not None:
                worker.process.terminate()
            worker.process.join(timeout=max(deadline - time.monotonic(), 0.1))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.inbox.close()
            worker.outbox.close()
        self._workers = []


def _shared(data: Any) -> Any:
    """``data`` with its tensors in shared memory: spawned workers map them, not copy them."""
    for split in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        getattr(data, split).share_memory_()
    return data


def _serve(
    name: str,
    device: str,
    threads: int,
    data: Any,
    spec: Any,
    weights_dir: Path,
    timeout: float,
    inbox: Any,
    outbox: Any,
    parent: int,
    user: UserEvaluation | None = None,
) -> None:
    """A worker's life: train each task it is sent, send the outcome back, until told to
    stop or the engine's process is gone."""
    import torch

    import phenotypes as ph

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's to handle
    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    target = ph.resolve_device(device)
    splits = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
    data = attrs.evolve(data, **{s: getattr(data, s).to(target) for s in splits})
    spec = attrs.evolve(spec, device=device)
    teacher_model = TeacherCache(weights_dir)

    def gone() -> bool:
        return os.getppid() != parent

    while True:
        if not inbox.poll(_PARENT_CHECK):
            if gone():
                return
            continue
        try:
            message = inbox.recv()
        except EOFError:
            return
        if message is None:
            return
        task, snapshot = message
        judge = snapshot.build()

        def judged(task: Task, epoch: int, epochs: int, accuracy: float, judge: Any = judge):
            if gone():
                os._exit(0)  # nobody is waiting for this training any more
            return judge(task, epoch, epochs, accuracy)

        evaluation, model = train_task(
            task, data, spec, judged, teacher_model, timeout, load_parent(weights_dir), user
        )
        content = model_bytes(task.genome, model) if model is not None else None
        del model
        outbox.send(Outcome(task, evaluation, None, content, tuple(judge.events), name))
        release_memory()
