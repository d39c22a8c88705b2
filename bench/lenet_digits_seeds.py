"""Test accuracy of the LeNet-5-style zoo genome on digits over several seeds.

Each seed changes the weight initialisation, the batch order and the validation split (the test
split is fixed). Prints the minimum and mean, the figures behind `ecogen train`'s defaults.

    python bench/lenet_digits_seeds.py --epochs 30 --seeds 6
    python bench/lenet_digits_seeds.py --smoke    # seconds: one seed, one epoch
"""

from __future__ import annotations

import argparse
import statistics

import phenotypes as ph
import zoo

#: ``--smoke``: the defaults of a run of seconds through the same code, to check that the script
#: works (its figures mean nothing); options given still win.
SMOKE = {"epochs": 1, "seeds": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the same code at a tiny size, in seconds: checks that the script runs",
    )
    if parser.parse_known_args()[0].smoke:
        parser.set_defaults(**SMOKE)
    args = parser.parse_args()
    accuracies = []
    for seed in range(args.seeds):
        data = ph.load_dataset("digits", seed=seed)
        model = ph.compile_genome(zoo.load("lenet5", data.input_shape, data.num_classes), seed=seed)
        spec = ph.TrainSpec(epochs=args.epochs, batch_size=args.batch_size, seed=seed, device="cpu")
        ph.train(model, data, spec)
        accuracies.append(ph.evaluate(model, data.x_test, data.y_test))
    print(
        f"lenet5 on digits, {args.epochs} epochs, batch {args.batch_size}, seeds 0-{args.seeds - 1}"
    )
    print(f"  test accuracy: min {min(accuracies):.2%}  mean {statistics.mean(accuracies):.2%}")


if __name__ == "__main__":
    main()
