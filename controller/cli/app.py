"""``adc``: the command line. This module only lists the commands; each is imported when it runs, so ``adc
--help`` starts in a fraction of a second without the server, the store or the vision stack.

User errors (a bad URL, a database not initialised, an unknown option) print one line on stderr and exit
non-zero; only a bug prints a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

# name -> (module:attribute, the one line ``adc --help`` shows). The attribute is a Typer app or a command function.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("controller.cli.serve:serve", "Run the cabinet: devices (simulated unless configured), API and pages."),
    "sim": ("controller.cli.store_commands:sim", "Start every device simulator and print their URLs."),
    "db": ("controller.cli.store_commands:db_app", "Create and migrate the database."),
    "ledger": ("controller.cli.store_commands:ledger_app", "The tamper-evident ledger."),
    "inventory": ("controller.cli.store_commands:inventory", "Pockets with their item, quantity, lots and expiry."),
    "devices": ("controller.cli.store_commands:devices", "Show who each configured device says it is."),
    "scenario": ("controller.cli.scenario:scenario_app", "QA scenarios on a virtual clock."),
    "report": ("controller.cli.report:report_app", "Pharmacy and diversion reports."),
    "hl7": ("controller.cli.hl7:hl7_app", "HL7 v2 over MLLP: the listener and the outbox."),
    "api": ("controller.cli.api_clients:api_app", "Integrator clients of the REST API."),
    "vision": ("controller.cli.vision:vision_app", "Barcodes, package labels and pill counts from images."),
    "central": ("controller.cli.central:central_app", "The hospital's central server (PostgreSQL, NATS JetStream)."),
    "fleet": ("controller.cli.fleet:fleet_app", "The cabinet's side of the fleet link, and a simulated hospital."),
}


class LazyCommands(TyperGroup):
    """The top-level group: a command's module is imported only when that command runs (or shows its own help);
    the list in ``adc --help`` comes from ``COMMANDS``."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        target, summary = COMMANDS[cmd_name]
        if self._listing:
            return TyperCommand(cmd_name, help=summary, short_help=summary)
        module, _, attribute = target.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        command: Any
        if isinstance(found, typer.Typer):
            command = typer.main.get_group(found)  # a group even with one command (adc ledger verify)
        else:
            holder = typer.Typer()
            holder.command(cmd_name, help=found.__doc__)(found)
            command = typer.main.get_command(holder)
        command.name = cmd_name
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="adc",
    cls=LazyCommands,
    help="Open controller for automated dispensing cabinets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Open controller for automated dispensing cabinets."""


def main() -> None:
    """Entry point: run the app and turn expected errors into one line on stderr."""
    from controller.errors import ControllerError

    try:
        # Without standalone mode click returns a command's exit code instead of exiting.
        code = app(standalone_mode=False)
    except ControllerError as exc:
        _fail(f"adc: error: {exc}", 2 if exc.code in ("store.bad_url", "config.invalid") else 1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _fail("adc: aborted", 130)
    except typer.TyperException as exc:
        # Usage errors (unknown option, bad value): click's message, on one line, no traceback.
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        _fail(f"adc: error: {message} (see 'adc --help')", int(getattr(exc, "exit_code", 2)))
    else:
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    from rich.console import Console

    Console(stderr=True).print(message, markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
