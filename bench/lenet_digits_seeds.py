"""Test accuracy of the LeNet-5-style zoo genome on digits over several seeds.

Each seed changes the weight initialisation, the batch order and the validation split (the test
split is fixed). Prints the minimum and mean, the figures behind `ecogen train`'s defaults.

    python bench/lenet_digits_seeds.py --epochs 30 --seeds 6
"""

from __future__ import annotations

import argparse
import statistics

import phenotypes as ph
import zoo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=6)
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
