"""Input files and settings that parse but mean nothing: each is refused in one line that names
the key and what it must be, before anything runs."""

import pytest
from click.testing import CliRunner

import strategies
from runner import config as cfg
from runner.cli import main

DEEP = 100_000


def validate(*files) -> object:
    return CliRunner().invoke(main, ["validate", *map(str, files)])


def one_line_error(result, expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.output


def test_deeply_nested_files_are_refused_in_one_line(tmp_path):
    genome = tmp_path / "deep.json"
    genome.write_text("[" * DEEP + "]" * DEEP)
    one_line_error(validate(genome), f"{genome}: document: nested too deeply")
    config = tmp_path / "deep.toml"
    config.write_text("population = " + "[" * DEEP + "]" * DEEP + "\n")
    one_line_error(validate(config), f"{config}: nested too deeply to read")
    run = CliRunner().invoke(
        main, ["evolve", "--config", str(config), "--run-dir", str(tmp_path / "r")]
    )
    one_line_error(run, "error: ")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
@pytest.mark.parametrize(
    ("strategy", "option"),
    [("mimicry", "temperature"), ("mimicry", "weight"), ("succession", "min_delta")],
)
def test_float_strategy_options_must_be_finite(strategy, option, value):
    with pytest.raises(strategies.StrategyError) as info:
        strategies.create(["eigen"], {strategy: {option: value}})
    assert str(info.value).startswith(f"strategies.{strategy}.{option}: must be a finite number")


@pytest.mark.parametrize("key", ["time_budget", "evaluation_timeout"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0])
def test_float_limits_must_be_finite(key, value):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict({key: value})
    expected = f"{key}: must be a finite number >= 0 (0: no limit), got {value!r}"
    assert str(info.value) == expected


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0.0])
def test_learning_rate_must_be_finite_and_positive(value):
    with pytest.raises(cfg.ConfigError, match=f"^lr: must be a finite number > 0, got {value}"):
        cfg.from_dict({"lr": value})


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0, True, "2"])
def test_operator_weights_must_be_finite(value):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict({"weights": {"add_skip": value}}).check()
    assert str(info.value) == f"weights.add_skip: must be a finite number >= 0, got {value!r}"


def test_an_infinite_time_budget_fails_in_one_line(tmp_path):
    run = tmp_path / "run"
    flags = CliRunner().invoke(main, ["evolve", "--time-budget", "inf", "--run-dir", str(run)])
    one_line_error(flags, "error: time_budget: must be a finite number >= 0 (0: no limit), got inf")
    config = tmp_path / "exp.toml"
    config.write_text("time_budget = inf\n")
    one_line_error(validate(config), f"{config}: time_budget: must be a finite number >= 0")
    from_file = CliRunner().invoke(main, ["evolve", "--config", str(config), "--run-dir", str(run)])
    one_line_error(from_file, "error: time_budget: must be a finite number >= 0")
    assert not run.exists()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("kernel_sizes = [2, 4]", "mutation.kernel_sizes[0]: must be odd, got 2"),
        ("kernel_sizes = []", "mutation.kernel_sizes: must be a list of at least one value"),
        ("dropout_rates = [0.5, 1.5]", "mutation.dropout_rates: must be [low, high] numbers"),
        ("channel_range = [0, 16]", "mutation.channel_range: must be [low, high] integers"),
        ("dense_units = 64", "mutation.dense_units: must be a list of at least one value, got 64"),
        ("pool_modes = 'max'", "mutation.pool_modes: must be one or more of max, avg, got 'max'"),
    ],
)
def test_mutation_settings_no_genome_satisfies_fail_in_one_line(tmp_path, table, message):
    config = tmp_path / "exp.toml"
    config.write_text(f"[mutation]\n{table}\n")
    one_line_error(validate(config), f"{config}: {message}")
    run = tmp_path / "run"
    started = CliRunner().invoke(main, ["evolve", "--config", str(config), "--run-dir", str(run)])
    one_line_error(started, f"error: {message}")
    assert not run.exists()
