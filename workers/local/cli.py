"""`notifier demo` and `notifier up`: every room as a local process on local Redis and RabbitMQ."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workers.common.clikit import StreamOption, run, stream_name
from workers.common.runtime.settings import BrokerSettings, CommonSettings
from workers.local.demo import run_demo
from workers.local.show import console, summary
from workers.local.up import run_up

LogsOption = Annotated[Path, typer.Option("--logs", help="Where the processes write their logs.")]


def demo(
    duration: Annotated[float, typer.Option("--duration", min=1, help="Seconds of generated review events.")] = 20.0,
    rate: Annotated[float, typer.Option("--rate", min=1, help="Review events per second.")] = 50.0,
    logs: LogsOption = Path(".demo/logs"),
    stream: Annotated[
        str | None,
        typer.Option("--stream", help="Stream of the demo (its keys are deleted first).", show_default=False),
    ] = None,
) -> None:
    """Run every room locally (two replicas each), publish reviews to listening devices, then the invalid-user story."""
    story = run(
        run_demo(stream=stream_name(stream or "demo", CommonSettings()), duration_s=duration, rate=rate, log_dir=logs)
    )
    console.print(summary(story))
    if story.interrupted:
        raise typer.Exit(130)
    if not story.succeeded:
        raise typer.Exit(1)


def up(
    replicas: Annotated[
        int, typer.Option("--replicas", min=1, max=8, help="Replicas of every room but the monitor.")
    ] = 2,
    logs: LogsOption = Path(".demo/up-logs"),
    stream: StreamOption = None,
) -> None:
    """Run every room locally until Ctrl-C or SIGTERM; prints where each one listens."""
    settings = BrokerSettings()
    codes = run(
        run_up(stream=stream_name(stream, settings), namespace=settings.amqp_namespace, replicas=replicas, log_dir=logs)
    )
    if any(code != 0 for code in codes.values()):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("up")(up)
