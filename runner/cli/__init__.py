"""The ``ecogen`` command line.

One module per command group, each imported only when its commands run or are listed
(``evolve``, ``resume``; ``train``; ``show``, ``validate``, ``zoo``; ``report``, ``export``;
``plugins``). Heavy modules (torch, torchvision, scikit-learn,
matplotlib, onnx) are imported inside the commands that need them, so ``ecogen --help`` stays
instant.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from genomics import GenomeError
from operators import PluginError

from ..errors import ConfigError, RunError, StoreError

# Errors whose message is the whole story for a user; anything else is reported with its type.
_USER_ERRORS: tuple[type[BaseException], ...] = (
    GenomeError,
    FileNotFoundError,
    IsADirectoryError,
    ConfigError,
    RunError,
    StoreError,
    PluginError,
)

#: Command name -> "module:attribute" of its click command, in the order ``--help`` lists them.
COMMANDS = {
    "evolve": "search:evolve",
    "resume": "search:resume",
    "train": "train:train",
    "show": "genomes:show",
    "validate": "genomes:validate",
    "zoo": "genomes:zoo_group",
    "report": "ship:report",
    "export": "ship:export",
    "plugins": "plugins:plugins",
}


def _user_errors() -> tuple[type[BaseException], ...]:
    # DatasetError lives beside torch code; look it up only if a command already imported it, so
    # that error handling never imports torch by itself.
    found = list(_USER_ERRORS)
    data = sys.modules.get("phenotypes.data")
    if data is not None:
        found.append(data.DatasetError)
    return tuple(found)


class _Group(click.Group):
    """Loads each command's module when the command is needed (click's lazy-group pattern),
    and turns every failure into one line on stderr and a non-zero exit (``--debug``: the
    traceback)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            if ctx.params.get("debug") or os.environ.get("ECOGEN_DEBUG"):
                raise
            if isinstance(exc, _user_errors()):
                message = str(exc)
            else:
                message = f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"
            click.echo(
                f"error: {message.splitlines()[0] if message else type(exc).__name__}", err=True
            )
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="ecogen")
def main(debug: bool) -> None:
    """ecogen: evolutionary neural architecture search."""
