import math

import attrs
import numpy as np
import pytest
import torch

import genomics as G
import phenotypes as ph
import zoo


@pytest.fixture(scope="module")
def digits():
    return ph.load_dataset("digits")


def lenet(data):
    return ph.compile_genome(zoo.load("lenet5", data.input_shape, data.num_classes), seed=0)


def test_training_on_cpu_is_deterministic(digits):
    spec = ph.TrainSpec(epochs=2, batch_size=64, seed=5, device="cpu")
    a = ph.train(lenet(digits), digits, spec)
    b = ph.train(lenet(digits), digits, spec)
    assert [(h.train_loss, h.val_accuracy) for h in a.history] == [
        (h.train_loss, h.val_accuracy) for h in b.history
    ]
    assert a.status == "completed" and a.epochs == 2


def test_training_learns(digits):
    model = lenet(digits)
    result = ph.train(model, digits, ph.TrainSpec(epochs=6, batch_size=64, device="cpu"))
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.val_accuracy > 0.9
    assert ph.evaluate(model, digits.x_test, digits.y_test) > 0.9


def test_a_callback_can_stop_training(digits):
    seen = []

    def on_epoch(m):
        seen.append(m.val_accuracy)
        if m.epoch == 2:
            raise ph.StopTraining("extinct at epoch 2")

    result = ph.train(lenet(digits), digits, ph.TrainSpec(epochs=5, device="cpu"), on_epoch)
    assert result.status == "stopped" and result.reason == "extinct at epoch 2"
    assert result.epochs == 2 and len(seen) == 2


def test_divergence_is_reported_not_raised(digits):
    spec = ph.TrainSpec(epochs=3, lr=1e12, momentum=0.0, label_smoothing=0.0, device="cpu")
    result = ph.train(lenet(digits), digits, spec)
    assert result.status == "diverged"
    assert "loss became" in result.reason


@pytest.mark.parametrize("total_steps", [1, 2, 3, 4, 5, 8])
def test_one_cycle_trains_whatever_the_number_of_steps(digits, total_steps):
    """torch's OneCycleLR divides by zero when its warm-up is exactly one step (0.25 of 4):
    every candidate of a small dataset failed."""
    steps = 4 if total_steps == 8 else total_steps
    spec = ph.TrainSpec(
        epochs=total_steps // steps, batch_size=len(digits.y_train) // steps, device="cpu"
    )
    result = ph.train(lenet(digits), digits, spec)
    assert result.status == "completed" and result.epochs == total_steps // steps


def test_cosine_schedule_anneals_to_zero(digits):
    result = ph.train(
        lenet(digits), digits, ph.TrainSpec(epochs=2, schedule="cosine", device="cpu")
    )
    assert result.history[0].lr > result.history[-1].lr
    assert math.isclose(result.history[-1].lr, 0.0, abs_tol=1e-9)


def test_augmentation_path_runs_on_cifar_shaped_data():
    data = ph.load_dataset("fake:3,32,32,64")
    genome = zoo.load("minimal", data.input_shape, data.num_classes)
    result = ph.train(
        ph.compile_genome(genome),
        data,
        ph.TrainSpec(epochs=1, batch_size=16, augment=True, device="cpu"),
    )
    assert result.status == "completed"


def test_random_crop_flip_translates_each_image():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    g = torch.Generator().manual_seed(0)
    out = ph.random_crop_flip(x, 2, g)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        windows = [padded[i, :, dy : dy + 6, dx : dx + 6] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(2)) for w in windows)


def test_unknown_device_is_refused_clearly():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        ph.resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_with_bf16_and_channels_last():
    data = ph.load_dataset("fake:3,32,32,256")
    model = ph.compile_genome(zoo.load("resnet20"))
    result = ph.train(model, data, ph.TrainSpec(epochs=1, device="cuda"))
    assert result.status == "completed" and result.device.startswith("cuda")


@pytest.mark.slow
def test_lenet_reaches_97_percent_on_digits(digits):
    model = lenet(digits)
    ph.train(model, digits, ph.TrainSpec(epochs=20, batch_size=64, device="cpu"))
    assert ph.evaluate(model, digits.x_test, digits.y_test) >= 0.97


def test_genomes_need_matching_data(digits):
    genome = G.minimal((3, 32, 32), 10)
    with pytest.raises(RuntimeError):
        ph.train(ph.compile_genome(genome), digits, ph.TrainSpec(epochs=1, device="cpu"))


# --- the recipe: weight decay, label smoothing, augmentation ------------------------------------


def small_bn_net(data) -> torch.nn.Module:
    torch.manual_seed(0)
    c = data.input_shape[0]
    return torch.nn.Sequential(
        torch.nn.Conv2d(c, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * data.input_shape[1] * data.input_shape[2], data.num_classes),
    )


def test_weight_decay_is_kept_off_norm_weights_and_biases_unless_asked(digits):
    model = small_bn_net(digits)
    bn, conv, linear = model[1], model[0], model[4]
    groups = ph.training.parameter_groups(model, 5e-4, decay_norm_and_bias=False)
    decayed = {id(p) for g in groups if g["weight_decay"] == 5e-4 for p in g["params"]}
    kept = {id(p) for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert decayed == {id(conv.weight), id(linear.weight)}
    assert kept == {id(bn.weight), id(bn.bias), id(conv.bias), id(linear.bias)}
    (single,) = ph.training.parameter_groups(model, 5e-4, decay_norm_and_bias=True)
    assert single["weight_decay"] == 5e-4 and len(single["params"]) == 6

    # Trained under a strong decay, the batch-norm scales shrink only when they are decayed.
    def bn_scale(decay_norm_and_bias: bool) -> float:
        net = small_bn_net(digits)
        spec = ph.TrainSpec(
            epochs=3, weight_decay=0.05, decay_norm_and_bias=decay_norm_and_bias, device="cpu"
        )
        assert ph.train(net, digits, spec).status == "completed"
        return net[1].weight.abs().mean().item()

    assert bn_scale(True) < 0.9 * bn_scale(False)


def test_label_smoothing_changes_training(digits):
    def losses(smoothing: float) -> list[float]:
        spec = ph.TrainSpec(epochs=2, label_smoothing=smoothing, device="cpu")
        return [h.train_loss for h in ph.train(lenet(digits), digits, spec).history]

    # Smoothed targets cannot be fitted to zero loss: the loss stays higher.
    assert losses(0.3)[-1] > losses(0.0)[-1]


def test_translate_shifts_and_never_flips():
    # Every pixel of every image distinct, so a shifted window and a mirrored one never agree.
    x = torch.arange(64 * 2 * 7 * 7, dtype=torch.float32).reshape(64, 2, 7, 7) + 1
    out = ph.random_translate(x, 2, torch.Generator().manual_seed(0))
    again = ph.random_translate(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.equal(out, again)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    shifts = set()
    for i in range(len(x)):
        found = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(out[i], padded[i, :, dy : dy + 7, dx : dx + 7])
        ]
        assert len(found) == 1, f"image {i} is no shifted copy of its input"
        shifts.add(found[0])
    assert len(shifts) > 10  # shifts differ per image
    # The same check does catch a flip: crop-flip mirrors about half of the images.
    flipped = ph.random_crop_flip(x, 2, torch.Generator().manual_seed(0))
    mirrored = sum(
        not any(
            torch.equal(flipped[i], padded[i, :, dy : dy + 7, dx : dx + 7])
            for dy in range(5)
            for dx in range(5)
        )
        for i in range(len(x))
    )
    assert 16 < mirrored < 48


def test_translate_shifts_by_a_fourteenth_of_the_image():
    assert [ph.training.translate_pad(s) for s in [(1, 8, 8), (1, 28, 28), (3, 32, 32)]] == [
        1,
        2,
        2,
    ]


def test_augment_auto_follows_the_dataset(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (64, 8, 8), dtype=np.uint8), "y_train": np.arange(64) % 4,
        "x_test": rng.integers(0, 256, (8, 8, 8), dtype=np.uint8), "y_test": np.arange(8) % 4,
    }  # fmt: skip
    np.savez(tmp_path / "mine.npz", **arrays)
    data = ph.load_dataset(str(tmp_path / "mine.npz"))
    assert data.augment == "none"  # an .npz says nothing of what its images are

    def history(data, augment):
        spec = ph.TrainSpec(epochs=2, batch_size=16, augment=augment, device="cpu")
        net = ph.compile_genome(zoo.load("lenet5", data.input_shape, 4), seed=0)
        return [(h.train_loss, h.val_accuracy) for h in ph.train(net, data, spec).history]

    assert history(data, "auto") == history(data, "none")
    assert history(data, "auto") != history(data, "translate")
    asks = attrs.evolve(data, augment="translate")
    assert history(asks, "auto") == history(data, "translate")
    assert attrs.evolve(data, augment=True).augment == "crop-flip"  # as before kinds


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("augment", "flip", "augment: must be one of auto, none, crop-flip, translate, got 'flip'"),
        ("weight_decay", -1.0, "weight_decay: must be a finite number >= 0, got -1.0"),
        ("label_smoothing", 1.5, "label_smoothing: must be a number in [0, 1], got 1.5"),
    ],
)
def test_bad_recipe_settings_are_refused_in_one_line(field, value, message):
    with pytest.raises(ValueError) as info:
        ph.TrainSpec(**{field: value})
    assert str(info.value) == message
