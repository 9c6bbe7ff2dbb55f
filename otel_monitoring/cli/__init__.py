"""The ``otel-monitoring`` command: ``demo`` and ``analyze``."""

from __future__ import annotations

import typer

from otel_monitoring.cli.analyze import analyze_app
from otel_monitoring.cli.demo import demo

__all__ = ["app", "main"]

app = typer.Typer(
    help="Monitoring and analysis for FastAPI services, on OpenTelemetry.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: rendering it with rich costs ~0.15 s of imports
    pretty_exceptions_enable=False,
)
app.command()(demo)
app.add_typer(analyze_app, name="analyze")


def main() -> None:
    """Entry point of the ``otel-monitoring`` script."""
    app()
