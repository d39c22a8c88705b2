"""Input files and settings that parse but mean nothing: each is refused in one line that names
the key and what it must be, before anything runs."""

import pytest
from click.testing import CliRunner

import strategies
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
