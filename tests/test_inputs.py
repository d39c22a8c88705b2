"""Input files and settings that parse but mean nothing: each is refused in one line that names
the key and what it must be, before anything runs."""

import math
import re
import tempfile
from pathlib import Path

import attrs
import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import operators as ops
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


@pytest.mark.parametrize("value", [[1.5, 2], [True, 2], ["1", 2], [float("inf"), 2], [1, 2, 3]])
def test_mutations_per_child_must_be_written_as_integers(value):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict({"mutations_per_child": value})
    assert str(info.value) == (
        f"mutations_per_child: must be [low, high] integers with 0 <= low <= high, got {value!r}"
    )


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


# Values that parse and mean nothing (or something) wherever they are put.
_NONSENSE = [
    *(float(v) for v in ("inf", "-inf", "nan")),
    -1,
    0,
    -0.5,
    0.5,
    2**63 - 1,
    1e300,
    "",
    True,
    [],
    [0],
    [2, 4],
    [-1, 3],
    [3, 1],
    [1, 3],
    [0.5, 1.5],
    [float("inf")],
    [float("nan"), 1],
    [1.5, 2],
    ["max"],
    [[1]],
    {},
]
_values = (
    st.sampled_from(_NONSENSE) | st.floats() | st.integers(0, 6) | st.integers(0, 6).map(float)
)
_MUTATION = sorted(a.name for a in attrs.fields(ops.MutationConfig) if a.name != "bounds")
_OPTIONS = {
    "aggressive": ["keep", "mutations"],
    "succession": ["primary_population", "primary_mutations", "stagnation", "min_delta"],
    "extinction": ["landmarks", "quantile", "k", "min_samples"],
    "duplication": ["candidates", "max_repeat", "start", "every"],
    "mimicry": ["temperature", "weight", "start"],
}
# The numeric settings (a string setting given a number fails plainly, and often).
_TOP = [
    "population", "offspring", "generations", "time_budget", "max_evaluations",
    "evaluation_timeout", "max_failures", "keep_weights", "mutations_per_child", "epochs",
    "max_epochs", "final_epochs", "batch_size", "lr", "max_params",
]  # fmt: skip


@st.composite
def experiment_files(draw) -> dict:
    """An eigen experiment whose numeric settings, top-level and in its tables, take values from
    above."""
    doc = {"dataset": "digits", "strategy": "eigen"}
    doc.update(draw(st.dictionaries(st.sampled_from(_TOP), _values, max_size=3)))
    mutation = draw(st.dictionaries(st.sampled_from(_MUTATION), _values, max_size=2))
    weights = draw(st.dictionaries(st.sampled_from(ops.names()), _values, max_size=2))
    options = {}
    for name in draw(st.lists(st.sampled_from(sorted(_OPTIONS)), max_size=2, unique=True)):
        options[name] = draw(st.dictionaries(st.sampled_from(_OPTIONS[name]), _values, max_size=2))
    for key, table in (("mutation", mutation), ("weights", weights), ("strategies", options)):
        if table:
            doc[key] = table
    return doc


@settings(max_examples=300)
@given(experiment_files())
def test_experiments_that_mean_nothing_fail_validation_in_one_line(doc):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "exp.toml"
        path.write_text(tomli_w.dumps(doc))
        result = validate(path)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output, result.output
        lines = result.output.strip().splitlines()
        if result.exit_code == 1:
            assert len(lines) == 1 and lines[0].startswith(f"{path}: "), result.output
            return
        assert result.exit_code == 0 and lines == [f"{path}: ok"], result.output
        experiment = cfg.from_dict(cfg.load(path))
    # What validation lets through is something a run can use.
    for a in attrs.fields(cfg.Experiment):
        if a.type in (float, "float"):
            assert math.isfinite(getattr(experiment, a.name)), a.name
    # As written, not as converted: [1.5, 2] is no range of mutation counts.
    low, high = doc.get("mutations_per_child", experiment.mutations_per_child)
    assert type(low) is int and type(high) is int and 0 <= low <= high
    config = experiment.mutation_config()
    assert all(
        k % 2 == 1 for k in (*config.kernel_sizes, config.new_conv_kernel, config.sep_kernel)
    )
    assert all(math.isfinite(w) and w >= 0 for w in experiment.weights.values())


# A search small enough to run in seconds, for the settings that are only noticed when a run
# starts (and, before they were checked, ran a whole default search).
TINY = [
    "--dataset", "digits", "--population", "2", "--generations", "0", "--epochs", "1",
    "--final-epochs", "0", "--init", "minimal", "--device", "cpu",
]  # fmt: skip


def evolve(*args) -> object:
    return CliRunner().invoke(main, ["evolve", *TINY, *map(str, args)])


def warnings_of(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


@pytest.mark.parametrize(
    ("value", "devices"),
    [
        ("cuda:0", ("cuda:0",)),
        ("cuda:0,cuda:1", ("cuda:0", "cuda:1")),
        (" cuda:0 , cuda ", ("cuda:0", "cuda")),
        (["cuda:0", "cuda:1"], ("cuda:0", "cuda:1")),
    ],
)
def test_devices_are_a_list_or_a_comma_separated_string_in_a_file(tmp_path, value, devices):
    config = tmp_path / "exp.toml"
    config.write_text(tomli_w.dumps({"devices": value}))
    result = validate(config)
    assert result.exit_code == 0 and result.output.strip() == f"{config}: ok", result.output
    assert cfg.from_dict(cfg.load(config)).devices == devices


def test_devices_flag_takes_a_comma_separated_list(tmp_path):
    run = tmp_path / "run"
    result = evolve("--devices", "cuda:0,cuda:1", "--run-dir", run)
    assert result.exit_code == 0, result.output
    assert cfg.from_dict(cfg.load(run / "experiment.toml")).devices == ("cuda:0", "cuda:1")
    bad = evolve("--devices", "cuda:0,gpu1", "--run-dir", tmp_path / "bad")
    one_line_error(bad, "error: devices: each must be cuda or cuda:N, got 'gpu1'")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("seed", [-1, 2**32, 5_000_000_000])
def test_seeds_outside_32_bits_are_refused(tmp_path, seed):
    message = f"seed: must be an integer in [0, 4294967295], got {seed}"
    with pytest.raises(cfg.ConfigError, match=f"^{re.escape(message)}$"):
        cfg.from_dict({"seed": seed})
    run = tmp_path / "run"
    one_line_error(evolve("--seed", seed, "--run-dir", run), f"error: {message}")
    assert not run.exists()


@pytest.mark.parametrize("seed", [0, 2**32 - 1])
def test_seeds_at_the_ends_of_32_bits_are_taken(seed):
    assert cfg.from_dict({"seed": seed}).seed == seed


def test_workers_with_the_serial_executor_are_refused(tmp_path):
    run = tmp_path / "run"
    result = evolve("--executor", "serial", "--workers", "3", "--run-dir", run)
    one_line_error(
        result,
        "error: workers: 3 with executor serial, which trains one candidate at a time"
        " (use --executor local for 3 worker processes, or --workers 1)",
    )
    assert not run.exists()


def test_inherit_epochs_without_inherit_is_said_to_be_ignored(tmp_path):
    config = tmp_path / "exp.toml"
    config.write_text("inherit_epochs = 2\n")
    note = (
        "inherit_epochs = 2 is ignored: children inherit no weights without inherit = true"
        " (--inherit)"
    )
    checked = validate(config)
    assert checked.exit_code == 0, checked.output
    assert checked.output.strip().splitlines() == [f"{config}: warning: {note}", f"{config}: ok"]
    result = evolve("--inherit-epochs", "2", "--run-dir", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert warnings_of(result) == [f"warning: {note}"]
    assert not warnings_of(evolve("--inherit", "--inherit-epochs", "2", "-o", tmp_path / "i"))


def test_screen_keep_without_screen_is_said_to_be_ignored(tmp_path):
    config = tmp_path / "exp.toml"
    config.write_text("screen_keep = 0.25\n")
    note = (
        "screen_keep = 0.25 is ignored: no children are screened without screen (a proxy's"
        " name, see `ecogen plugins`)"
    )
    checked = validate(config)
    assert checked.exit_code == 0, checked.output
    assert checked.output.strip().splitlines() == [f"{config}: warning: {note}", f"{config}: ok"]
    config.write_text('screen_keep = 0.25\nscreen = "synflow"\n')
    assert validate(config).output.strip().splitlines() == [f"{config}: ok"]


@pytest.mark.parametrize(
    ("flags", "note"),
    [
        (["--per-device", "2"], "per_device = 2 is ignored: the run trains on the CPU"),
        (["--devices", "cuda:0"], "devices = cuda:0 is ignored: the run trains on the CPU"),
    ],
)
def test_gpu_settings_on_the_cpu_are_said_to_be_ignored(tmp_path, flags, note):
    result = evolve(*flags, "--run-dir", tmp_path / "run")
    assert result.exit_code == 0, result.output
    (warning,) = warnings_of(result)
    assert warning.startswith(f"warning: {note}"), result.stderr


def test_mutation_weights_all_zero_are_refused(tmp_path):
    drawn = [name for name, info in ops.registered().items() if info.weight > 0]
    config = tmp_path / "exp.toml"
    config.write_text(tomli_w.dumps({"weights": dict.fromkeys(drawn, 0)}))
    message = "weights: every mutation operator has weight 0, so every child would be a copy"
    one_line_error(validate(config), f"{config}: {message}")
    run = tmp_path / "run"
    one_line_error(
        CliRunner().invoke(main, ["evolve", *TINY, "--config", str(config), "-o", str(run)]),
        f"error: {message}",
    )
    assert not run.exists()
    # Without mutations the weights are never drawn: children come from crossover alone.
    cfg.from_dict(
        {"weights": dict.fromkeys(drawn, 0), "mutations_per_child": [0, 0], "crossover_rate": 1}
    ).check()


@pytest.mark.parametrize("command", ["resume", "report"])
def test_an_sqlite_file_without_the_run_tables_is_not_a_run_store(tmp_path, command):
    import sqlite3

    from runner.store import FILENAME, SCHEMA_VERSION

    run = tmp_path / "run"
    run.mkdir()
    db = sqlite3.connect(run / FILENAME)
    with db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    db.close()
    result = CliRunner().invoke(main, [command, str(run)])
    one_line_error(result, f"error: {run / FILENAME}: not an ecogen run store")
    assert "Traceback" not in result.output and "OperationalError" not in result.output


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("popluation = 3\n", "popluation: unknown key; did you mean 'population'?"),
        ("[mutation]\nkernel_size = [3]\n", "mutation.kernel_size: unknown key; did you mean"),
        ("zzzzzz = 1\n", "zzzzzz: unknown key (a run's experiment.toml lists every key)"),
    ],
)
def test_an_unknown_key_is_named_with_the_closest_known_one(tmp_path, toml, message):
    config = tmp_path / "exp.toml"
    config.write_text(toml)
    result = validate(config)
    one_line_error(result, f"{config}: {message}")
    assert len(result.output.strip()) < len(str(config)) + 100, result.output


@pytest.mark.parametrize(
    ("toml", "flags", "message"),
    [
        ('augment = "flip"\n', ["--augment", "flip"], "augment: must be one of auto, none,"),
        ("weight_decay = -1.0\n", ["--weight-decay", "-1"], "weight_decay: must be a finite"),
        ("weight_decay = nan\n", ["--weight-decay", "nan"], "weight_decay: must be a finite"),
        ("label_smoothing = 1.5\n", ["--label-smoothing", "1.5"], "label_smoothing: must be a"),
        ('decay_norm_and_bias = "no"\n', None, "decay_norm_and_bias: must be true or false"),
    ],
)
def test_bad_training_recipe_settings_are_refused_in_one_line(tmp_path, toml, flags, message):
    config = tmp_path / "exp.toml"
    config.write_text(toml)
    one_line_error(validate(config), f"{config}: {message}")
    if flags:
        run = tmp_path / "run"
        result = CliRunner().invoke(main, ["evolve", *flags, "--run-dir", str(run)])
        if flags[0] == "--augment":  # a choice: click refuses it, naming the choices
            assert result.exit_code == 2 and "'flip' is not one of" in result.output
        else:
            one_line_error(result, f"error: {message}")
        assert not run.exists()


def test_the_recipe_settings_are_the_trainers():
    import phenotypes as ph

    assert cfg.AUGMENTS == ph.training.AUGMENT_CHOICES
    experiment, spec = cfg.Experiment(), ph.TrainSpec()
    for key in ("weight_decay", "label_smoothing", "decay_norm_and_bias", "augment"):
        assert getattr(experiment, key) == getattr(spec, key), key


@pytest.mark.parametrize(("dataset", "augment"), [("digits", "none"), ("cifar10", "crop-flip")])
def test_a_stored_run_without_the_recipe_settings_trains_as_it_did(dataset, augment):
    stored = cfg.from_dict({**cfg.introduced({"dataset": dataset}), "dataset": dataset})
    assert (stored.weight_decay, stored.label_smoothing, stored.decay_norm_and_bias) == (
        5e-4,
        0.1,
        True,
    )
    assert stored.augment == augment  # what the dataset got before augment was a setting
