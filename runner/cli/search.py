"""``ecogen evolve`` and ``ecogen resume``: running a search, and continuing one."""

from __future__ import annotations

import re
from pathlib import Path

import click

from .. import executors

_LIMIT_OPTIONS: tuple[tuple[tuple[str, ...], dict], ...] = (
    (("--generations", "-g"), {"type": click.IntRange(0), "help": "Generations to run."}),
    (
        ("--time-budget",),
        {
            "type": click.FloatRange(0),
            "help": "Seconds of search (0: none); the final training is not counted.",
        },
    ),
    (
        ("--max-evaluations",),
        {
            "type": click.IntRange(0),
            "help": "Stop after this many evaluations: trainings, and children whose mutation"
            " failed (0: none).",
        },
    ),
    (
        ("--max-epochs",),
        {
            "type": click.IntRange(0),
            "help": "Training epochs the whole search may spend; the training that would"
            " pass them stops at them, unfinished (0: none).",
        },
    ),
    (
        ("--max-failures",),
        {
            "type": click.IntRange(0),
            "help": "Stop after this many failed evaluations in a row (0: never) [default: 10].",
        },
    ),
    (
        ("--evaluation-timeout",),
        {
            "type": click.FloatRange(0),
            "help": "Seconds one candidate may take; slower ones fail (0: none) [default: 0].",
        },
    ),
)

_RUN_OPTIONS: tuple[tuple[tuple[str, ...], dict], ...] = (
    (("--dataset", "-d"), {"help": "As for `ecogen train` [default: digits]."}),
    (("--data-dir",), {"type": click.Path(file_okay=False), "help": "[default: data]"}),
    (("--population", "-p"), {"type": click.IntRange(1), "help": "[default: 12]"}),
    (
        ("--offspring",),
        {"type": click.IntRange(0), "help": "Children per generation [default: P]."},
    ),
    (("--epochs", "-e"), {"type": click.IntRange(1), "help": "Epochs per candidate [default: 8]."}),
    (
        ("--final-epochs",),
        {
            "type": click.IntRange(0),
            "help": "Epochs of the final training of the best (0: keep its search weights)"
            " [default: 30].",
        },
    ),
    # The training recipe, as `ecogen train` takes it; checked by the experiment.
    (("--weight-decay",), {"type": float, "help": "[default: 5e-4]"}),
    (("--label-smoothing",), {"type": float, "help": "[default: 0.1]"}),
    (
        ("--decay-norm-and-bias/--no-decay-norm-and-bias",),
        {"default": None, "help": "Weight decay on norm weights and biases too [default: yes]."},
    ),
    (
        ("--augment",),
        {
            "type": click.Choice(["auto", "none", "crop-flip", "translate"]),
            "help": "As for `ecogen train` [default: auto].",
        },
    ),
    (
        ("--init",),
        {"help": "First population: minimal, random, mixed or zoo:NAME[,NAME] [default: random]."},
    ),
    (("--max-params",), {"type": click.IntRange(0), "help": "Largest genome allowed (0: none)."}),
    # Checked by the experiment, so that a wrong value is one line naming the key, as in a file.
    (
        ("--max-flops",),
        {"type": int, "help": "Most FLOPs per image a genome may cost (0: none)."},
    ),
    (
        ("--max-latency-ms",),
        {
            "type": float,
            "help": "Slowest inference allowed, ms per image on the run's device; slower"
            " candidates are never trained (0: none).",
        },
    ),
    (
        ("--crossover-rate",),
        {
            "type": float,
            "help": "Probability that a child is crossed from two parents before its mutations"
            " [default: 0].",
        },
    ),
    (
        ("--asynchronous/--generational",),
        {
            "default": None,
            "help": "Regularized evolution: a child whenever a worker frees, the oldest dies"
            " (see docs/asynchronous.md) [default: generational].",
        },
    ),
    (
        ("--inherit/--no-inherit",),
        {
            "default": None,
            "help": "Children start from their parent's trained weights (see"
            " docs/inheritance.md) [default: no].",
        },
    ),
    (
        ("--inherit-epochs",),
        {
            "type": click.IntRange(0),
            "help": "Epochs of a child that inherits weights (0: a quarter of --epochs)"
            " [default: 0].",
        },
    ),
    (
        ("--final-from",),
        {
            "type": click.Choice(["scratch", "weights"]),
            "help": "The final training of the best starts from scratch or from its search"
            " weights [default: scratch].",
        },
    ),
    (
        ("--strategy", "-s"),
        {
            "multiple": True,
            "help": "Strategy or preset (tournament, ag-evolution, eigen, nsga2, or a plugin's;"
            " see `ecogen plugins`); repeat to combine [default: tournament].",
        },
    ),
    (
        ("--evaluation",),
        {
            "help": "A user evaluation (see `ecogen plugins`, or MODULE:FUNCTION) that gives"
            " each candidate its metrics in place of training it (docs/evaluations.md)"
            " [default: the built-in training].",
        },
    ),
    (("--seed",), {"type": int, "help": "[default: 0]"}),
    (("--device",), {"type": click.Choice(["auto", "cpu", "cuda"]), "help": "[default: auto]"}),
    (
        ("--keep-weights",),
        {
            "type": click.IntRange(0),
            "help": "Keep the weights of the best and of the last N trained candidates in"
            " RUN_DIR/weights/ [default: 3].",
        },
    ),
)


#: Where candidates train: they change no result, so resume takes them too.
_WORKER_OPTIONS: tuple[tuple[tuple[str, ...], dict], ...] = (
    (
        ("--executor",),
        {
            "type": click.Choice(executors.names()),
            "help": "serial: one candidate after another in this process; local: worker"
            " processes; ray: a Ray cluster [default: auto, serial for one worker].",
        },
    ),
    (
        ("--workers", "-w"),
        {"type": click.IntRange(1), "help": "Candidates trained at once on the CPU [default: 1]."},
    ),
    (
        ("--devices",),
        {"help": "GPUs to train on, e.g. cuda:0,cuda:1 [default: every visible GPU]."},
    ),
    (
        ("--per-device",),
        {"type": click.IntRange(1), "help": "Candidates trained at once per GPU [default: 1]."},
    ),
    (
        ("--ray-address",),
        {"help": "Ray cluster to use (auto, ray://HOST:PORT) [default: start a local Ray]."},
    ),
)


def _options(table: tuple, hidden: bool = False, shown: tuple[str, ...] = ()):
    """A decorator adding the options of ``table`` in order (``hidden`` but for ``shown``)."""

    def decorate(f):
        for decls, settings in reversed(table):
            f = click.option(*decls, hidden=hidden and decls[0] not in shown, **settings)(f)
        return f

    return decorate


#: The limits of a search: evolve sets them, resume may raise them.
_limit_options = _options(_LIMIT_OPTIONS)
#: What defines a run. ``ecogen resume`` takes these too (hidden) only to explain that they
#: cannot change, but for --data-dir and --keep-weights, which may.
_resume_run_options = _options(_RUN_OPTIONS, hidden=True, shown=("--data-dir", "--keep-weights"))


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler's stop), handled as Ctrl-C is."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def _run_search(engine, console, report: bool = False) -> None:
    """Run an engine with the live display; Ctrl-C or SIGTERM stops it with everything kept
    and says how to resume. ``report``: RUN_DIR/report/ is rewritten after every generation
    and at the end."""
    import signal

    from rich.console import Console

    from ..display import RichReporter, final_table

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with RichReporter(console) as reporter:
            if report:
                from ..report.live import LiveReport

                reporter = LiveReport(reporter, console)
            summary = engine.run(reporter)
            if report:
                reporter.refresh(engine.run_dir)
    except KeyboardInterrupt as stop:
        click.echo(
            f"interrupted: everything evaluated is kept; continue with"
            f" `ecogen resume {engine.run_dir}`",
            err=True,
        )
        raise click.exceptions.Exit(143 if isinstance(stop, _Terminated) else 130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        engine.store.close()
    Console().print(final_table(summary))


_REPORT_HELP = "Rewrite RUN_DIR/report/ (see `ecogen report`) after every generation."


def _given(flags: dict) -> dict:
    return {k: v for k, v in flags.items() if v is not None and v != ()}


@click.command()
@click.option(
    "--config", "-c", "config_file", type=click.Path(dir_okay=False), help="TOML experiment file."
)
@_options(_RUN_OPTIONS)
@_options(_WORKER_OPTIONS)
@_limit_options
@click.option(
    "--run-dir",
    "-o",
    type=click.Path(file_okay=False),
    help="Where the run is written [default: runs/DATASET-TIME].",
)
@click.option("--report", "live_report", is_flag=True, help=_REPORT_HELP)
def evolve(config_file: str | None, live_report: bool, **flags) -> None:
    """Search for a network: evolve a population of genomes on a dataset.

    Values come from the defaults, then --config FILE.toml, then the flags. The resolved
    configuration is written to RUN_DIR/experiment.toml; the run to RUN_DIR/ecogen.sqlite,
    RUN_DIR/best/ and RUN_DIR/summary.json.
    """
    import time

    from rich.console import Console

    from .. import config as cfg

    values = cfg.load(config_file) if config_file else {}
    values.update(_given(flags))
    experiment = cfg.from_dict(values)
    if not experiment.run_dir:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = re.sub(r"[^\w.-]+", "_", experiment.dataset).strip("_")
        experiment = cfg.attrs.evolve(experiment, run_dir=str(Path("runs") / f"{name}-{stamp}"))
    from ..session import claim, prepare_start

    # A bad value, a missing GPU or Ray cluster fails here, before the data is loaded or the
    # run directory exists.
    new_run = prepare_start(experiment)
    if live_report:
        from ..extras import require

        require("ecogen evolve --report", "report")
    import phenotypes as ph

    for note in new_run.notes:
        click.echo(f"warning: {note}", err=True)
    console = Console(stderr=True)
    lock = claim(experiment.run_dir)  # a second process on this directory stops here
    try:
        with console.status(f"loading {experiment.dataset}"):
            data = ph.load_dataset(experiment.dataset, experiment.data_dir, seed=experiment.seed)
        engine = new_run.engine(data, lock=lock)
    except BaseException:
        lock.release()
        raise
    _run_search(engine, console, report=live_report)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@_limit_options
@_options(_WORKER_OPTIONS)
@_resume_run_options
@click.option("--report", "live_report", is_flag=True, help=_REPORT_HELP)
def resume(run_dir: str, live_report: bool, **flags) -> None:
    """Continue the run in RUN_DIR from where it stopped (after Ctrl-C, a crash or a kill).

    Raise its limits to search further: `ecogen resume RUN_DIR --generations 30`. The result
    is the one the run would have had never stopped, so the settings that decide it cannot
    change here (only --data-dir and --keep-weights may).
    """
    from rich.console import Console

    import phenotypes as ph

    from ..session import prepare_resume

    if live_report:
        from ..extras import require

        require("ecogen resume --report", "report")
    resumption = prepare_resume(run_dir, **_given(flags))
    for note in resumption.notes:
        click.echo(f"warning: {note}", err=True)
    experiment = resumption.experiment
    console = Console(stderr=True)
    try:
        with console.status(f"loading {experiment.dataset}"):
            data = ph.load_dataset(experiment.dataset, experiment.data_dir, seed=experiment.seed)
    except BaseException:
        resumption.abandon()
        raise
    _run_search(resumption.engine(data), console, report=live_report)
