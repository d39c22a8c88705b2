import math

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
