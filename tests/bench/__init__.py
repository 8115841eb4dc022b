"""Benchmarks (`make bench`): not tests. Each module here exposes `async def run(ctx: Bench) -> None`."""
