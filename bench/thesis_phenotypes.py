"""The thesis phenotypes on ``digits``: evolutional dropout and pattern binarization.

Part (a), ``--part dropout``: one network (LeNet-5 style, with dropout after the second pooling
and after the first dense layer) trained with standard (Bernoulli) dropout and with evolutional
dropout, the same seeds and schedule. Evolutional dropout draws ``k = (1 - rate) * d`` units, as
many as Bernoulli dropout keeps on average. Prints the validation accuracy per epoch (mean over
seeds), the epochs each first reaches a target accuracy and the final test accuracy.

Part (b), ``--part binarize``: the CIFAR ResNet-20 of the zoo adapted to ``digits`` (1x8x8, 10
classes), trained at full precision, pattern-binarized (every 3x3 convolution; the network has
no 1x1 ones) and fine-tuned, for both scale variants: test accuracy and size at each stage, as
in the SEP-Nets table (ResNet-20 on CIFAR-10: 91.18% full, 15.46% binarized, 86.49% fine-tuned).

    python bench/thesis_phenotypes.py                    # both parts, seeds 0-2
    python bench/thesis_phenotypes.py --part binarize --seeds 0 --epochs 10 --finetune-epochs 5
    python bench/thesis_phenotypes.py --smoke            # seconds: both parts, one seed, one epoch
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import attrs

import genomics as G
import phenotypes as ph
import zoo

#: ``--smoke``: the defaults of a run of seconds through the same code, both parts, to check that
#: the script works (its figures mean nothing); options given still win.
SMOKE = {"seeds": [0], "epochs": 1, "finetune_epochs": 1}


def with_dropout(kind: str, rate: float, data: ph.Dataset) -> G.Genome:
    """``lenet5`` for ``data`` with dropout of ``kind`` after pool2 and after fc1."""
    base = zoo.load("lenet5", data.input_shape, data.num_classes)
    if kind == "bernoulli":
        gene = G.Dropout(rate)
    else:
        gene = G.Dropout(kind="evolutional", samples=round(1 - rate, 2))
    nodes = []
    for node in base.nodes:
        if node.id in ("fc1", "fc2"):
            source = node.inputs[0]
            nodes.append(G.Node(f"drop_{source}", gene, (source,)))
            node = attrs.evolve(node, inputs=(f"drop_{source}",))
        nodes.append(node)
    return G.validate(attrs.evolve(base, nodes=tuple(nodes)))


def mean(values: list[float]) -> float:
    return statistics.fmean(values)


def dropout_part(args: argparse.Namespace) -> None:
    print(
        f"\n## (a) standard vs evolutional dropout: lenet5 + dropout {args.rate} on digits, "
        f"{args.epochs} epochs, seeds {args.seeds}"
    )
    curves: dict[str, list[list[float]]] = {}
    tests: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    for kind in ("bernoulli", "evolutional"):
        curves[kind], tests[kind], seconds[kind] = [], [], 0.0
        for seed in args.seeds:
            data = ph.load_dataset("digits", seed=seed)
            model = ph.compile_genome(with_dropout(kind, args.rate, data), seed=seed)
            spec = ph.TrainSpec(epochs=args.epochs, seed=seed, device=args.device)
            start = time.perf_counter()
            result = ph.train(model, data, spec)
            seconds[kind] += time.perf_counter() - start
            curves[kind].append([h.val_accuracy for h in result.history])
            tests[kind].append(ph.evaluate(model, data.x_test, data.y_test))
    print("| epoch | standard (val, mean) | evolutional (val, mean) |")
    print("|---|---|---|")
    for e in range(args.epochs):
        row = [mean([c[e] for c in curves[k]]) for k in ("bernoulli", "evolutional")]
        print(f"| {e + 1} | {row[0]:.2%} | {row[1]:.2%} |")
    print(
        "\n| dropout | first epoch at val >= target (per seed) | final test (per seed) | mean test "
        "| training time |"
    )
    print("|---|---|---|---|---|")
    for kind in ("bernoulli", "evolutional"):
        reach = [
            next((i + 1 for i, a in enumerate(c) if a >= args.target), None) for c in curves[kind]
        ]
        print(
            f"| {kind} | {', '.join('-' if r is None else str(r) for r in reach)} "
            f"| {', '.join(f'{t:.2%}' for t in tests[kind])} | {mean(tests[kind]):.2%} "
            f"| {seconds[kind]:.0f} s |"
        )
    print(f"(target: {args.target:.0%} validation accuracy)", flush=True)


def binarize_part(args: argparse.Namespace) -> None:
    print(
        f"\n## (b) pattern binarization: resnet20 on digits, {args.epochs} epochs full precision, "
        f"{args.finetune_epochs} epochs fine-tuning (lr {args.finetune_lr}), seeds {args.seeds}"
    )
    print(
        "| scale | full | binarized | fine-tuned | size full -> binarized | runs (full/bin/tuned) |"
    )
    print("|---|---|---|---|---|---|")
    rows: dict[str, list] = {"filter": [], "offset": []}
    for seed in args.seeds:
        data = ph.load_dataset("digits", seed=seed)
        genome = zoo.load("resnet20", data.input_shape, data.num_classes)
        model = ph.compile_genome(genome, seed=seed)
        ph.train(model, data, ph.TrainSpec(epochs=args.epochs, seed=seed, device=args.device))
        for scale in rows:
            tuning = ph.TrainSpec(
                epochs=args.finetune_epochs, lr=args.finetune_lr, seed=seed, device=args.device
            )
            report = ph.binarize_and_finetune(
                copy.deepcopy(model), data, tuning, scale=scale, offset=args.offset
            )
            rows[scale].append(report)
    for scale, reports in rows.items():
        acc = {
            stage: [r.stage(stage).test_accuracy for r in reports]
            for stage in ("full", "binarized", "finetuned")
        }
        sizes = reports[0].stage("full").size_bytes, reports[0].stage("finetuned").size_bytes
        runs = "; ".join("/".join(f"{acc[s][i]:.1%}" for s in acc) for i in range(len(reports)))
        label = scale if scale == "filter" else f"offset {args.offset}"
        print(
            f"| {label} | {mean(acc['full']):.2%} | {mean(acc['binarized']):.2%} "
            f"| {mean(acc['finetuned']):.2%} | {sizes[0] / 1024:,.1f} KiB -> "
            f"{sizes[1] / 1024:,.1f} KiB | {runs} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["dropout", "binarize", "all"], default="all")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rate", type=float, default=0.5, help="dropout rate, part (a)")
    parser.add_argument("--target", type=float, default=0.97, help="accuracy to reach, part (a)")
    parser.add_argument("--finetune-epochs", type=int, default=15)
    parser.add_argument("--finetune-lr", type=float, default=0.01)
    parser.add_argument("--offset", type=float, default=0.06)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the same code at a tiny size, in seconds: checks that the script runs",
    )
    if parser.parse_known_args()[0].smoke:
        parser.set_defaults(**SMOKE)
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, device {ph.resolve_device(args.device)}")
    if args.part in ("dropout", "all"):
        dropout_part(args)
    if args.part in ("binarize", "all"):
        binarize_part(args)


if __name__ == "__main__":
    main()
