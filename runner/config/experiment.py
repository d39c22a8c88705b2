"""The experiment configuration: one TOML file, flags on top, written back resolved.

Top-level keys are the ``ecogen evolve`` flags (with ``_`` for ``-``); ``[mutation]`` holds
:class:`operators.MutationConfig` fields and ``[weights]`` per-operator draw weights. A limit of
0 means none.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import field, frozen

from genomics import validators

from ..errors import ConfigError
from .checks import (
    _CHECKS,
    AUGMENTS,
    EXECUTORS,
    _check_weight,
    _device_list,
    _finite_limit,
    _gpus,
    _init_check,
    _listed,
    _names,
    _not_negative,
    _per_child,
    _positive,
    _rate,
    _seed,
    _share,
    _show,
    _unknown_key,
    first_plans,
)


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
    #: Regularized (aging) evolution: a child made whenever a worker frees, the oldest of the
    #: population dying as each is accepted; a generation is `children` children accepted
    #: (docs/asynchronous.md). The same run every time with one worker only.
    asynchronous: bool = False
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
    #: A user evaluation (an ``ecogen.evaluations`` entry point, one registered at run time, or
    #: MODULE:FUNCTION) that gives each candidate its metrics in place of training it; empty:
    #: the built-in training (docs/evaluations.md).
    evaluation: str = ""
    #: Strategies and presets (tournament, ag-evolution, eigen, nsga2), in the order consulted.
    strategy: tuple[str, ...] = field(default=("tournament",), converter=_names, validator=_listed)
    #: Options per strategy: ``[strategies.extinction] threshold = "quantile"``.
    strategies: dict[str, dict[str, Any]] = field(factory=dict)
    mutation: dict[str, Any] = field(factory=dict)
    weights: dict[str, float] = field(factory=dict)
    #: Draw weights of the crossovers (each registered one's own weight by default).
    crossover_weights: dict[str, float] = field(factory=dict)

    def train_spec(self, device: str, **overrides: Any) -> Any:
        """The :class:`phenotypes.TrainSpec` every candidate of this experiment trains with
        (its recipe: epochs, batch size, learning rate and schedule, decay, smoothing,
        augmentation), ``overrides`` replacing fields of it."""
        from phenotypes import TrainSpec

        recipe = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "schedule": self.schedule,
            "weight_decay": self.weight_decay,
            "label_smoothing": self.label_smoothing,
            "decay_norm_and_bias": self.decay_norm_and_bias,
            "augment": self.augment,
            "device": device,
        }
        return TrainSpec(**{**recipe, **overrides})

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
            from ..extras import require

            require("ecogen --executor ray", "ray")
        import operators

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
            from .. import proxies

            try:
                proxies.get(self.screen)
            except KeyError as exc:
                raise ConfigError(f"screen: {exc.args[0]}; see `ecogen plugins`") from None
        if self.evaluation:
            self.check_evaluation()
        plan = first_plans(self)[0]
        if self.asynchronous and (plan.rungs or self.screen):
            # Both decide over a whole generation at once; asynchronous evolution has none.
            what = "strategy rungs" if plan.rungs else f"screen = {self.screen!r}"
            raise ConfigError(
                f"asynchronous: {what} decides over whole generations, which asynchronous"
                " evolution does not have; turn one of them off"
            )

    def check_evaluation(self) -> None:
        """ConfigError when ``evaluation`` names no usable evaluation, or when a setting needs
        the trained network a user evaluation does not make (``inherit``, a strategy that
        distills from the best's network: mimicry)."""
        import pickle

        from .. import evaluations, executors

        try:
            function = evaluations.get(self.evaluation).function
        except KeyError as exc:
            raise ConfigError(f"evaluation: {exc.args[0]}; see `ecogen plugins`") from None
        except evaluations.PluginError as exc:
            raise ConfigError(f"evaluation: {exc}") from None
        chosen = executors.chosen(self.executor, self.workers)
        if chosen == "local":  # (Ray's cloudpickle takes closures too)
            try:  # worker processes get the function as a reference they import
                pickle.dumps(function)
            except Exception as exc:
                raise ConfigError(
                    f"evaluation: {self.evaluation} cannot go to {chosen} worker processes"
                    f" ({type(exc).__name__}: {exc}); make it a module's top-level function,"
                    " or use one worker"
                ) from None
        why = f"a user evaluation (evaluation = {self.evaluation!r}) trains no network"
        if self.inherit:
            raise ConfigError(
                f"inherit: {why}, so children have no weights to inherit; set inherit = false"
            )
        for strategy in self.strategy_objects():
            if hasattr(strategy, "ecogen_training"):
                raise ConfigError(
                    f"strategy: {strategy.name} trains candidates toward the best's network, and"
                    f" {why}; leave {strategy.name} out (the eigen preset holds mimicry)"
                )

    def ignored(self, device: str | None = None) -> list[str]:
        """The settings given that change nothing, one line each saying why: screen_keep
        without screen, inherit_epochs without inherit, and the GPU settings when the run
        trains on the CPU (``device``, where it trains once resolved; by default only a
        configured ``cpu`` is known)."""
        notes = []
        if not self.screen and self.screen_keep != attrs.fields(Experiment).screen_keep.default:
            notes.append(
                f"screen_keep = {self.screen_keep:g} is ignored: no children are screened"
                " without screen (a proxy's name, see `ecogen plugins`)"
            )
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
