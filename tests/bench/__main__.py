"""`make bench`: run every benchmark module of this package, print one table, write JSON to .bench/.

The load generators run on uvloop, as the rooms do: on two cores, every bit of CPU the generator
spends is taken from the processes it measures.

python -m tests.bench               # all
python -m tests.bench bus core      # only these modules
python -m tests.bench --quick       # smaller sizes, for a smoke run
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

import uvloop

import tests.bench
from tests.bench.harness import Bench, report


def modules() -> list[str]:
    """The benchmark modules: those of this package with a `run(bench)` (not the harness or the HTTP client)."""
    names = sorted(m.name for m in pkgutil.iter_modules(tests.bench.__path__) if m.name != "__main__")
    return [name for name in names if hasattr(importlib.import_module(f"tests.bench.{name}"), "run")]


async def main(selected: list[str], *, quick: bool) -> None:
    bench = Bench(quick=quick)
    for name in selected:
        module = importlib.import_module(f"tests.bench.{name}")
        print(f"== {name}", flush=True)
        await module.run(bench)
    path = report(bench, out_dir=Path(".bench"))
    print(f"JSON written to {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument("only", nargs="*", help=f"modules to run (default: all of {', '.join(modules())})")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    unknown = set(args.only) - set(modules())
    if unknown:
        parser.error(f"unknown benchmark modules: {', '.join(sorted(unknown))}")
    uvloop.run(main(args.only or modules(), quick=args.quick))
