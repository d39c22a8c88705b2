import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import genomics as G
from runner.cli import main


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_train_writes_genome_model_and_summary(run, tmp_path):
    out = tmp_path / "out"
    result = run(
        "train", "lenet5", "--dataset", "digits", "--epochs", "2", "--device", "cpu", "--out", out
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "test_accuracy",
        "val_accuracy",
        "params",
        "size_bytes",
        "flops",
        "epochs",
        "seconds",
    ):
        assert key in summary
    assert summary["epochs"] == 2 and summary["params"] > 0
    assert G.loads((out / "genome.json").read_text()).input_shape == (1, 8, 8)
    assert (out / "model.pt").stat().st_size > 0
    assert "test accuracy" in result.output


def test_train_accepts_a_genome_file(run, tmp_path):
    path = tmp_path / "g.json"
    path.write_text(G.dumps(G.minimal((1, 8, 8), 10)))
    result = run("train", path, "--epochs", "1", "--device", "cpu", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output


def test_show_prints_layers_and_code(run):
    result = run("show", "lenet5")
    assert result.exit_code == 0
    assert "fc1" in result.output and "107,808" in result.output
    assert "def forward(self, x):" in result.output


def test_validate_reports_each_problem_and_exits_1(run, tmp_path):
    good = tmp_path / "good.json"
    good.write_text(G.dumps(G.minimal((1, 8, 8), 10)))
    doc = G.to_dict(G.minimal((1, 8, 8), 10))
    doc["nodes"][1]["kernel"] = 4
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert run("validate", good).exit_code == 0
    result = run("validate", good, bad)
    assert result.exit_code == 1
    assert f"{bad}: nodes[1].kernel: must be odd, got 4" in result.output
    assert f"{good}: ok" in result.output


def test_zoo_commands(run):
    listing = run("zoo", "list")
    assert listing.exit_code == 0 and "resnet20" in listing.output
    shown = run("zoo", "show", "lenet5")
    assert G.loads(shown.output) is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "nosuchgenome"], "nosuchgenome: no such genome file"),
        (
            ["train", "lenet5", "--dataset", "cifar10", "--data-dir", "/nonexistent"],
            "cifar10: not found",
        ),
        (["show", "lenet5x"], "no zoo genome of that name"),
        (["zoo", "show", "vgg"], "no genome named 'vgg'"),
    ],
)
def test_user_errors_are_one_line_without_traceback(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert "Traceback" not in result.output


def test_bad_genome_file_names_file_and_place(tmp_path):
    doc = G.to_dict(G.minimal((1, 8, 8), 10))
    doc["nodes"][2]["mode"] = "median"
    path = tmp_path / "g.json"
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["train", str(path)])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"error: {path}: nodes[2].mode: must be one of max, avg, got 'median'"
    )


def test_debug_shows_the_traceback():
    result = CliRunner().invoke(main, ["--debug", "show", "nothing"])
    assert result.exit_code == 1 and isinstance(result.exception, G.GenomeError)


def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom runner.cli import main\n"
        "assert CliRunner().invoke(main, ['--help']).exit_code == 0\n"
        "for command in ('report', 'export', 'show', 'evolve'):\n"
        "    assert CliRunner().invoke(main, [command, '--help']).exit_code == 0\n"
        "heavy = {'torch', 'matplotlib', 'networkx', 'onnx', 'onnxruntime'} & set(sys.modules)\n"
        "assert not heavy, f'imported: {heavy}'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_console_script_trains_lenet_to_97_percent(tmp_path):
    out = tmp_path / "demo"
    ecogen = [sys.executable, "-m", "runner.cli"]
    subprocess.run([*ecogen, "train", "lenet5", "--device", "cpu", "--out", str(out)], check=True)
    assert json.loads((out / "summary.json").read_text())["test_accuracy"] >= 0.97


TINY_RUN = [
    "--dataset", "digits", "--population", "2", "--generations", "0", "--epochs", "1",
    "--final-epochs", "0", "--init", "minimal",
]  # fmt: skip


def _one_line_error(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert "Traceback" not in result.output


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="needs a machine without a CUDA GPU"
)
def test_a_missing_gpu_fails_before_the_run_directory_is_written(tmp_path):
    run_dir = tmp_path / "run"
    args = ["evolve", *TINY_RUN, "--run-dir", str(run_dir)]
    failed = CliRunner().invoke(main, [*args, "--device", "cuda"])
    _one_line_error(failed, "device cuda: no CUDA GPU is available (use --device cpu or auto)")
    assert not run_dir.exists()
    # The hint works on the same directory.
    again = CliRunner().invoke(main, [*args, "--device", "cpu"])
    assert again.exit_code == 0, again.output
    assert (run_dir / "summary.json").is_file()


@pytest.mark.parametrize("where", ["flag", "environment"])
def test_an_unreachable_ray_cluster_fails_before_the_run_directory_is_written(tmp_path, where):
    pytest.importorskip("ray")
    run_dir = tmp_path / "run"
    args = [*TINY_RUN, "--device", "cpu", "--executor", "ray", "--run-dir", str(run_dir)]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    if where == "flag":
        args += ["--ray-address", "127.0.0.1:1"]
        source = "--ray-address 127.0.0.1:1"
    else:
        env["RAY_ADDRESS"] = "127.0.0.1:1"
        source = "RAY_ADDRESS 127.0.0.1:1"
    # A subprocess: Ray, once connected, would stay in this one; and ray.init retries an
    # address that does not answer for minutes, which the timeout turns into a failure.
    proc = subprocess.run(
        [sys.executable, "-m", "runner.cli", "evolve", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {source}: no Ray cluster answers"), (
        proc.stderr
    )
    assert not run_dir.exists()


def test_evolve_checks_the_experiment_and_the_machine_once(tmp_path, monkeypatch):
    # Each check is counted and still runs in full: a second pass loaded the plugins and built
    # the strategies again, and with --executor ray connected to the cluster twice.
    from runner import session
    from runner.config import Experiment

    calls = []

    def counted(name, real):
        def check(*args, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)

        return check

    monkeypatch.setattr(Experiment, "check", counted("experiment", Experiment.check))
    monkeypatch.setattr(session, "check_machine", counted("machine", session.check_machine))
    args = ["evolve", *TINY_RUN, "--device", "cpu", "--run-dir", str(tmp_path / "run")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert calls == ["experiment", "machine"]
