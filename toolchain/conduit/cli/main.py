"""The `conduit` command: a click group whose subcommands live one per module in `conduit.cli`.

Each subcommand module defines `command` (a click.Command). Modules are imported only when their
command runs, so `conduit validate` never imports BentoML or a model framework.
One error path for the whole CLI: a `ConduitError` becomes a one-line message (exit 1, or 2 for
usage errors); anything else is a bug, shown with a traceback only under `--debug`.
Every command but those writing the user's own files runs with a private umask (`conduit.paths`):
what it creates under CONDUIT_HOME, and every process it starts, is the owner's alone.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback

import click

from conduit import __version__, paths
from conduit.errors import ConduitError, UsageError

# command name -> module under conduit.cli (one small module per command)
COMMANDS = {
    "validate": "validate",
    "init": "init",
    "schema": "schema",
    "run": "run",
    "render": "render",
    "build": "build",
    "apply": "apply",
    "ls": "ls",
    "status": "status",
    "logs": "logs",
    "predictions": "predictions",
    "predict": "predict",
    "rollback": "rollback",
    "delete": "delete",
    "plan": "plan",
    "dashboard": "dashboard",
}
# Commands that write the user's files (a manifest, a schema, build contexts) with the user's own umask.
USER_FILE_COMMANDS = ("init", "schema", "render")


def _available() -> list[str]:
    return [name for name, module in COMMANDS.items() if importlib.util.find_spec(f"conduit.cli.{module}")]


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_available())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or name not in _available():
            return None
        return importlib.import_module(f"conduit.cli.{COMMANDS[name]}").command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="conduit")
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Declarative model deployments you run yourself."""
    ctx.obj = {"debug": debug}
    if ctx.invoked_subcommand not in USER_FILE_COMMANDS:
        paths.keep_private()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 ok, 1 failed, 2 usage)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        result = cli.main(args=argv, prog_name="conduit", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except UsageError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except ConduitError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug in conduit: say so plainly
        if debug:
            traceback.print_exc()
        else:
            click.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for a traceback)", err=True)
        return 1


def run() -> None:
    """The `conduit` console script: `main()` in a process of its own, which may tune its start
    and exit (see `conduit.startup`); tests and library callers use `main()`."""
    from conduit import startup

    startup.begin()
    code = main()
    startup.before_exit()
    sys.exit(code)


if __name__ == "__main__":
    run()
