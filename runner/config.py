"""The experiment configuration: one TOML file, flags on top, written back resolved.

Top-level keys are the ``ecogen evolve`` flags (with ``_`` for ``-``); ``[mutation]`` holds
:class:`operators.MutationConfig` fields and ``[weights]`` per-operator draw weights. A limit of
0 means none.
"""

from __future__ import annotations

import difflib
import math
import sys
from pathlib import Path
from typing import Any

import attrs
import cattrs
import tomli_w
from attrs import field, frozen

from genomics import validators

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(Exception):
    """A configuration value is wrong; the message names the key."""


class RunError(Exception):
    """A run cannot start or resume; the message says why and what to do."""


_CHECKS = {"error": ConfigError}
_positive = validators.at_least(1, **_CHECKS)
_not_negative = validators.at_least(0, note=" (0: no limit)", **_CHECKS)
# "No limit" is 0: an infinite limit would overflow where the engine uses it.
_finite_limit = validators.at_least(0, kind=float, note=" (0: no limit)", **_CHECKS)
_per_child = validators.pair(**_CHECKS)
EXECUTORS = ("auto", "serial", "local", "ray")
#: Values of ``augment`` (phenotypes.training.AUGMENT_CHOICES, without importing torch here).
AUGMENTS = ("auto", "none", "crop-flip", "translate")


def _device_list(value: Any) -> tuple[str, ...]:
    """Devices from a list, or from ``cuda:0,cuda:1`` (a flag's text)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(value)


def _gpus(inst: Any, attribute: attrs.Attribute, value: tuple) -> None:
    for device in value:
        kind, _, index = device.partition(":")
        if kind != "cuda" or (index and not index.isdigit()):
            raise ConfigError(f"devices: each must be cuda or cuda:N, got {device!r}")


#: Seeds the data split's generators take (scikit-learn's and NumPy's are 32-bit).
MAX_SEED = 2**32 - 1


def _seed(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    number = isinstance(value, int) and not isinstance(value, bool)
    if not number or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"seed: must be an integer in [0, {MAX_SEED}], got {value!r}")


def _unknown_key(key: str, known: list[str], table: str = "") -> ConfigError:
    """The error for an unknown key: the closest known one, as click suggests an option."""
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        hint = f"; did you mean {close[0]!r}?"
    elif table:
        hint = f" (known: {', '.join(sorted(known))})"
    else:
        hint = " (a run's experiment.toml lists every key)"
    return ConfigError(f"{table}{key}: unknown key{hint}")


def _init_check(inst: Any, attribute: attrs.Attribute, value: str) -> None:
    if value in ("minimal", "random", "mixed") or value.startswith("zoo:"):
        return
    raise ConfigError(f"init: must be minimal, random, mixed or zoo:NAME[,NAME...], got {value!r}")


def _rate(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 <= value <= 1:
        raise ConfigError(f"{attribute.name}: must be a number in [0, 1], got {value!r}")


def _share(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 < value <= 1:
        raise ConfigError(f"{attribute.name}: must be a number in (0, 1], got {value!r}")


def _names(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _listed(inst: Any, attribute: attrs.Attribute, value: tuple) -> None:
    if not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"strategy: must name at least one strategy, got {list(value)!r}")


@frozen
class Experiment:
    """Everything a run needs to be repeated. Field docs double as ``experiment.toml`` notes."""

    dataset: str = "digits"
    data_dir: str = "data"
    run_dir: str = ""
    seed: int = field(default=0, validator=_seed)
    device: str = field(
        default="auto", validator=validators.one_of(("auto", "cpu", "cuda"), **_CHECKS)
    )
    #: Where candidates train: serial (one after another, in this process), local (worker
    #: processes), ray (Ray tasks) or auto (serial for one worker, local for more). Results do
    #: not depend on it.
    executor: str = field(default="auto", validator=validators.one_of(EXECUTORS, **_CHECKS))
    #: Candidates trained at once on the CPU (local: worker processes sharing the cores; ray:
    #: tasks in flight). On GPUs: len(devices) * per_device.
    workers: int = field(default=1, validator=_positive)
    #: GPUs the workers use (cuda:0, cuda:1, ...); empty: every visible GPU.
    devices: tuple[str, ...] = field(factory=tuple, converter=_device_list, validator=_gpus)
    #: Candidates trained at once on each GPU.
    per_device: int = field(default=1, validator=_positive)
    #: Ray cluster address (auto, ray://HOST:PORT); empty: a local Ray started for the run.
    ray_address: str = ""
    #: Individuals kept each generation.
    population: int = field(default=12, validator=_positive)
    #: Children made each generation (0: as many as the population).
    offspring: int = field(default=0, validator=_not_negative)
    generations: int = field(default=10, validator=_not_negative)
    #: Seconds of search (0: no limit); the final training of the best is not counted.
    time_budget: float = field(default=0.0, converter=float, validator=_finite_limit)
    max_evaluations: int = field(default=0, validator=_not_negative)
    #: Seconds one candidate's evaluation may take before it fails as timed out (0: no limit).
    evaluation_timeout: float = field(default=0.0, converter=float, validator=_finite_limit)
    #: Failed evaluations in a row that stop the run (0: never stop for failures).
    max_failures: int = field(default=10, validator=_not_negative)
    #: Weights kept in RUN_DIR/weights/: the best's and those of the last N trained candidates.
    keep_weights: int = field(default=3, validator=_not_negative)
    #: Where the first population comes from: minimal, random, zoo:NAME[,NAME...] or mixed
    #: (zoo genomes scaled to the limits, at most half the population, then random ones).
    init: str = field(default="random", validator=_init_check)
    mutations_per_child: tuple[int, int] = field(
        default=(1, 2), converter=tuple, validator=_per_child
    )
    #: Training epochs of each candidate during the search.
    epochs: int = field(default=8, validator=_positive)
    #: Training epochs the whole search may spend (0: no limit): equal compute for comparisons.
    max_epochs: int = field(default=0, validator=_not_negative)
    #: Epochs of the final training of the best genome (0: keep its search weights).
    final_epochs: int = field(default=30, validator=_not_negative)
    batch_size: int = field(default=64, validator=_positive)
    lr: float = field(
        default=0.05, converter=float, validator=validators.above(0, kind=float, **_CHECKS)
    )
    schedule: str = field(
        default="onecycle", validator=validators.one_of(("onecycle", "cosine"), **_CHECKS)
    )
    #: SGD weight decay, on weight matrices and kernels (and see decay_norm_and_bias).
    weight_decay: float = field(
        default=5e-4, converter=float, validator=validators.at_least(0, kind=float, **_CHECKS)
    )
    #: Label smoothing of the training loss, in [0, 1].
    label_smoothing: float = field(default=0.1, converter=float, validator=_rate)
    #: Weight decay on batch-norm weights and biases and layer biases too (false: on neither).
    decay_norm_and_bias: bool = field(
        default=True, validator=validators.instance_of(bool, "true or false", **_CHECKS)
    )
    #: Training augmentation: crop-flip (random crop and horizontal flip), translate (small
    #: shifts, no flip), none, or auto: crop-flip for CIFAR, translate for MNIST and
    #: Fashion-MNIST, none for the 8x8 digits and where the kind of images is unknown (.npz,
    #: image folders, fake).
    augment: str = field(default="auto", validator=validators.one_of(AUGMENTS, **_CHECKS))
    #: Largest parameter count a genome may have (0: no limit).
    max_params: int = field(default=0, validator=_not_negative)
    #: Most FLOPs per image a genome may cost (0: no limit); held like max_params.
    max_flops: int = field(default=0, validator=_not_negative)
    #: Slowest inference a genome may have, in milliseconds per image on the run's device
    #: (median of repeats after warm-up; 0: no limit). A candidate over it is never trained.
    max_latency_ms: float = field(default=0.0, converter=float, validator=_finite_limit)
    #: FLOPs per input pixel (H x W) a random first genome may cost (0: no budget): the first
    #: population costs alike whatever the image size. Only for random genomes (init = "random",
    #: and those of "mixed").
    init_flops_per_pixel: float = field(default=10_000.0, converter=float, validator=_finite_limit)
    #: Children start from their first parent's trained weights, the layers a mutation added
    #: set to pass their input through where they can (docs/inheritance.md).
    inherit: bool = field(
        default=False, validator=validators.instance_of(bool, "true or false", **_CHECKS)
    )
    #: Epochs of a child that inherits weights (0: a quarter of a candidate's epochs, rounded up).
    inherit_epochs: int = field(default=0, validator=_not_negative)
    #: The final training of the best: from scratch, or on from its search weights.
    final_from: str = field(
        default="scratch", validator=validators.one_of(("scratch", "weights"), **_CHECKS)
    )
    #: Probability that a child is made by crossing two parents (then mutated, as every child
    #: is); 0: by mutation alone.
    crossover_rate: float = field(default=0.0, converter=float, validator=_rate)
    #: A zero-cost proxy (synflow, snip, grad_norm, jacob_cov, naswot or a plugin's; see
    #: `ecogen plugins`) that screens each generation's children before any is trained; empty:
    #: no screening (docs/proxies.md).
    screen: str = ""
    #: With screen: the share of the candidates made that is trained (children / screen_keep
    #: are made, the children that score best are kept).
    screen_keep: float = field(default=0.5, converter=float, validator=_share)
    #: Strategies and presets (tournament, ag-evolution, eigen, nsga2), in the order consulted.
    strategy: tuple[str, ...] = field(default=("tournament",), converter=_names, validator=_listed)
    #: Options per strategy: ``[strategies.extinction] threshold = "quantile"``.
    strategies: dict[str, dict[str, Any]] = field(factory=dict)
    mutation: dict[str, Any] = field(factory=dict)
    weights: dict[str, float] = field(factory=dict)
    #: Draw weights of the crossovers (each registered one's own weight by default).
    crossover_weights: dict[str, float] = field(factory=dict)

    def mutation_config(self) -> Any:
        """The :class:`operators.MutationConfig` this experiment describes."""
        import operators
        from genomics import Bounds

        known = {a.name for a in attrs.fields(operators.MutationConfig)} - {"bounds"}
        unknown = sorted(set(self.mutation) - known)
        if unknown:
            raise _unknown_key(unknown[0], sorted(known), "mutation.")
        bounds = Bounds(max_params=self.max_params or None, max_flops=self.max_flops or None)
        try:
            return operators.MutationConfig(bounds=bounds, **self.mutation)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"mutation.{exc}") from None

    def check_weights(self, names: list[str]) -> None:
        for name, weight in self.weights.items():
            if name not in names:
                raise ConfigError(f"weights.{name}: no such operator (see `ecogen plugins`)")
            _check_weight(name, weight)

    def check_crossover_weights(self) -> None:
        """ConfigError for a weight of no registered crossover; PluginError (its reason) for
        one of a refused plugin."""
        import operators

        known = operators.crossover_names()
        refused = operators.refused_crossovers()
        for name, weight in self.crossover_weights.items():
            if name not in known:
                if name in refused:
                    raise operators.PluginError(refused[name])
                raise ConfigError(
                    f"crossover_weights.{name}: no such crossover (see `ecogen plugins`)"
                )
            _check_weight(name, weight, "crossover_weights")

    def zoo_names(self) -> list[str]:
        """The zoo genomes ``init`` names (none unless it is ``zoo:...``)."""
        if not self.init.startswith("zoo:"):
            return []
        import zoo

        names = [n for n in self.init.removeprefix("zoo:").split(",") if n]
        unknown = [n for n in names if n not in zoo.names()]
        if unknown or not names:
            raise ConfigError(f"init: no zoo genome {unknown} (zoo: {', '.join(zoo.names())})")
        return names

    def strategy_objects(self) -> list[Any]:
        """The strategies this experiment names, built with their options."""
        import strategies

        try:
            return strategies.create(self.strategy, self.strategies)
        except strategies.StrategyError as exc:
            raise ConfigError(str(exc)) from None

    def check(self) -> None:
        """Everything that can be checked before any data is loaded or any file written."""
        if self.executor == "ray":
            from .extras import require

            require("ecogen --executor ray", "ray")
        import operators
        import strategies

        if self.executor == "serial" and self.workers > 1:
            raise ConfigError(
                f"workers: {self.workers} with executor serial, which trains one candidate at a"
                f" time (use --executor local for {self.workers} worker processes, or --workers 1)"
            )
        if 0 < self.max_epochs < self.epochs:
            # The run's first training is never cut (every run gets a best): it would pass it.
            raise ConfigError(
                f"max_epochs: {self.max_epochs} is less than one candidate's training (epochs ="
                f" {self.epochs}); raise max_epochs or lower epochs"
            )
        self.mutation_config()
        self.check_weights(operators.names())
        if self.mutations_per_child[1] > 0 and not any(
            self.weights.get(name, info.weight) > 0 for name, info in operators.registered().items()
        ):
            raise ConfigError(
                "weights: every mutation operator has weight 0, so every child would be a copy"
                " of its parent; give one a weight > 0 (or set mutations_per_child = [0, 0] for"
                " children by crossover alone)"
            )
        self.check_crossover_weights()
        self.zoo_names()
        if self.screen:
            from . import proxies

            try:
                proxies.get(self.screen)
            except KeyError as exc:
                raise ConfigError(f"screen: {exc.args[0]}; see `ecogen plugins`") from None
        try:
            search = strategies.Search(self.strategy_objects(), seed=self.seed)
            search.objectives()
            # The first generation's plan, by strategies of their own: what the experiment's
            # epochs cannot hold (rungs) is refused before anything is written.
            base = strategies.GenerationPlan(
                self.population,
                self.children,
                tuple(self.mutations_per_child),
                self.epochs,
                self.population,
            )
            context = strategies.Context(
                self.seed, 0, "", base, self.generations, self.mutation_config()
            )
            search.plan(base, context)
        except strategies.StrategyError as exc:
            raise ConfigError(str(exc)) from None

    def ignored(self, device: str | None = None) -> list[str]:
        """The settings given that change nothing, one line each saying why: inherit_epochs
        without inherit, and the GPU settings when the run trains on the CPU (``device``, where
        it trains once resolved; by default only a configured ``cpu`` is known)."""
        notes = []
        if self.inherit_epochs and not self.inherit:
            notes.append(
                f"inherit_epochs = {self.inherit_epochs} is ignored: children inherit no weights"
                " without inherit = true (--inherit)"
            )
        if (device or self.device) == "cpu":
            if self.per_device != 1:
                notes.append(
                    f"per_device = {self.per_device} is ignored: the run trains on the CPU"
                    " (workers sets how many candidates train at once there)"
                )
            if self.devices:
                notes.append(
                    f"devices = {_show(self.devices)} is ignored: the run trains on the CPU"
                )
        return notes

    @property
    def children(self) -> int:
        return self.offspring or self.population


FIELDS = tuple(a.name for a in attrs.fields(Experiment))
#: Limits ``ecogen resume`` may raise (0 is "none", the highest, except for generations);
#: lowering one is refused.
LIMITS = (
    "generations",
    "time_budget",
    "max_evaluations",
    "max_epochs",
    "max_failures",
    "evaluation_timeout",
)
#: Settings ``ecogen resume`` may change freely: they do not change what the run computes.
ADJUSTABLE = (
    "keep_weights",
    "data_dir",
    "executor",
    "workers",
    "devices",
    "per_device",
    "ray_address",
)


def resume_changes(stored: Experiment, asked: dict[str, Any]) -> dict[str, Any]:
    """The values of ``asked`` that differ from ``stored`` and may change on resume; RunError
    explains any other change, since the continued run could then differ from the same run
    never stopped."""
    changes = {}
    for key, value in asked.items():
        old = getattr(stored, key)
        new = getattr(from_dict({**_converter.unstructure(stored), key: value}), key)
        if new == old:
            continue
        flag = "--" + key.replace("_", "-")
        if key in LIMITS and not _raises(key, old, new):
            raise RunError(
                f"{flag} {_show(new)}: a resumed run may only raise its limits (this run's"
                f" {key} is {_show(old) if old else 'none'}); its first part was decided"
                " under that limit"
            )
        if key not in LIMITS and key not in ADJUSTABLE:
            raise RunError(
                f"{flag}: this run has {key} = {_show(old)}; resuming with {_show(new)} would"
                " make it differ from the same run never stopped. Start a new run instead:"
                f" ecogen evolve --config {Path(stored.run_dir) / 'experiment.toml'}"
                + "".join(f" {flag} {_show(v)}" for v in (new if isinstance(new, tuple) else [new]))
            )
        changes[key] = new
    return changes


def _check_weight(name: str, weight: Any, table: str = "weights") -> None:
    number = isinstance(weight, (int, float)) and not isinstance(weight, bool)
    if not number or not math.isfinite(weight) or weight < 0:
        raise ConfigError(f"{table}.{name}: must be a finite number >= 0, got {weight!r}")


def _raises(key: str, old: float, new: float) -> bool:
    if key == "generations":
        return new > old
    return bool(old) and (not new or new > old)


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


_converter = cattrs.Converter(forbid_extra_keys=True)

#: Settings added since the first release, with the value that does what a run made before
#: them did: a stored configuration that lacks one resumes as it started.
INTRODUCED = {
    "init_flops_per_pixel": 0.0,
    "inherit": False,
    "inherit_epochs": 0,
    "final_from": "scratch",
    "weight_decay": 5e-4,
    "label_smoothing": 0.1,
    "decay_norm_and_bias": True,
}


def introduced(values: dict[str, Any]) -> dict[str, Any]:
    """:data:`INTRODUCED`, and the ``augment`` of a stored configuration ``values`` that lacks
    it: what its dataset was trained with then (crop and flip for CIFAR only)."""
    cifar = values.get("dataset", "digits") in ("cifar10", "cifar100")
    return {**INTRODUCED, "augment": "crop-flip" if cifar else "none"}


def from_dict(values: dict[str, Any]) -> Experiment:
    """An Experiment from TOML-like values; ConfigError names the first bad key."""
    values = dict(values)
    if "tournament_size" in values:  # before strategies, the tournament's size was top-level
        size = values.pop("tournament_size")
        values.setdefault("strategies", {}).setdefault("tournament", {}).setdefault("size", size)
    if isinstance(values.get("strategy"), str):
        values["strategy"] = [values["strategy"]]
    # A flag's (or a file's) "cuda:0,cuda:1": cattrs would make a tuple of its characters.
    if isinstance(values.get("devices"), str):
        values["devices"] = list(_device_list(values["devices"]))
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise _unknown_key(unknown[0], list(FIELDS))
    # cattrs would turn "3" into 3; a config that says "3" where a number belongs is a mistake.
    for a in attrs.fields(attrs.resolve_types(Experiment)):
        if a.name in values and a.type is bool and not isinstance(values[a.name], bool):
            raise ConfigError(f"{a.name}: must be true or false, got {values[a.name]!r}")
        if a.name in values and a.type in (int, float, str):
            want = (int, float) if a.type is float else a.type
            value = values[a.name]
            if not isinstance(value, want) or isinstance(value, bool):
                raise ConfigError(f"{a.name}: must be {a.type.__name__}, got {value!r}")
    # Nor [1.5, 2] where mutation counts belong, nor a weight ("2" and true would become 2.0
    # and 1.0).
    if "mutations_per_child" in values:
        _per_child.check(None, "mutations_per_child", values["mutations_per_child"])
    for table in ("weights", "crossover_weights"):
        if isinstance(values.get(table), dict):
            for name, weight in values[table].items():
                _check_weight(name, weight, table)
    try:
        return _converter.structure(values, Experiment)
    except cattrs.BaseValidationError as exc:
        # cattrs groups the errors; a validator's own ConfigError already names the key.
        for inner in exc.exceptions:
            if isinstance(inner, ConfigError):
                raise inner from None
        raise ConfigError("; ".join(cattrs.transform_error(exc))) from None


def load(path: str | Path) -> dict[str, Any]:
    """The raw values of a TOML file (merged with flags before :func:`from_dict`)."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text (is it a TOML file?)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError(
            f"{path}: nested too deeply to read (arrays or tables in each other)"
        ) from None


def dumps(experiment: Experiment) -> str:
    """The resolved configuration as TOML, loadable by ``ecogen evolve --config``."""
    values = _converter.unstructure(experiment)
    # The run directory is where this file lives; left out, the file runs again as is (into a
    # new directory) instead of colliding with the run it came from.
    values.pop("run_dir")
    return "# ecogen experiment (resolved); run again with: ecogen evolve --config THIS_FILE\n" + (
        tomli_w.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in values.items()})
    )
