"""The `flows87` command, by audience: the pipeline, the rule catalogue, the investigators, the
researchers (flows87.cli.pipeline, .rules, .investigate, .research; what they share is in .common).

Exit codes scripts can trust: 0 success, 1 internal error (a bug: please report the traceback),
2 bad input, usage or configuration (the message says file, row, column and why),
3 a quality gate stopped the run (the message says where the report and quarantine are),
130 interrupted.
"""

from __future__ import annotations

import click
from rich.markup import escape

from flows87 import __version__
from flows87.cli import feedback, investigate, pipeline, research, rules
from flows87.cli.common import (
    EPILOG,
    EXIT_AUDIT_BROKEN,
    EXIT_BUG,
    EXIT_GATE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USER,
    err,
)
from flows87.cli.investigate import serve_cmd
from flows87.errors import Flows87Error

__all__ = [
    "EXIT_AUDIT_BROKEN",
    "EXIT_BUG",
    "EXIT_GATE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USER",
    "cli",
    "main",
    "serve_cmd",
]


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flows87")
def cli() -> None:
    """flows87: find money flows linked to human trafficking, forced labour and laundering.

    Typical use: `flows87 synth --out data/` makes labelled demo data; `flows87 ingest data/
    --out run/` reads it (or a public dataset: AMLworld, AMLSim, PaySim, SAML-D), checks its
    quality and writes canonical Parquet with a quarantine of rejected rows.
    """


for _command in (
    *pipeline.COMMANDS,
    *rules.COMMANDS,
    *investigate.COMMANDS,
    *research.COMMANDS,
    *feedback.COMMANDS,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn user errors into a message and an exit code, never a traceback."""
    try:
        rv = cli.main(args=argv, prog_name="flows87", standalone_mode=False)
        if isinstance(rv, int):  # click returns an Exit's code in non-standalone mode
            return rv
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return EXIT_USER
    except click.exceptions.Abort:
        err.print("aborted")
        return EXIT_INTERRUPTED
    except Flows87Error as exc:
        err.print(
            f"[bold red]error:[/] {escape(exc.message)}",
            highlight=False,
            soft_wrap=True,
        )
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED
    return EXIT_OK
