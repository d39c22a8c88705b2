"""`ecogen export`: every kind of network ecogen makes exports to ONNX and .pt2 with a dynamic
batch dimension, and computes what the PyTorch model computes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

import genomics as G
import phenotypes as ph
import zoo
from genomics.testing import genomes
from runner import export
from runner.cli import main

FORMATS = ("onnx", "pt2")
#: Zoo genomes whose exports take longer than a few seconds (224x224 inputs, SEP-Nets).
LARGE = {n for n in zoo.names() if zoo.params(n) > 300_000 or zoo.load(n).input_shape[1] > 64}

# Every gene kind and every join resampling in a few nodes: a pattern-binarized convolution
# scaled by a constant (trained so, schema 2), an `add` whose second input is averaged from 7x7
# down to 4x4 (not a whole multiple) and zero-padded to more channels, an `add` whose second
# input is interpolated up and truncated to fewer channels, a `concat` whose second input is
# interpolated up, evolutional dropout, global pooling.
EVERY_KIND = {
    "schema_version": 2, "input_shape": [1, 7, 7], "num_classes": 5, "nodes": [
        {"id": "input", "type": "input"},
        {"id": "c1", "type": "conv", "inputs": ["input"], "out_channels": 4, "kernel": 3},
        {"id": "p1", "type": "pool", "inputs": ["c1"], "mode": "max", "ceil_mode": True},
        {"id": "c2", "type": "conv", "inputs": ["p1"], "out_channels": 6, "kernel": 3,
         "binarized": True, "binary_scale": "offset", "binary_offset": 0.1},
        {"id": "j1", "type": "add", "inputs": ["c2", "c1"], "activation": "relu"},
        {"id": "j3", "type": "add", "inputs": ["c1", "c2"]},
        {"id": "j2", "type": "concat", "inputs": ["c1", "j1", "j3"]},
        {"id": "d", "type": "dropout", "inputs": ["j2"], "kind": "evolutional"},
        {"id": "g", "type": "pool", "inputs": ["d"], "mode": "avg", "global_pool": True},
        {"id": "fc", "type": "dense", "inputs": ["g"], "units": 5, "activation": "none"},
        {"id": "output", "type": "output", "inputs": ["fc"]},
    ],
}  # fmt: skip


def calibrated(genome: G.Genome, seed: int = 0) -> torch.nn.Module:
    """The compiled network with batch-norm statistics of a few random batches (as training
    leaves them), so that its outputs have the sizes a trained network's have, not the tiny
    or huge ones of untouched statistics."""
    model = ph.compile_genome(genome, seed=seed)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches
    generator = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, *genome.input_shape, generator=generator))
    return model.eval()


def saved(tmp_path: Path, genome: G.Genome, model: torch.nn.Module) -> Path:
    path = tmp_path / "model.pt"
    ph.save_model(path, genome, model)
    return path


def check_export(tmp_path: Path, genome: G.Genome, model: torch.nn.Module, fmt: str) -> None:
    """Export through a model file, as `ecogen export MODEL.pt` does, and check the result
    here too: on yet another batch size, against the model in evaluation mode."""
    result = export.export_file(saved(tmp_path, genome, model), fmt)
    assert result.path == tmp_path / f"model.{fmt}" and result.path.is_file()
    assert result.max_abs_diff <= export.TOLERANCE
    assert set(result.check_batches) == {1, 5} and export.EXPORT_BATCH not in (1, 5)
    x = torch.randn(7, *genome.input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model.eval()(x).numpy()
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].shape[0] == "batch"
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    else:
        with torch.no_grad():
            got = torch.export.load(result.path).module()(x).numpy()
    assert got.shape == (7, genome.num_classes)
    assert np.abs(got - want).max() <= export.TOLERANCE


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_kind_of_gene_and_join_exports(tmp_path, fmt):
    genome = G.loads(json.dumps(EVERY_KIND))
    model = calibrated(genome)
    code = model.code
    assert "adaptive_avg_pool2d(c1_relu, (4, 4))" in code and "interpolate" in code
    assert "pad" in code and "narrow" in code and type(model.d).__name__ == "EvolutionalDropout"
    check_export(tmp_path, genome, model, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("scale", ["filter", "offset"])
def test_networks_binarized_after_training_export_with_their_scales(tmp_path, fmt, scale):
    genome = zoo.load("resnet20")
    model = calibrated(genome)
    replaced = ph.binarize_patterns(model, scale)
    assert len(replaced) == 19 and isinstance(
        model.get_submodule(replaced[0]), ph.BinaryPatternConv2d
    )
    with torch.no_grad():  # scales that are not all one value: each filter's own
        for name in replaced:
            alpha = model.get_submodule(name).alpha
            alpha.mul_(torch.linspace(0.5, 1.5, alpha.numel()).reshape(alpha.shape))
    check_export(tmp_path, genome, model, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in LARGE else n for n in zoo.names()],
)
def test_every_zoo_genome_exports(tmp_path, name, fmt):
    genome = zoo.load(name)
    check_export(tmp_path, genome, calibrated(genome), fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=3, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(genome=genomes(binarize=0.5))
def test_generated_genomes_export(tmp_path, fmt, genome):
    check_export(tmp_path, genome, calibrated(genome), fmt)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(genome=genomes(binarize=0.5))
def test_many_generated_genomes_export(tmp_path, fmt, genome):
    check_export(tmp_path, genome, calibrated(genome), fmt)


# --- the command ----------------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run directory as a search leaves it, as far as export reads it: best/model.pt."""
    genome = zoo.load("lenet5", input_shape=(1, 8, 8), num_classes=10)
    (tmp_path / "run" / "best").mkdir(parents=True)
    saved(tmp_path / "run" / "best", genome, calibrated(genome))
    return tmp_path / "run"


def test_export_a_run_directory_to_onnx_and_pt2(run_dir, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(run_dir), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    assert line.startswith(f"wrote {run_dir / 'best' / 'model.onnx'} (onnx, dynamic batch):")
    assert "largest absolute difference" in line and "batches of 5 and 1" in line
    out = tmp_path / "elsewhere" / "net.pt2"
    result = runner.invoke(main, ["export", str(run_dir), "--format", "pt2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {out} (pt2, dynamic batch):")
    assert torch.export.load(out).module()(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    assert sorted(p.name for p in out.parent.iterdir()) == ["net.pt2"]


def test_an_export_that_computes_otherwise_fails_in_one_line_and_writes_nothing(
    run_dir, tmp_path, monkeypatch
):
    real = export._pt2

    def off(*args):
        outputs, runtime = real(*args)
        return [o + 2e-4 for o in outputs], runtime

    monkeypatch.setattr(export, "_pt2", off)
    out = tmp_path / "net.pt2"
    result = CliRunner().invoke(main, ["export", str(run_dir), "-f", "pt2", "-o", str(out)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"error: {out}: the pt2 export computes other outputs than the PyTorch model (largest"
        " absolute difference 2.00e-04 > 0.0001); not written"
    ]
    assert list(tmp_path.glob("*.pt2*")) == [] and list(tmp_path.glob(".*")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere"], "nowhere: no such run directory or model file"),
        (["{tmp}"], "{tmp}: no best/model.pt here (is it a run directory"),
        (["{tmp}/genome.json"], "{tmp}/genome.json: cannot load the model ("),
        (["{run}", "--format", "tflite"], "Invalid value for '--format' / '-f'"),
        (["{run}", "--out", "{tmp}"], "File '{tmp}' is a directory"),
    ],
)
def test_bad_sources_fail_in_one_line(run_dir, tmp_path, args, message):
    (tmp_path / "genome.json").write_text(G.dumps(zoo.load("lenet5")))
    args = [a.format(tmp=tmp_path, run=run_dir) for a in args]
    result = CliRunner().invoke(main, ["export", *args])
    assert result.exit_code in (1, 2)
    lines = [line for line in result.output.splitlines() if line.lower().startswith("error")]
    assert len(lines) == 1 and message.format(tmp=tmp_path) in lines[0], result.output
    assert "Traceback" not in result.output


def test_without_the_export_extra_onnx_says_what_to_install_and_pt2_works(run_dir):
    code = "import sys\nsys.modules['onnx'] = None\nfrom runner.cli import main\nmain(sys.argv[1:])"

    def ecogen(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code, "export", str(run_dir), *args],
            capture_output=True,
            text=True,
            check=False,
        )

    done = ecogen("--format", "onnx")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: ecogen export needs onnx, onnxscript, onnxruntime (onnx, onnxscript not installed):"
        " pip install 'ecogen[export]'"
    ]
    done = ecogen("--format", "pt2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wrote ")
