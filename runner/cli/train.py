"""``ecogen train``: train one genome, measure it, and optionally pattern-binarize it."""

from __future__ import annotations

import re
from pathlib import Path

import click

from genomics import Conv

from .common import fmt_int, fmt_size, load_genome


@click.command()
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
@click.option("--weight-decay", default=5e-4, show_default=True, type=click.FloatRange(0))
@click.option("--label-smoothing", default=0.1, show_default=True, type=click.FloatRange(0, 1))
@click.option(
    "--decay-norm-and-bias/--no-decay-norm-and-bias",
    default=True,
    show_default=True,
    help="Weight decay on norm weights and biases too.",
)
@click.option(
    "--augment",
    type=click.Choice(["auto", "none", "crop-flip", "translate"]),
    default="auto",
    show_default=True,
    help="auto: crop-flip for CIFAR, translate for MNIST-like, else none.",
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
    weight_decay: float,
    label_smoothing: float,
    decay_norm_and_bias: bool,
    augment: str,
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
    from ..files import train_and_write

    target = ph.resolve_device(device)
    spec = ph.TrainSpec(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        schedule=schedule,
        weight_decay=weight_decay,
        label_smoothing=label_smoothing,
        decay_norm_and_bias=decay_norm_and_bias,
        augment=augment,
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

    from rich.table import Table

    table = Table(title=f"{name} on {dataset}", show_header=False)
    # With --binarize-patterns both accuracies are the binarized network's; the stages table
    # below gives those of the full-precision one.
    for key, value in (
        ("test accuracy", f"{summary['test_accuracy']:.2%}"),
        ("val accuracy", f"{summary['val_accuracy']:.2%}"),
        ("parameters", fmt_int(summary["params"])),
        ("size", fmt_size(summary["size_bytes"])),
        ("FLOPs / image", fmt_int(summary["flops"])),
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
    """Binarize the model ``train`` wrote and fine-tune it; OUT/model-full.pt keeps the
    full-precision network, OUT/model.pt and OUT/summary.json become the binarized one's."""
    import phenotypes as ph

    from ..files import write_model

    genome, model = ph.load_model(out_dir / "model.pt")
    (out_dir / "model.pt").replace(out_dir / "model-full.pt")
    with console.status(f"binarizing patterns, fine-tuning {spec.epochs} epochs"):
        report, figures = ph.binarize_network(model, data, spec, scale=scale, offset=offset)
    summary = {**summary, **figures}
    write_model(out_dir, genome, model, summary)
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
