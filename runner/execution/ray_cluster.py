"""Candidates trained as Ray tasks: on an existing Ray cluster (``ray_address``: ``auto`` or
``ray://HOST:PORT``) or on a local Ray started for the run.

Each task declares its resources (``num_cpus``, and ``num_gpus = 1 / per_device`` on GPUs) and
Ray places it; on GPUs, ``per_device`` times the cluster's GPUs (``ray.cluster_resources()``, not
those of the engine's process) train at once. The engine's process still needs the run's device
for what it does itself (latency measurements, the final training of the best). The dataset goes
into the object store once per run (as NumPy arrays, which tasks read without a copy), a
teacher's weights once per teacher; trained weights come back as the bytes of a model file, so
nothing needs a file system shared with the engine. A task whose worker dies is a failed
evaluation (``worker died: ...``), never reused. Ray is the ``ray`` extra: ``pip install
'ecogen[ray]'``; on a cluster every node needs ecogen (and the run's plugins) installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import attrs

from ..errors import RunError
from ..extras import require
from ..failures import worker_died
from ..records import Task
from .base import Judge, Outcome, model_bytes, train_task
from .local import worker_devices
from .user import UserEvaluation, user_evaluation

_SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")

# A Unix socket's path holds at most 107 bytes, and a local Ray puts its sockets at
# ROOT/session_DATE_TIME_PID/sockets/plasma_store (about 65 bytes after ROOT). Ray takes ROOT
# from TMPDIR, which is long on macOS (/var/folders/...) and under pytest, and then fails to
# start; a shorter root is used there.
_SOCKET_PATH_MAX = 107
_AFTER_ROOT = len("/session_2026-01-01_00-00-00_000000_4194304/sockets/plasma_store")


def local_ray_root(temp: str | None = None) -> str | None:
    """Where a local Ray started for the run keeps its files: None (Ray's own default,
    TMPDIR/ray) when its socket paths fit, else a new folder under /tmp."""
    default = os.path.join(temp or tempfile.gettempdir(), "ray")
    if len(os.fsencode(default)) + _AFTER_ROOT <= _SOCKET_PATH_MAX:
        return None
    return tempfile.mkdtemp(prefix="ecogen-ray-", dir="/tmp")


_NO_CLUSTER_HINT = (
    "start one with `ray start --head`, or leave --ray-address empty for a Ray of the run's own"
)


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """RunError when the Ray cluster a run would join does not answer, said before the run
    writes anything: ``ray.init`` retries such an address for minutes and then fails. ``address``
    is the run's ``ray_address``; empty, Ray's own RAY_ADDRESS is used, and without either the
    run starts a Ray of its own (nothing to reach)."""
    source = f"--ray-address {address}"
    if not address and os.environ.get("RAY_ADDRESS"):
        address = os.environ["RAY_ADDRESS"]
        source = f"RAY_ADDRESS {address}"
    if address in ("", "local"):
        return
    if address == "auto":
        try:  # where ray.init(address="auto") looks: RAY_ADDRESS, then this machine's clusters
            from ray._private.services import get_ray_address_from_environment
        except ImportError:  # pragma: no cover - another Ray layout: ray.init will say
            return
        try:
            address = get_ray_address_from_environment("auto", None)
        except ConnectionError:
            raise RunError(f"{source}: no running Ray cluster found; {_NO_CLUSTER_HINT}") from None
    client = address.startswith("ray://")
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon and client:  # Ray Client's default port
        host, port = address.removeprefix("ray://"), "10001"
    host = host.strip("[]")  # an IPv6 address: [::1]:6379
    if not host or not port.isdigit():
        raise RunError(f"{source}: not a Ray address (auto, HOST:PORT or ray://HOST[:PORT])")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise RunError(
            f"{source}: no Ray cluster answers at {host}:{port} ({reason}); {_NO_CLUSTER_HINT}"
        ) from None


class RayExecutor:
    """Ray tasks; see the module docstring."""

    def __init__(self, experiment: Any, data: Any, spec: Any, weights_dir: Path) -> None:
        require("ecogen --executor ray", "ray")
        import ray

        self._ray = ray
        self._started = not ray.is_initialized()
        self._root = None
        if self._started:
            if not experiment.ray_address and not os.environ.get("RAY_ADDRESS"):
                self._root = local_ray_root()  # a Ray of its own, not a cluster's
            try:
                ray.init(
                    address=experiment.ray_address or None,
                    _temp_dir=self._root,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level="ERROR",
                    configure_logging=False,
                )
            except BaseException:
                self._remove_root()
                raise
        gpu = spec.device.startswith("cuda")
        resources = ray.cluster_resources()
        if gpu:
            # Ray places a task on any node's GPU: the cluster's count, not this process's (a
            # head node may have fewer, or none).
            gpus = len(experiment.devices) or int(resources.get("GPU", 0))
            if not gpus:
                if self._started:
                    ray.shutdown()
                self._remove_root()
                raise RunError(
                    "executor ray: the Ray cluster offers no GPU for device cuda (start its"
                    " nodes with GPUs, or use --device cpu)"
                )
            self.capacity = gpus * experiment.per_device
        else:
            self.capacity = len(worker_devices(experiment, spec.device))
        cpus = int(resources.get("CPU", os.cpu_count() or 1))
        self._threads = 1 if gpu else max(1, cpus // self.capacity)
        self._options = (
            {"num_cpus": 1, "num_gpus": 1 / experiment.per_device}
            if gpu
            else {"num_cpus": self._threads}
        )
        self.spec, self.weights_dir = spec, Path(weights_dir)
        self.timeout = experiment.evaluation_timeout
        self.user = user_evaluation(experiment)  # cloudpickled with each task
        arrays = {s: getattr(data, s).numpy() for s in _SPLITS}
        self._data = ray.put((attrs.evolve(data, **{s: None for s in _SPLITS}), arrays))
        self._remote = ray.remote(max_retries=0)(_train)
        self._running: dict[Any, Task] = {}
        self._teachers: dict[str, Any] = {}

    def submit(self, task: Task, judge: Judge) -> None:
        teacher = None
        if task.teacher is not None:
            if task.teacher not in self._teachers:
                content = (self.weights_dir / f"{task.teacher}.pt").read_bytes()
                self._teachers = {task.teacher: self._ray.put(content)}  # one teacher at a time
            teacher = self._teachers[task.teacher]
        parent = None
        if task.inherit_from is not None:
            try:  # a parent's file goes with its task (Ray moves a large one by the store)
                parent = (self.weights_dir / f"{task.inherit_from}.pt").read_bytes()
            except OSError as exc:
                parent = f"{type(exc).__name__}: {exc.strerror or exc}"
        ref = self._remote.options(**self._options).remote(
            task,
            judge.snapshot,
            self._data,
            self.spec,
            self.timeout,
            teacher,
            self._threads,
            parent,
            self.user,
        )
        self._running[ref] = task

    def next(self) -> Outcome:
        ray = self._ray
        (ref,), _ = ray.wait(list(self._running), num_returns=1)
        task = self._running.pop(ref)
        try:
            return ray.get(ref)
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
            cause = str(exc).splitlines()[0]
        except ray.exceptions.RayError as exc:
            cause = f"{type(exc).__name__}: {str(exc).splitlines()[-1]}"
        return Outcome(task, worker_died(task, cause, "ray"), worker="ray")

    def busy(self) -> dict[str, str]:
        return {f"ray-{i}": task.individual for i, task in enumerate(self._running.values())}

    def stats(self) -> dict[str, Any]:
        return {"executor": "ray", "workers": self.capacity, "worker_idle_seconds": None}

    def close(self) -> None:
        for ref in self._running:
            self._ray.cancel(ref, force=True)
        self._running = {}
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._remove_root()

    def _remove_root(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


def _train(
    task: Task,
    snapshot: Any,
    shared: tuple[Any, dict[str, Any]],
    spec: Any,
    timeout: float,
    teacher: Any,
    threads: int,
    parent: bytes | str | None = None,
    user: UserEvaluation | None = None,
) -> Outcome:
    """One candidate, in a Ray worker: the same training as every executor's."""
    import io
    import warnings

    import ray
    import torch

    import phenotypes as ph

    from .training import release_memory

    torch.set_num_threads(threads)
    empty, arrays = shared
    with warnings.catch_warnings():
        # The object store's arrays are read-only; training reads them and never writes.
        warnings.simplefilter("ignore", UserWarning)
        data = attrs.evolve(empty, **{s: torch.from_numpy(a) for s, a in arrays.items()})
    if spec.device.startswith("cuda"):
        spec = attrs.evolve(spec, device="cuda")  # Ray gives the task its GPU as cuda:0

    def teacher_model(individual: str) -> Any:
        content = ray.get(teacher) if isinstance(teacher, ray.ObjectRef) else teacher
        return ph.load_model(io.BytesIO(content))[1]

    def parent_model(individual: str) -> Any:
        if isinstance(parent, str):  # why the engine could not read the file
            raise OSError(parent)
        return ph.load_model(io.BytesIO(parent))

    judge = snapshot.build()
    evaluation, model = train_task(
        task, data, spec, judge, teacher_model, timeout, parent_model if parent else None, user
    )
    content = model_bytes(task.genome, model) if model is not None else None
    del model
    release_memory()
    return Outcome(task, evaluation, None, content, tuple(judge.events), "ray")
