"""``ecogen show``, ``ecogen validate`` and ``ecogen zoo``: looking at genomes and experiment
files without training anything."""

from __future__ import annotations

from pathlib import Path

import click

from genomics import Genome, GenomeError

from ..errors import ConfigError
from .common import fmt_int, fmt_size, load_genome, read_text


@click.command()
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
            fmt_int(params[node.id]),
            fmt_int(sizes[node.id]),
        )
    console = Console()
    console.print(table)
    binarized = sum(1 for n in g.nodes if getattr(n.gene, "binarized", False))
    note = f" ({binarized} binarized layers at 1 bit per weight)" if binarized else ""
    console.print(
        f"parameters: {fmt_int(sum(params.values()))}   "
        f"size: {fmt_size(sum(sizes.values()))}{note}   hash: {canonical_hash(g)[:16]}"
    )
    if code:
        from phenotypes import compile_genome

        console.print(compile_genome(g).code.strip(), markup=False, highlight=False)


def _draw(genome: Genome, name: str, path: str | None, fmt: str | None) -> None:
    from ..report import genome_drawing

    if path is None:
        if fmt != "dot":
            raise click.UsageError(f"--format {fmt}: needs --draw FILE (only dot prints)")
        click.echo(genome_drawing.to_dot(genome, name), nl=False)
        return
    if (fmt or Path(path).suffix.lstrip(".").lower()) not in ("dot", "gv"):
        from ..extras import require

        require("ecogen show --draw", "report")
    click.echo(f"wrote {genome_drawing.draw(genome, path, fmt, title=name)}")


@click.command()
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
            for note in _ignored(Path(file)):
                click.echo(f"{file}: warning: {note}")
            click.echo(f"{file}: ok")
        bad += bool(problems)
    if bad:
        raise click.exceptions.Exit(1)


def _problems(path: Path) -> list[str]:
    """What is wrong with a genome or experiment file (nothing: an empty list)."""
    from genomics import loads

    from .. import config as cfg

    try:
        if path.suffix == ".toml":
            cfg.from_dict(cfg.load(path)).check()
        else:
            loads(read_text(path))
    except GenomeError as exc:
        return list(exc.problems)
    except ConfigError as exc:
        return [str(exc)]
    return []


def _ignored(path: Path) -> list[str]:
    """What a valid experiment file sets that changes nothing (none for a genome)."""
    from .. import config as cfg

    return cfg.from_dict(cfg.load(path)).ignored() if path.suffix == ".toml" else []


@click.group(name="zoo")
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
            f"{name:<20} {zoo.params(name):>10,} params {fmt_size(size):>10}  {zoo.describe(name)}"
        )


@zoo_group.command(name="show")
@click.argument("name")
def zoo_show(name: str) -> None:
    """Print zoo genome NAME as JSON (redirect it to a file to start your own)."""
    import zoo
    from genomics import dumps

    click.echo(dumps(zoo.load(name)), nl=False)
