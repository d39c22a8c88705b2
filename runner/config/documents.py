"""Configuration documents: TOML files read and written, stored configurations loaded (keys
added since filled with their old behaviour) and what a resume may change."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import attrs
import cattrs
import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


from ..errors import ConfigError, RunError
from .checks import _check_weight, _device_list, _per_child, _show, _unknown_key
from .experiment import ADJUSTABLE, FIELDS, LIMITS, Experiment


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


def _raises(key: str, old: float, new: float) -> bool:
    if key == "generations":
        return new > old
    return bool(old) and (not new or new > old)


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
    "evaluation": "",
    "asynchronous": False,
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
