"""Starting and resuming a run: claiming its directory, creating its store, checking that a
resumed run can go on unchanged (same settings, same data), and building its engine."""

from __future__ import annotations

import hashlib
import importlib.metadata
import time
from pathlib import Path
from typing import Any

import attrs

from . import config as cfg
from . import faults
from .errors import RunError, StoreError
from .evolution.costs import Costs
from .evolution.engine import Engine
from .evolution.population import check_init
from .files import write_text_atomic
from .lock import RunLock
from .store import FILENAME, Store, check_file


def data_fingerprint(data: Any) -> str:
    """A hash of a dataset's splits (shapes, types and values): resuming on other data would
    silently make another run."""
    digest = hashlib.blake2b(digest_size=16)
    for split in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        array = getattr(data, split).detach().cpu().contiguous().numpy()
        digest.update(f"{split}:{array.dtype}:{array.shape};".encode())
        digest.update(array.data)
    return digest.hexdigest()


def check_machine(experiment: cfg.Experiment) -> list[str]:
    """RunError when this machine lacks what ``experiment`` trains on (its device, the GPUs it
    names, its Ray cluster), found before anything is written, so that the fix the message
    suggests works on the same run directory; else the settings this machine makes moot
    (:meth:`~runner.config.Experiment.ignored`), one line each."""
    import torch

    from phenotypes import resolve_device

    try:
        device = resolve_device(experiment.device)
    except RuntimeError as exc:
        raise RunError(str(exc)) from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        for name in experiment.devices:
            index = name.partition(":")[2]
            if index and int(index) >= count:
                raise RunError(
                    f"devices: {name}: no such GPU (this machine has {count}:"
                    f" cuda:0 to cuda:{count - 1})"
                )
    if experiment.executor == "ray":
        from .execution.ray_cluster import check_reachable

        check_reachable(experiment.ray_address)
    return experiment.ignored(device.type)


def claim(run_dir: str | Path) -> RunLock:
    """Lock ``run_dir`` (created if missing) for a new run; RunError if another process holds
    it or it already holds a run."""
    faults.check()
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"{run_dir}: not a directory; choose another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir)
    if (run_dir / FILENAME).exists():
        lock.release()
        raise RunError(
            f"{run_dir} already holds a run; continue it with `ecogen resume {run_dir}`"
            " or choose another --run-dir"
        )
    return lock


@attrs.define
class NewRun:
    """A new run's experiment, checked before its data is loaded or anything is written:
    :meth:`engine` then writes the run."""

    experiment: cfg.Experiment
    #: What the run sets that this machine makes moot (:func:`check_machine`), one line each.
    notes: list[str] = attrs.field(factory=list)

    def engine(self, data: Any, lock: RunLock | None = None) -> Engine:
        """Check the first population on ``data``, write ``experiment.toml``, create the store
        and build the engine. ``lock`` is the directory's, from :func:`claim` (taken here when
        not given)."""
        experiment = self.experiment
        costs = None
        if experiment.max_latency_ms:  # the first genomes' latency, measured where the run runs
            from phenotypes import resolve_device

            costs = Costs(experiment, str(resolve_device(experiment.device)))
        check_init(experiment, data, costs)
        run_dir = Path(experiment.run_dir)
        lock = lock if lock is not None else claim(run_dir)
        try:
            toml = cfg.dumps(experiment)
            write_text_atomic(run_dir / "experiment.toml", toml)
            meta = {
                "ecogen_version": importlib.metadata.version("ecogen"),
                "created": time.time(),
                "seconds": 0.0,
                "data_fingerprint": data_fingerprint(data),
            }
            store = Store.create(run_dir / FILENAME, toml, meta, lock=lock)
            if costs is not None:
                costs.keep(store, costs.measured.items())
        except BaseException:
            lock.release()
            raise
        return _engine(experiment, run_dir, store, data)


def prepare_start(experiment: cfg.Experiment) -> NewRun:
    """Check ``experiment`` (:meth:`~runner.config.Experiment.check`, :func:`check_machine`)
    before any data is loaded or file written; ConfigError or RunError says what is wrong."""
    experiment.check()
    return NewRun(experiment, check_machine(experiment))


def start(experiment: cfg.Experiment, data: Any, lock: RunLock | None = None) -> Engine:
    """A new run in ``experiment.run_dir``: checks it, writes ``experiment.toml`` and creates
    the store. ``lock`` is the directory's, from :func:`claim` (taken here when not given)."""
    return prepare_start(experiment).engine(data, lock)


def _engine(experiment: cfg.Experiment, run_dir: Path, store: Store, data: Any) -> Engine:
    try:
        return Engine(experiment, run_dir, store, data)
    except BaseException:
        store.close()
        raise


@attrs.define
class Resumption:
    """An existing run, checked and locked but not yet changed: :meth:`check_data`, then
    :meth:`open` (which writes), or :meth:`abandon`."""

    run_dir: Path
    lock: RunLock
    experiment: cfg.Experiment
    changes: dict[str, Any]
    fingerprint: str | None
    #: What the run sets that this machine makes moot (:func:`check_machine`), one line each.
    notes: list[str] = attrs.field(factory=list)

    def check_data(self, data: Any) -> None:
        """RunError when ``data`` is not the data the run started with."""
        if self.fingerprint and data_fingerprint(data) != self.fingerprint:
            raise RunError(
                f"{self.run_dir}: dataset {self.experiment.dataset} is not the data this run"
                " started with (its splits differ); resuming on it would make another run"
            )

    def open(self, data: Any = None) -> Store:
        """The store, opened for writing, with the raised limits saved."""
        store = Store(self.run_dir / FILENAME, lock=self.lock)
        if self.changes:
            toml = cfg.dumps(self.experiment)
            store.save_config(toml)
            write_text_atomic(self.run_dir / "experiment.toml", toml)
        if data is not None and not self.fingerprint:  # a run from before fingerprints
            store.set_meta(data_fingerprint=data_fingerprint(data))
        return store

    def engine(self, data: Any) -> Engine:
        """:meth:`check_data`, :meth:`open` and the engine that continues the run."""
        try:
            self.check_data(data)
            store = self.open(data)
        except BaseException:
            self.abandon()
            raise
        return _engine(self.experiment, self.run_dir, store, data)

    def abandon(self) -> None:
        self.lock.release()


def prepare_resume(run_dir: str | Path, **asked: Any) -> Resumption:
    """Check that the run in ``run_dir`` can go on with the settings ``asked`` (None: as
    stored) and lock it, writing nothing; RunError or StoreError says why not."""
    faults.check()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run directory")
    check_file(run_dir / FILENAME)
    lock = RunLock(run_dir)
    try:
        with Store(run_dir / FILENAME, readonly=True) as store:
            try:
                values = cfg.tomllib.loads(store.config())
            except cfg.tomllib.TOMLDecodeError as exc:
                raise StoreError(f"{store.path}: its configuration is damaged ({exc})") from None
            status = store.get_meta("status")
            fingerprint = store.get_meta("data_fingerprint")
        stored = cfg.from_dict({**cfg.introduced(values), **values, "run_dir": str(run_dir)})
        changes = cfg.resume_changes(stored, {k: v for k, v in asked.items() if v is not None})
        if status == "complete" and not set(changes) & set(cfg.LIMITS):
            raise RunError(
                f"{run_dir}: this run is complete; raise a limit to go on (--generations,"
                " --time-budget, --max-evaluations or --max-epochs)"
            )
        experiment = attrs.evolve(stored, **changes)
        experiment.check()
        notes = check_machine(experiment)
    except BaseException:
        lock.release()
        raise
    return Resumption(run_dir, lock, experiment, changes, fingerprint, notes)


def open_store(run_dir: str | Path, **overrides: Any) -> tuple[Store, cfg.Experiment]:
    """The store (opened for writing, so locked) and configuration of an existing run, with
    limits raised by ``overrides`` (``generations``, ``time_budget``, ...)."""
    resumption = prepare_resume(run_dir, **overrides)
    try:
        return resumption.open(), resumption.experiment
    except BaseException:
        resumption.abandon()
        raise
