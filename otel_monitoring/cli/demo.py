"""``otel-monitoring demo``: the sample shop with synthetic traffic and scheduled incidents."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from typing import Annotated, Any

import typer

__all__ = ["demo"]


class _ExpectedFailures(logging.Filter):
    """Keeps the shop's deliberate ``/boom`` tracebacks off the demo's console."""

    def filter(self, record: logging.LogRecord) -> bool:
        from otel_monitoring.demo.shop import PaymentGatewayError

        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, PaymentGatewayError)


def demo_rules() -> tuple[Any, ...]:
    """The built-in rules judged over the last minute instead of five, plus a p99 latency
    rule: the demo's incidents last 10-15 s, which a 5-min window dilutes below the
    thresholds, so without these no alert would fire in the first minute."""
    import dataclasses

    from otel_monitoring.alerting.rules import Statistic, ThresholdRule, default_rules
    from otel_monitoring.types import Window

    minute = [
        dataclasses.replace(rule, window=Window.M1) if isinstance(rule, ThresholdRule) else rule
        for rule in default_rules()
    ]
    return (
        *minute,
        ThresholdRule("high_latency_p99", Statistic.LATENCY_P99, 1000.0, window=Window.M1),
    )


def demo(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the shop.")] = 8000,
    rps: Annotated[float, typer.Option(min=0.1, max=500, help="Requests per second.")] = 20.0,
    duration: Annotated[
        float, typer.Option(min=0, help="Stop after this many seconds (0: until Ctrl-C).")
    ] = 0.0,
    traffic: Annotated[bool, typer.Option(help="Generate traffic.")] = True,
) -> None:
    """Run the sample shop, instrumented, with traffic and incidents; print where to look."""
    import uvicorn

    from otel_monitoring.demo.shop import create_app, create_engine_for
    from otel_monitoring.demo.traffic import TrafficGenerator

    db_path = os.path.join(tempfile.mkdtemp(prefix="otel-monitoring-demo-"), "shop.db")
    app = create_app(
        create_engine_for(db_path), instrument=True, interval_s=2.0, rules=demo_rules()
    )
    base = f"http://{host}:{port}"
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    generator = TrafficGenerator(base, rps=rps, duration_s=duration or None) if traffic else None
    typer.echo(
        "\n".join(
            (
                f"Sample shop on {base} (SQLite at {db_path})",
                f"  dashboard:      {base}/monitoring/ui",
                f"  endpoint stats: {base}/monitoring/endpoints?window=5m",
                f"  health:         {base}/monitoring/health",
                f"  API docs:       {base}/docs",
                "Traffic: normal, then a latency incident on /items/{item_id} at 20 s, "
                "an error burst at 45 s, repeating every 90 s."
                if generator
                else "No traffic generated (--no-traffic).",
                "Press Ctrl-C to stop.",
            )
        )
    )
    if generator is not None:
        generator.start()
        if duration:

            def stop_when_done() -> None:
                generator.thread.join()
                server.should_exit = True

            threading.Thread(target=stop_when_done, daemon=True).start()
    logging.getLogger("uvicorn.error").addFilter(_ExpectedFailures())
    try:
        server.run()
    finally:
        if generator is not None:
            generator.stop.set()
            typer.echo(f"Sent {generator.sent} requests.")
