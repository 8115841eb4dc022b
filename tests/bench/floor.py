"""The least a `notifier` command that talks to Redis can cost with the project's fixed dependencies.

A typer command with one argument and one option, its settings read by a pydantic-settings class, one
`PING` over redis-py's asyncio client: what every such command pays before its own work (the interpreter,
typer and the pydantic adapters it builds, pydantic-settings, redis-py, asyncio). `tests/bench/cli.py` and
`tests/bench/prototype.py` time it beside the commands, so a target below it shows as out of reach in the
same run: a command's speed-up over a reference loop cannot exceed the loop's time over this floor.

Run as a script (`python -m tests.bench.floor USER`); it has no `run`, so `make bench` does not take it
for a benchmark module of its own.
"""

from __future__ import annotations


def main() -> None:
    import asyncio

    import redis.asyncio as aioredis
    import typer
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="NOTIFIER_")
        redis_url: str = "redis://127.0.0.1:6379/0"
        stream: str = "default"

    app = typer.Typer(add_completion=False, rich_markup_mode=None)  # plain help, as `notifier` has

    @app.command()
    def floor(user: str, dry_run: bool = typer.Option(False, "--dry-run")) -> None:
        settings = Settings()

        async def ping() -> None:
            redis = aioredis.Redis.from_url(settings.redis_url)
            try:
                await redis.ping()
            finally:
                await redis.aclose()

        asyncio.run(ping())

    app()


if __name__ == "__main__":
    main()
