"""The registry of executors (what trains a run's candidates), by the name the config's
``executor`` and the CLI's ``--executor`` take. Each is named by where its class lives and
imported only when a run uses it (Ray's is an extra); ``runner.execution.make_executor``
builds one."""

from __future__ import annotations

from attrs import frozen


@frozen
class ExecutorInfo:
    """One executor: its class as ``module:Class`` and what it does, for ``--help``."""

    target: str
    summary: str


#: ``auto`` is not an executor: serial for one worker, local processes for more.
AUTO = "auto"

EXECUTORS: dict[str, ExecutorInfo] = {
    "serial": ExecutorInfo(
        "runner.execution.serial:SerialExecutor", "one candidate after another in this process"
    ),
    "local": ExecutorInfo("runner.execution.local:LocalExecutor", "worker processes"),
    "ray": ExecutorInfo("runner.execution.ray_cluster:RayExecutor", "a Ray cluster"),
}


def names() -> tuple[str, ...]:
    """The names ``executor`` accepts, ``auto`` first."""
    return (AUTO, *EXECUTORS)


def chosen(executor: str, workers: int) -> str:
    """The executor a run uses: ``executor``, or for ``auto`` serial with one worker and local
    worker processes with more."""
    if executor == AUTO:
        return "local" if workers > 1 else "serial"
    return executor
