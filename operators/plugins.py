"""One plugin registry for everything ecogen takes from other packages (mutation operators,
search strategies): ecogen's built-ins, entries from an entry-point group, and entries that
imported code registers at run time.

Every kind follows the same rule: an entry point that cannot be loaded, that is not what its
group expects, or that takes a name already taken is *refused*, with a one-line reason naming
the entry point and its package, and left out. A refused plugin never breaks the others, nor
``ecogen plugins``, which lists it; naming it where it would be used raises its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any, Generic, TypeVar

from .errors import PluginError

T = TypeVar("T")

#: Who provides ecogen's own entries.
BUILTIN_PROVIDER = "ecogen"


def provider_of(ep: metadata.EntryPoint) -> str:
    """The distribution that declares ``ep`` (its module's package when unknown)."""
    return ep.dist.name if ep.dist is not None else ep.module.split(".")[0]


class Registry(Generic[T]):
    """Entries of one kind by name. ``load(ep_name, obj, provider)`` turns what an entry
    point names into ``(name, entry)`` or raises PluginError; entries have a ``provider``.
    ``reserved`` are names no plugin may take (presets, say)."""

    def __init__(
        self,
        kind: str,
        group: str,
        load: Callable[[str, Any, str], tuple[str, T]],
        reserved: Iterable[str] = (),
    ) -> None:
        self.kind, self.group, self._load = kind, group, load
        self.reserved = set(reserved)
        self.builtin: dict[str, T] = {}
        #: Registered by imported code that is not an entry point (a user's script).
        self.extra: dict[str, T] = {}
        self._plugins: dict[str, T] | None = None
        self._refused: dict[str, str] = {}

    def add(self, name: str, entry: T, same: Callable[[T, T], bool] = lambda a, b: a is b) -> None:
        """Register ``entry`` at run time (built-in when its provider is ecogen); PluginError
        when ``name`` is taken by a different entry (``same`` tells a module imported twice)."""
        table = self.builtin if entry.provider == BUILTIN_PROVIDER else self.extra
        known = table.get(name)
        if known is not None and not same(known, entry):
            raise PluginError(
                f"{self.kind} {name!r} of {entry.provider} is already registered by"
                f" {known.provider}"
            )
        table[name] = entry

    def _scan(self) -> None:
        found: dict[str, T] = {}
        refused: dict[str, str] = {}
        for ep in metadata.entry_points(group=self.group):
            provider = provider_of(ep)
            try:
                name, entry = self._load(ep.name, ep.load(), provider)
                owner = self.builtin.get(name) or found.get(name)
                if owner is not None or name in self.reserved:
                    taken_by = owner.provider if owner is not None else BUILTIN_PROVIDER
                    raise PluginError(
                        f"{self.kind} {name!r} of {provider}: the name is already taken by"
                        f" {taken_by}"
                    )
            except PluginError as exc:
                refused[ep.name] = str(exc)
                continue
            except Exception as exc:
                refused[ep.name] = (
                    f"{self.kind} {ep.name!r} of {provider}: entry point {ep.value} cannot be"
                    f" loaded: {type(exc).__name__}: {exc}".splitlines()[0]
                )
                continue
            found[name] = entry
            self.extra.pop(name, None)  # loading its module registered it as extra
        self._plugins, self._refused = found, refused

    def registered(self, reload: bool = False) -> dict[str, T]:
        """Every usable entry by name: built-ins, then plugins (scanned once; ``reload`` scans
        again), then entries registered at run time."""
        if self._plugins is None or reload:
            self._scan()
        return {**self.builtin, **self._plugins, **self.extra}

    def refused(self, reload: bool = False) -> dict[str, str]:
        """Refused plugins by entry-point name, with the reason."""
        self.registered(reload)
        return dict(self._refused)

    def get(self, name: str) -> T:
        """The entry ``name``; PluginError with its reason for a refused plugin, KeyError for
        an unknown name."""
        table = self.registered()
        if name in table:
            return table[name]
        if name in self._refused:
            raise PluginError(self._refused[name])
        raise KeyError(name)
