"""Optional dependencies: the commands that need an extra say which one to install."""

from __future__ import annotations

import importlib

from .errors import MissingExtra

#: The packages of each extra (pyproject.toml), by the name they are imported with.
EXTRAS = {
    "report": ("matplotlib", "networkx"),
    "export": ("onnx", "onnxscript", "onnxruntime"),
    "ray": ("ray",),
}


def require(command: str, extra: str) -> None:
    """Import the packages of ``extra``; MissingExtra, naming them and the pip command that
    installs them, when one is missing."""
    modules = EXTRAS[extra]
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingExtra(
            f"{command} needs {', '.join(modules)} ({', '.join(missing)} not installed):"
            f" pip install 'ecogen[{extra}]'"
        )
