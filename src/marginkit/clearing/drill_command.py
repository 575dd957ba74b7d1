"""`marginkit ccp default-drill SCENARIO [--json]`: run a member default end to end (clearing/drill.py).

Exit codes as spec/cli.md: 0 ok, 2 bad input (one line on stderr naming the file and field, nothing on stdout).
The lead registers `default_drill` on the `ccp` group (`register_default_drill(ccp_app)`), or mounts `drill_app`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from marginkit.clearing.drill import print_drill, run_drill
from marginkit.errors import InputError

COMMAND_NAME = "default-drill"


def default_drill(
    scenario: Annotated[Path, typer.Argument(help="Drill file (YAML/JSON): clearing house, defaulters, stress "
                                                  "scenarios, close-out path.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine output.")] = False,
) -> None:
    """Run a member default end to end: Cover-N fund, close-out over the MPOR, who lost what at each layer."""
    try:
        document = run_drill(scenario)
    except InputError as error:
        print(str(error).replace("\n", " "), file=sys.stderr)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(document, indent=2))
    else:
        print_drill(Console(width=None if sys.stdout.isatty() else 140), document)


def register_default_drill(app: typer.Typer) -> None:
    """Add `default-drill` to a Typer group (the `ccp` group of the `marginkit` command)."""
    app.command(COMMAND_NAME)(default_drill)


drill_app = typer.Typer(no_args_is_help=True, help="Clearing house default management.")


@drill_app.callback()
def _group() -> None:
    """Clearing house default management."""


register_default_drill(drill_app)
