"""`make bench` runs every benchmark module of tests/bench and nothing else from that package."""

from __future__ import annotations

import importlib
import inspect

from tests.bench.__main__ import modules


def test_make_bench_runs_each_benchmark_module_and_no_helper() -> None:
    found = modules()
    assert {"bus", "cluster", "core", "e2e", "ws_delivery"} <= set(found)
    assert not {"harness", "http"} & set(found), "helpers are not benchmarks"
    for name in found:
        run = importlib.import_module(f"tests.bench.{name}").run
        assert inspect.iscoroutinefunction(run), name
