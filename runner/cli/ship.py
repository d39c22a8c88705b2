"""``ecogen report`` and ``ecogen export``: seeing what a search did, and shipping the network
it found. Plotting and export libraries are extras, imported when these commands run."""

from __future__ import annotations

import click


@click.command()
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
    from ..report import write_report

    click.echo(f"wrote {write_report(run_dir, out)}")


@click.command()
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
    from ..export import export_file

    click.echo(export_file(source, fmt, out).describe())
