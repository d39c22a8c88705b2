"""Zero-cost proxies in a run: their registry (``phenotypes.proxies``' built-ins and
``ecogen.proxies`` entry points) and the screening of a generation's children by one of them.

An entry point names a function ``(model, x, y) -> float``, larger meaning predicted better
(``phenotypes.proxies`` says how the built-ins are signed); its docstring's first sentence is
what ``ecogen plugins`` shows. The registry is :class:`operators.Registry`, with the operators'
refusal rule.

Screening (``screen = "NAME"``, ``screen_keep``): the engine makes ``children / screen_keep``
candidates, scores each in the main process on the CPU (its genome compiled with the seed it
would train with, one minibatch of the training split drawn with the run's seed), and keeps the
``children`` best in candidate order; the others are never created as individuals. Every score
is recorded as a ``screened`` event. The decisions depend only on the run seed and the
candidates, so every worker count and every resume take the same ones.
"""

from __future__ import annotations

import inspect
from typing import Any

from attrs import frozen

import phenotypes.proxies as phx
from operators import PluginError, Registry
from operators.plugins import BUILTIN_PROVIDER

ENTRY_POINT_GROUP = "ecogen.proxies"


@frozen
class ProxyInfo:
    """A registered proxy: its name, function and the package providing it."""

    name: str
    function: phx.Proxy
    provider: str

    @property
    def summary(self) -> str:
        doc = " ".join((self.function.__doc__ or "").split())
        return doc.split(". ")[0].rstrip(".")


def _takes_a_minibatch(function: Any) -> bool:
    try:
        inspect.signature(function).bind(None, None, None)
    except (TypeError, ValueError):
        return False
    return True


def _load(ep_name: str, function: Any, provider: str) -> tuple[str, ProxyInfo]:
    if not callable(function) or not _takes_a_minibatch(function):
        raise PluginError(
            f"proxy {ep_name!r} of {provider}: not a proxy (a function (model, x, y) -> float)"
        )
    return ep_name, ProxyInfo(ep_name, function, provider)


#: Every proxy: ecogen's, ``ecogen.proxies`` entry points', and those registered by imported
#: code (:func:`register`).
PROXIES: Registry[ProxyInfo] = Registry("proxy", ENTRY_POINT_GROUP, _load)
for _name, _function in phx.BUILTIN.items():
    PROXIES.add(_name, ProxyInfo(_name, _function, BUILTIN_PROVIDER))


def register(name: str, function: phx.Proxy) -> None:
    """Register ``function`` as proxy ``name`` at run time (a user's script); PluginError when
    it is not a proxy or the name is taken."""
    provider = function.__module__.split(".")[0] if hasattr(function, "__module__") else "?"
    _, info = _load(name, function, provider)
    PROXIES.add(name, info, same=lambda a, b: a.function is b.function)


def registered(reload: bool = False) -> dict[str, ProxyInfo]:
    """Every usable proxy by name: built-ins, then plugins (scanned once; ``reload`` scans
    again), then those registered at run time."""
    return PROXIES.registered(reload)


def refused(reload: bool = False) -> dict[str, str]:
    """Proxy plugins that were refused, by entry-point name, with the reason."""
    return PROXIES.refused(reload)


def names() -> list[str]:
    """Names of every usable proxy."""
    return list(registered())


def get(name: str) -> ProxyInfo:
    """The proxy registered as ``name``; PluginError with its reason for a refused plugin."""
    try:
        return PROXIES.get(name)
    except KeyError:
        raise KeyError(f"no proxy named {name!r} (proxies: {', '.join(registered())})") from None
