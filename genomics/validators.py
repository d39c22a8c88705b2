"""Small attrs validators, shared by genes, experiment settings (runner), mutation settings
(operators) and strategy options (strategies).

Each factory returns a frozen callable, as attrs' own validators are. Its error is one line,
``PREFIX NAME: must be EXPECTED, got VALUE``, of the class the caller passes (``GenomeError``
here, ``ConfigError`` in the runner, ``ValueError`` in operators, ``StrategyError`` in
strategies). ``prefix`` places the name (``strategies.extinction.``); a function of the instance
gives a prefix that depends on it::

    size: int = attrs.field(validator=at_least(1, kind=int, error=StrategyError,
                                               prefix=lambda s: f"strategies.{s.name}."))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NoReturn

import attrs
from attrs import field, frozen

Prefix = str | Callable[[Any], str]

#: How the expectation names a ``kind``.
_KINDS = {int: "int", float: "a finite number"}


@frozen
class _Validator:
    error: type[Exception] = field(kw_only=True)
    prefix: Prefix = field(default="", kw_only=True)

    def __call__(self, inst: Any, attribute: attrs.Attribute, value: Any) -> None:
        self.check(inst, attribute.name, value)

    def check(self, inst: Any, name: str, value: Any) -> None:
        raise NotImplementedError

    def fail(self, inst: Any, name: str, expected: str, value: Any) -> NoReturn:
        prefix = self.prefix(inst) if callable(self.prefix) else self.prefix
        shown = list(value) if isinstance(value, tuple) else value  # as TOML and JSON write it
        raise self.error(f"{prefix}{name}: must be {expected}, got {shown!r}")


def _is(value: Any, kind: type | None) -> bool:
    """Whether ``value`` is a ``kind`` (None: anything): bool is never a number here, a float
    kind also takes integers and refuses infinities and NaN."""
    if kind is None:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
        return False
    return kind is not float or math.isfinite(value)


@frozen
class _InstanceOf(_Validator):
    types: tuple[type, ...]
    name: str

    def check(self, inst: Any, name: str, value: Any) -> None:
        # bool is an int subclass; `"kernel": true` is a mistake, not a 1.
        if (isinstance(value, bool) and bool not in self.types) or not isinstance(
            value, self.types
        ):
            self.fail(inst, name, self.name, value)


def instance_of(types: type | tuple[type, ...], name: str, **kw: Any) -> _InstanceOf:
    """A value of ``types`` (never a bool unless ``bool`` is listed); ``name`` says which in
    the error ("an integer")."""
    return _InstanceOf(types if isinstance(types, tuple) else (types,), name, **kw)


@frozen
class _Bound(_Validator):
    low: float
    strict: bool
    kind: type | None
    note: str

    def check(self, inst: Any, name: str, value: Any) -> None:
        inside = _is(value, self.kind) and (value > self.low if self.strict else value >= self.low)
        if not inside:  # NaN too: it compares false
            kind = f"{_KINDS.get(self.kind, '')} " if self.kind else ""
            relation = ">" if self.strict else ">="
            self.fail(inst, name, f"{kind}{relation} {self.low}{self.note}", value)


def at_least(low: float, *, kind: type | None = None, note: str = "", **kw: Any) -> _Bound:
    """A number >= ``low``. With ``kind`` (int or float) also its type, a float kind refusing
    infinities and NaN; ``note`` follows the bound in the error (" (0: no limit)")."""
    return _Bound(low, False, kind, note, **kw)


def above(low: float, *, kind: type | None = None, note: str = "", **kw: Any) -> _Bound:
    """A number > ``low``; otherwise as :func:`at_least`."""
    return _Bound(low, True, kind, note, **kw)


@frozen
class _Odd(_Validator):
    def check(self, inst: Any, name: str, value: Any) -> None:
        if value % 2 == 0:
            self.fail(inst, name, "odd", value)


def odd(**kw: Any) -> _Odd:
    """An odd integer (check the type first)."""
    return _Odd(**kw)


@frozen
class _OneOf(_Validator):
    choices: tuple[Any, ...]

    def check(self, inst: Any, name: str, value: Any) -> None:
        if value not in self.choices:
            self.fail(inst, name, f"one of {', '.join(map(str, self.choices))}", value)


def one_of(choices: tuple[Any, ...], **kw: Any) -> _OneOf:
    """One of ``choices``."""
    return _OneOf(tuple(choices), **kw)


@frozen
class _Subset(_Validator):
    choices: tuple[Any, ...]

    def check(self, inst: Any, name: str, value: Any) -> None:
        if (
            not isinstance(value, (tuple, list))
            or not value
            or any(v not in self.choices for v in value)
        ):
            self.fail(inst, name, f"one or more of {', '.join(map(str, self.choices))}", value)


def subset(choices: tuple[Any, ...], **kw: Any) -> _Subset:
    """A non-empty collection of ``choices``."""
    return _Subset(tuple(choices), **kw)


@frozen
class _Each(_Validator):
    validators: tuple[_Validator, ...]

    def check(self, inst: Any, name: str, value: Any) -> None:
        if not isinstance(value, (tuple, list)) or not value:
            self.fail(inst, name, "a list of at least one value", value)
        for i, item in enumerate(value):
            for validator in self.validators:
                validator.check(inst, f"{name}[{i}]", item)


def each(*validators: _Validator, **kw: Any) -> _Each:
    """A non-empty list whose every item passes ``validators``; their errors name the item
    (``kernel_sizes[1]: must be odd, got 4``)."""
    return _Each(validators, **kw)


@frozen
class _Pair(_Validator):
    low: float
    below: float | None
    kind: type
    optional: bool

    def check(self, inst: Any, name: str, value: Any) -> None:
        if value is None and self.optional:
            return
        ok = (
            isinstance(value, (tuple, list))
            and len(value) == 2
            and all(_is(v, self.kind) for v in value)
            and self.low <= value[0] <= value[1]
            and (self.below is None or value[1] < self.below)
        )
        if not ok:
            kinds = "integers" if self.kind is int else "numbers"
            top = "" if self.below is None else f" < {self.below}"
            self.fail(inst, name, f"[low, high] {kinds} with {self.low} <= low <= high{top}", value)


def pair(
    *,
    low: float = 0,
    below: float | None = None,
    kind: type = int,
    optional: bool = False,
    **kw: Any,
) -> _Pair:
    """A ``[low, high]`` range of ``kind`` (int or finite float) with ``low`` <= low <= high
    (< ``below`` when given); ``optional``: None too (not set)."""
    return _Pair(low, below, kind, optional, **kw)
