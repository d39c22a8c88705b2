"""Trainer overhead: ecogen's trainer against a plain PyTorch loop, in one run.

Both train the same network from the same initial weights on the same data with the same batch
size, epochs, optimizer (SGD, Nesterov momentum, weight decay), one-cycle schedule and label
smoothing, and both evaluate the validation split after every epoch. The plain loop is what a
user would write: a TensorDataset, a shuffling DataLoader, ``.item()`` per step for the running
loss. Runs alternate and the median of each is compared.

    python bench/trainer_overhead.py                      # CPU, LeNet-5 on digits
    python bench/trainer_overhead.py --throughput         # GPU: images/s, bf16 x channels_last
    python bench/trainer_overhead.py --smoke              # seconds: both modes at a tiny size
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import phenotypes as ph
import zoo
from zoo.builders import resnet

#: ``--smoke``: the defaults of a run of seconds through the same code, overhead and throughput
#: both, to check that the script works (its figures mean nothing); options given still win.
SMOKE = {"epochs": 1, "repeats": 1, "batch_size": 16, "images": 48}


def plain_loop(model, data, spec: ph.TrainSpec) -> float:
    """The baseline; returns the final validation accuracy."""
    torch.manual_seed(spec.seed)
    loader = DataLoader(
        TensorDataset(data.x_train, data.y_train),
        batch_size=spec.batch_size,
        shuffle=True,
        drop_last=True,
    )
    opt = torch.optim.SGD(
        model.parameters(),
        lr=spec.lr,
        momentum=spec.momentum,
        nesterov=True,
        weight_decay=spec.weight_decay,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=spec.lr, total_steps=spec.epochs * len(loader), pct_start=spec.warmup_fraction
    )
    accuracy = 0.0
    for _ in range(spec.epochs):
        model.train()
        running = 0.0
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb, label_smoothing=spec.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item()
        model.eval()
        with torch.no_grad():
            accuracy = (model(data.x_val).argmax(1) == data.y_val).float().mean().item()
    return accuracy


def overhead(args) -> None:
    data = ph.load_dataset(args.dataset)
    genome = zoo.load(args.genome, data.input_shape, data.num_classes)
    spec = ph.TrainSpec(epochs=args.epochs, batch_size=args.batch_size, device="cpu")
    times: dict[str, list[float]] = {"ecogen": [], "plain": []}
    accuracy: dict[str, list[float]] = {"ecogen": [], "plain": []}
    for _ in range(args.repeats):
        for name in ("plain", "ecogen"):
            model = ph.compile_genome(genome, seed=0)
            start = time.perf_counter()
            if name == "ecogen":
                acc = ph.train(model, data, spec).val_accuracy
            else:
                acc = plain_loop(model, data, spec)
            times[name].append(time.perf_counter() - start)
            accuracy[name].append(acc)
    ours, theirs = statistics.median(times["ecogen"]), statistics.median(times["plain"])
    print(
        f"{args.genome} on {args.dataset}: {args.epochs} epochs, batch {args.batch_size}, "
        f"{args.repeats} runs each, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    for label, key, seconds in (
        ("plain PyTorch loop", "plain", theirs),
        ("ecogen trainer", "ecogen", ours),
    ):
        accuracy_median = statistics.median(accuracy[key])
        print(f"  {label:<19}: {seconds:7.3f} s  (val accuracy {accuracy_median:.3f})")
    print(f"  time ratio ecogen / plain = {ours / theirs:.3f}  (target <= 1.10)")


def throughput(args) -> None:
    device = ph.resolve_device(args.device)
    data = ph.load_dataset(f"fake:3,32,32,{args.images}")
    genome = resnet(20, widths=(32, 64, 128))  # 1.07M parameters
    print(
        f"ResNet-20 x2 width ({ph.count_params(ph.compile_genome(genome)):,} params), "
        f"CIFAR-shaped fake data, {len(data.y_train)} images, batch {args.batch_size}, {device}"
    )
    for bf16 in (False, True):
        for channels_last in (False, True):
            spec = ph.TrainSpec(
                epochs=args.epochs,
                batch_size=args.batch_size,
                device=str(device),
                bf16=bf16,
                channels_last=channels_last,
                augment=True,
            )
            ph.train(
                ph.compile_genome(genome, seed=0),
                data,
                ph.TrainSpec(
                    epochs=1,
                    batch_size=args.batch_size,
                    device=str(device),
                    bf16=bf16,
                    channels_last=channels_last,
                    augment=True,
                ),
            )  # warm-up
            result = ph.train(ph.compile_genome(genome, seed=0), data, spec)
            images = result.epochs * (len(data.y_train) // args.batch_size) * args.batch_size
            print(
                f"  bf16={bf16!s:5} channels_last={channels_last!s:5}: "
                f"{images / result.seconds:10,.0f} images/s (training incl. per-epoch validation)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genome", default="lenet5")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--throughput", action="store_true", help="images/s on CIFAR-shaped data")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the same code at a tiny size, in seconds: checks that the script runs",
    )
    if parser.parse_known_args()[0].smoke:
        parser.set_defaults(**SMOKE)
    args = parser.parse_args()
    if args.throughput:
        if args.batch_size == 64:
            args.batch_size = 512
        if args.epochs == 20:
            args.epochs = 3
        throughput(args)
    else:
        overhead(args)
        if args.smoke:
            throughput(args)


if __name__ == "__main__":
    main()
