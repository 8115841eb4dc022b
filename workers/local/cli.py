"""`notifier demo`: the whole story on local Redis and RabbitMQ."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workers.common.clikit import StreamOption, run, stream_name
from workers.common.settings import CommonSettings
from workers.local.demo import console, run_demo, succeeded, summary


def demo(
    duration: Annotated[float, typer.Option("--duration", min=1, help="Seconds of generated review events.")] = 10.0,
    rate: Annotated[float, typer.Option("--rate", min=1, help="Review events per second.")] = 200.0,
    logs: Annotated[Path, typer.Option("--logs", help="Where the processes write their logs.")] = Path(".demo/logs"),
    stream: StreamOption = None,
) -> None:
    """Run every room locally, push reviews through, show digests and the invalid-user story, then stop."""
    story = run(
        run_demo(stream=stream_name(stream or "demo", CommonSettings()), duration_s=duration, rate=rate, log_dir=logs)
    )
    console.print(summary(story))
    if not succeeded(story):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
