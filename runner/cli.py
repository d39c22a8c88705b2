"""The ``ecogen`` command line.

Heavy modules (torch, torchvision, scikit-learn) are imported inside the commands that need
them, so ``ecogen --help`` stays instant.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import click

from genomics import Conv, Genome, GenomeError
from operators import PluginError

from .config import ConfigError, RunError
from .store import StoreError

# Errors whose message is the whole story for a user; anything else is reported with its type.
_USER_ERRORS: tuple[type[BaseException], ...] = (
    GenomeError,
    FileNotFoundError,
    IsADirectoryError,
    ConfigError,
    RunError,
    StoreError,
    PluginError,
)


def _user_errors() -> tuple[type[BaseException], ...]:
    # DatasetError lives beside torch code; look it up only if a command already imported it, so
    # that error handling never imports torch by itself.
    found = list(_USER_ERRORS)
    data = sys.modules.get("phenotypes.data")
    if data is not None:
        found.append(data.DatasetError)
    return tuple(found)


class _Group(click.Group):
    """Turns every failure into one line on stderr and a non-zero exit (``--debug``: traceback)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            if ctx.params.get("debug") or os.environ.get("ECOGEN_DEBUG"):
                raise
            if isinstance(exc, _user_errors()):
                message = str(exc)
            else:
                message = f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"
            click.echo(
                f"error: {message.splitlines()[0] if message else type(exc).__name__}", err=True
            )
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="ecogen")
def main(debug: bool) -> None:
    """ecogen: evolutionary neural architecture search."""


def load_genome(spec: str) -> tuple[Genome, str]:
    """A genome from a JSON file path or a zoo name, and a short name for it."""
    import zoo
    from genomics import loads

    path = Path(spec)
    if path.is_file():
        try:
            return loads(_read(path)), path.stem
        except GenomeError as exc:
            raise GenomeError([f"{path}: {p}" for p in exc.problems]) from None
    if spec in zoo.names():
        return zoo.load(spec), spec
    raise GenomeError(
        f"{spec}: no such genome file, and no zoo genome of that name"
        f" (zoo: {', '.join(zoo.names())})"
    )


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def _fmt_size(n: int) -> str:
    """Bytes as people read them: KiB below a MiB, MiB (two decimals) above."""
    return f"{n / 1024:,.1f} KiB" if n < 1024**2 else f"{n / 1024**2:,.2f} MiB"


@main.command()
@click.argument("genome")
@click.option(
    "--dataset",
    "-d",
    default="digits",
    show_default=True,
    help="digits, mnist, fashion-mnist, cifar10, cifar100, fake:C,H,W[,N], PATH.npz or "
    "imagefolder:DIR",
)
@click.option(
    "--data-dir",
    default="data",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where torchvision datasets are read from (and downloaded to).",
)
@click.option("--download", is_flag=True, help="Download a torchvision dataset that is missing.")
@click.option("--epochs", "-e", default=30, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option(
    "--lr",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Peak learning rate.",
)
@click.option(
    "--schedule", type=click.Choice(["onecycle", "cosine"]), default="onecycle", show_default=True
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False),
    default=None,
    help="Output directory [default: runs/GENOME-DATASET].",
)
@click.option(
    "--binarize-patterns",
    is_flag=True,
    help="After training, binarize every k x k convolution (k > 1) and fine-tune the rest.",
)
@click.option(
    "--finetune-epochs",
    type=click.IntRange(0),
    default=None,
    help="Fine-tuning epochs after binarizing [default: half of --epochs].",
)
@click.option(
    "--finetune-lr",
    type=click.FloatRange(0, min_open=True),
    default=0.01,
    show_default=True,
    help="Peak learning rate of the fine-tuning.",
)
@click.option(
    "--binary-scale",
    type=click.Choice(["filter", "offset"]),
    default="filter",
    show_default=True,
    help="filter: signs times a trainable mean |W| per filter; offset: signs times a constant.",
)
@click.option(
    "--binary-offset",
    type=click.FloatRange(0, min_open=True),
    default=0.06,
    show_default=True,
    help="The constant of --binary-scale offset.",
)
def train(
    genome: str,
    dataset: str,
    data_dir: str,
    download: bool,
    epochs: int,
    batch_size: int,
    lr: float,
    schedule: str,
    seed: int,
    device: str,
    out: str | None,
    binarize_patterns: bool,
    finetune_epochs: int | None,
    finetune_lr: float,
    binary_scale: str,
    binary_offset: float,
) -> None:
    """Train GENOME (a JSON file or a zoo name) and measure it.

    Writes OUT/genome.json, OUT/model.pt and OUT/summary.json. With --binarize-patterns the
    trained network is pattern-binarized and fine-tuned: OUT/model.pt is the binarized network,
    OUT/model-full.pt the full-precision one, and the summary gives the accuracy and size of
    each stage.
    """
    if finetune_epochs is not None and not binarize_patterns:
        raise click.UsageError("--finetune-epochs: needs --binarize-patterns")
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    import phenotypes as ph
    from genomics import retarget

    console = Console(stderr=True)
    genome_obj, name = load_genome(genome)
    if binarize_patterns and not any(
        isinstance(n.gene, Conv) and n.gene.kernel > 1 for n in genome_obj.nodes
    ):
        raise click.UsageError(f"--binarize-patterns: {name} has no k x k convolution (k > 1)")
    with console.status(f"loading {dataset}"):
        data = ph.load_dataset(dataset, data_dir, download=download, seed=seed)
    if (tuple(genome_obj.input_shape), genome_obj.num_classes) != (
        data.input_shape,
        data.num_classes,
    ):
        genome_obj = retarget(genome_obj, data.input_shape, data.num_classes)
        console.print(
            f"[dim]genome adapted to {dataset}: "
            f"input {data.input_shape}, {data.num_classes} classes[/]"
        )
    from .evaluation import train_and_write

    target = ph.resolve_device(device)
    spec = ph.TrainSpec(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        schedule=schedule,
        seed=seed,
        device=str(target),
    )
    columns = (
        TextColumn("[bold]epoch {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    out_dir = Path(out) if out else Path("runs") / re.sub(r"[^\w.-]+", "_", f"{name}-{dataset}")
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("", total=epochs)

        def on_epoch(m: ph.EpochMetrics) -> None:
            progress.update(
                task,
                completed=m.epoch,
                description=f"loss {m.train_loss:.3f}  val {m.val_accuracy:.2%}",
            )

        summary, result = train_and_write(
            genome_obj, name, data, dataset, spec, out_dir, on_epoch=on_epoch
        )
    stages = None
    if binarize_patterns and result.status != "diverged":
        import attrs

        tuning = attrs.evolve(
            spec,
            epochs=finetune_epochs if finetune_epochs is not None else max(1, epochs // 2),
            lr=finetune_lr,
        )
        summary, stages = _binarize_and_write(
            out_dir, data, tuning, binary_scale, binary_offset, summary, console
        )
    test_accuracy = summary["test_accuracy"]

    from rich.table import Table

    table = Table(title=f"{name} on {dataset}", show_header=False)
    for key, value in (
        ("test accuracy", f"{test_accuracy:.2%}"),
        ("val accuracy", f"{result.val_accuracy:.2%}"),
        ("parameters", _fmt_int(summary["params"])),
        ("size", _fmt_size(summary["size_bytes"])),
        ("FLOPs / image", _fmt_int(summary["flops"])),
        ("latency (batch 1)", f"{summary['latency_ms']:.2f} ms"),
        (
            "epochs",
            f"{result.epochs}" + (f" ({result.status}: {result.reason})" if result.reason else ""),
        ),
        ("training time", f"{result.seconds:.1f} s on {result.device}"),
        ("written to", str(out_dir)),
    ):
        table.add_row(key, value)
    Console().print(table)
    if stages is not None:
        _print_stages(stages)
    if result.status == "diverged":
        raise click.ClickException(result.reason)


def _binarize_and_write(
    out_dir: Path, data, spec, scale: str, offset: float, summary: dict, console
) -> tuple[dict, list]:
    """Binarize the model ``train`` wrote, fine-tune it, and rewrite the outputs."""
    import json

    import phenotypes as ph

    genome, model = ph.load_model(out_dir / "model.pt")
    (out_dir / "model.pt").replace(out_dir / "model-full.pt")
    with console.status(f"binarizing patterns, fine-tuning {spec.epochs} epochs"):
        report = ph.binarize_and_finetune(model, data, spec, scale=scale, offset=offset)
    model.cpu()
    m = ph.measure(model, data.input_shape)
    final = report.stage("finetuned")
    summary = {
        **summary,
        "test_accuracy": final.test_accuracy,
        "val_accuracy": final.val_accuracy,
        "params": m.params,
        "size_bytes": m.size_bytes,
        "flops": m.flops,
        "latency_ms": m.latency_ms,
        "binarization": report.as_dict(),
    }
    ph.save_model(out_dir / "model.pt", genome, model)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary, list(report.stages)


def _print_stages(stages: list) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="pattern binarization")
    for column in ("stage", "val accuracy", "test accuracy", "size"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    labels = {"full": "full precision", "binarized": "binarized", "finetuned": "fine-tuned"}
    for stage in stages:
        table.add_row(
            labels[stage.name],
            f"{stage.val_accuracy:.2%}",
            f"{stage.test_accuracy:.2%}",
            f"{stage.size_bytes / 1024:,.1f} KiB",
        )
    Console().print(table)


@main.command()
@click.argument("genome")
@click.option(
    "--code/--no-code", default=True, show_default=True, help="Print the generated PyTorch code."
)
@click.option(
    "--draw",
    "draw_file",
    type=click.Path(dir_okay=False),
    help="Draw GENOME to FILE instead (top to bottom; svg, png, pdf or dot, by its ending).",
)
@click.option(
    "--format",
    "draw_format",
    type=click.Choice(["svg", "png", "pdf", "dot"]),
    help="The drawing's format; --format dot without --draw prints Graphviz DOT.",
)
def show(genome: str, code: bool, draw_file: str | None, draw_format: str | None) -> None:
    """Show GENOME's layers, output shapes and parameters, and its PyTorch code."""
    from rich.console import Console
    from rich.table import Table

    from genomics import canonical_hash, infer_shapes, parameter_counts, storage_bytes

    g, name = load_genome(genome)
    if draw_file or draw_format:
        _draw(g, name, draw_file, draw_format)
        return
    shapes = infer_shapes(g)
    params = parameter_counts(g, shapes)
    sizes = storage_bytes(g, shapes)
    table = Table(title=f"{name}  (input {tuple(g.input_shape)}, {g.num_classes} classes)")
    for column in ("id", "type", "settings", "inputs", "output", "params", "bytes"):
        table.add_column(column, justify="right" if column in ("params", "bytes") else "left")
    from genomics.genes import describe

    for node in g.nodes:
        settings = describe(node.gene)
        table.add_row(
            node.id,
            node.gene.TYPE,
            settings,
            ", ".join(node.inputs),
            "x".join(map(str, shapes[node.id])),
            _fmt_int(params[node.id]),
            _fmt_int(sizes[node.id]),
        )
    console = Console()
    console.print(table)
    binarized = sum(1 for n in g.nodes if getattr(n.gene, "binarized", False))
    note = f" ({binarized} binarized layers at 1 bit per weight)" if binarized else ""
    console.print(
        f"parameters: {_fmt_int(sum(params.values()))}   "
        f"size: {_fmt_size(sum(sizes.values()))}{note}   hash: {canonical_hash(g)[:16]}"
    )
    if code:
        from phenotypes import compile_genome

        console.print(compile_genome(g).code.strip(), markup=False, highlight=False)


def _draw(genome: Genome, name: str, path: str | None, fmt: str | None) -> None:
    from .report import genome_drawing

    if path is None:
        if fmt != "dot":
            raise click.UsageError(f"--format {fmt}: needs --draw FILE (only dot prints)")
        click.echo(genome_drawing.to_dot(genome, name), nl=False)
        return
    if (fmt or Path(path).suffix.lstrip(".").lower()) not in ("dot", "gv"):
        from .extras import require

        require("ecogen show --draw", "report")
    click.echo(f"wrote {genome_drawing.draw(genome, path, fmt, title=name)}")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False),
    help="Folder to write the page and figures in [default: RUN_DIR/report].",
)
def report(run_dir: str, out: str | None) -> None:
    """Write RUN_DIR/report/index.html: what the search did, in figures and tables.

    Progress, every individual, the best's lineage and genome, the mutations' and strategies'
    record. Works on finished, failed, resumed and running runs: the store is only read.
    """
    from .report import write_report

    click.echo(f"wrote {write_report(run_dir, out)}")


@main.command()
@click.argument("source", type=click.Path())
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["onnx", "pt2"]),
    default="onnx",
    show_default=True,
    help="ONNX (checked in onnxruntime) or torch.export's .pt2.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False),
    help="File to write [default: beside the model, model.onnx or model.pt2].",
)
def export(source: str, fmt: str, out: str | None) -> None:
    """Export a trained network: SOURCE is a run directory (its best/model.pt) or a MODEL.pt.

    The export is loaded back and run on a random batch of another size than it was traced
    with (the batch dimension is dynamic); it is written only if its outputs are within 1e-4
    of PyTorch's.
    """
    from .export import export_file

    click.echo(export_file(source, fmt, out).describe())


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check genome JSON and experiment TOML FILES (by their .toml ending) without running
    anything; one line per problem, exit 1 when any is invalid."""
    bad = 0
    for file in files:
        problems = _problems(Path(file))
        for problem in problems:
            click.echo(f"{file}: {problem.removeprefix(f'{file}: ')}")
        if not problems:
            click.echo(f"{file}: ok")
        bad += bool(problems)
    if bad:
        raise click.exceptions.Exit(1)


def _problems(path: Path) -> list[str]:
    """What is wrong with a genome or experiment file (nothing: an empty list)."""
    from genomics import loads

    from . import config as cfg

    try:
        if path.suffix == ".toml":
            cfg.from_dict(cfg.load(path)).check()
        else:
            loads(_read(path))
    except GenomeError as exc:
        return list(exc.problems)
    except ConfigError as exc:
        return [str(exc)]
    return []


def _read(path: Path) -> str:
    """A genome file's text; GenomeError when it cannot be read as text."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise GenomeError("not UTF-8 text (is it a genome JSON file?)") from None
    except OSError as exc:
        raise GenomeError(f"cannot read ({exc.strerror})") from None


@main.group(name="zoo")
def zoo_group() -> None:
    """Named genomes that ship with ecogen."""


@zoo_group.command(name="list")
def zoo_list() -> None:
    """List the zoo's genomes."""
    import zoo
    from genomics import storage_bytes

    for name in zoo.names():
        size = sum(storage_bytes(zoo.load(name)).values())
        click.echo(
            f"{name:<20} {zoo.params(name):>10,} params {_fmt_size(size):>10}  {zoo.describe(name)}"
        )


@zoo_group.command(name="show")
@click.argument("name")
def zoo_show(name: str) -> None:
    """Print zoo genome NAME as JSON (redirect it to a file to start your own)."""
    import zoo
    from genomics import dumps

    click.echo(dumps(zoo.load(name)), nl=False)


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
        {"type": click.IntRange(0), "help": "Stop after this many trainings."},
    ),
    (
        ("--max-epochs",),
        {
            "type": click.IntRange(0),
            "help": "Stop after this many training epochs in all (0: none).",
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
    (
        ("--init",),
        {"help": "First population: minimal, random or zoo:NAME[,NAME] [default: random]."},
    ),
    (("--max-params",), {"type": click.IntRange(0), "help": "Largest genome allowed (0: none)."}),
    (
        ("--strategy", "-s"),
        {
            "multiple": True,
            "help": "Strategy or preset (tournament, ag-evolution, eigen, nsga2, or a plugin's;"
            " see `ecogen plugins`); repeat to combine [default: tournament].",
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

    from .display import RichReporter, final_table

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with RichReporter(console) as reporter:
            if report:
                from .report.live import LiveReport

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


@main.command()
@click.option(
    "--config", "-c", "config_file", type=click.Path(dir_okay=False), help="TOML experiment file."
)
@_options(_RUN_OPTIONS)
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

    from . import config as cfg

    values = cfg.load(config_file) if config_file else {}
    values.update(_given(flags))
    experiment = cfg.from_dict(values)
    if not experiment.run_dir:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = re.sub(r"[^\w.-]+", "_", experiment.dataset).strip("_")
        experiment = cfg.attrs.evolve(experiment, run_dir=str(Path("runs") / f"{name}-{stamp}"))
    experiment.check()  # a bad value fails before the data is loaded
    if live_report:
        from .extras import require

        require("ecogen evolve --report", "report")
    console = Console(stderr=True)
    import phenotypes as ph

    from .engine import claim, start

    lock = claim(experiment.run_dir)  # a second process on this directory stops here
    try:
        with console.status(f"loading {experiment.dataset}"):
            data = ph.load_dataset(experiment.dataset, experiment.data_dir, seed=experiment.seed)
        engine = start(experiment, data, lock=lock)
    except BaseException:
        lock.release()
        raise
    _run_search(engine, console, report=live_report)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@_limit_options
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

    from .engine import prepare_resume

    if live_report:
        from .extras import require

        require("ecogen resume --report", "report")
    resumption = prepare_resume(run_dir, **_given(flags))
    experiment = resumption.experiment
    console = Console(stderr=True)
    try:
        with console.status(f"loading {experiment.dataset}"):
            data = ph.load_dataset(experiment.dataset, experiment.data_dir, seed=experiment.seed)
    except BaseException:
        resumption.abandon()
        raise
    _run_search(resumption.engine(data), console, report=live_report)


@main.command()
def plugins() -> None:
    """List the registered operators, strategies and presets with the package providing each.

    Strategy plugins that were refused (a hook that does not match the specification, a class
    that cannot be built) are listed with the reason, and the exit status is 1.
    """
    import operators
    import strategies

    table = operators.registered()
    width = max(len(n) for n in table)
    click.echo("operators:")
    for name, info in table.items():
        effect = str(info.effect) if info.effect else "-"
        off = "" if info.weight else " (off unless [weights] give it a weight)"
        click.echo(f"  {name:<{width}}  {info.provider:<12} {effect:<20} {info.changes}{off}")
    found = strategies.registered(reload=True)
    width = max(len(n) for n in [*found, *strategies.PRESETS])
    click.echo("strategies:")
    for name, info in found.items():
        summary = info.summary if len(info.summary) <= 72 else info.summary[:71] + "…"
        click.echo(f"  {name:<{width}}  {info.provider:<13} {summary}")
    click.echo("presets:")
    for name, members in strategies.PRESETS.items():
        click.echo(f"  {name:<{width}}  {' + '.join(m for m, _ in members)}")
    refused = strategies.refused()
    if refused:
        click.echo("refused:")
        for message in refused.values():
            click.echo(f"  {message}")
        raise click.exceptions.Exit(1)


if __name__ == "__main__":
    main()
