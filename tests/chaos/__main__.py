"""`make chaos`: the chaos scenario with a longer load; a table on stdout, JSON in .bench/.

python -m tests.chaos                      # 50 reviews/s, 20 s of load before each fault
python -m tests.chaos --rate 20 --settle 3 # the size `make test` runs
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.bench.harness import machine
from tests.chaos.scenario import Chaos, ChaosReport


def table(report: ChaosReport) -> Table:
    faults = Table(title="Faults, one at a time, under a steady review load")
    for column in ("fault", "lasted (s)", "recovered (s)"):
        faults.add_column(column, justify="left" if column == "fault" else "right")
    for fault in report.faults:
        recovered = "not within the wait" if fault.recovered_s is None else f"{fault.recovered_s:.1f}"
        faults.add_row(fault.name, f"{fault.lasted_s:.1f}", recovered)
    return faults


def device_table(report: ChaosReport) -> Table:
    devices = Table(title=f"Per device: {report.events_in} review events in")
    for column in ("device", "user", "expected", "listed", "lost", "duplicates", "digests"):
        devices.add_column(column, justify="left" if column in ("device", "user") else "right")
    for tally in report.devices.values():
        devices.add_row(
            tally.device,
            tally.user,
            str(tally.expected),
            str(tally.listed),
            str(tally.lost),
            str(tally.duplicates),
            str(tally.digests),
        )
    return devices


def write_json(report: ChaosReport, *, rate: float) -> Path:
    out = Path(".bench")
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC)
    path = out / f"chaos-{stamp:%Y%m%dT%H%M%S}.json"
    document = {"date": stamp.isoformat(), "machine": machine(), "rate": rate, **dataclasses.asdict(report)}
    path.write_text(json.dumps(document, indent=2, default=str))
    return path


async def main(*, rate: float, settle_s: float) -> int:
    console = Console()
    with tempfile.TemporaryDirectory(prefix="notifier-chaos-") as work:
        report = await Chaos(Path(work), rate=rate, settle_s=settle_s, log=console.print).run()
    console.print(table(report))
    console.print(device_table(report))
    console.print(
        f"events in {report.events_in}, lost {report.lost}, duplicates {report.duplicates}, "
        f"rooms that exited on their own: {', '.join(report.exited_on_their_own) or 'none'}"
    )
    path = write_json(report, rate=rate)
    console.print(f"JSON written to {path}")
    clean = report.lost == 0 and report.duplicates == 0 and not report.exited_on_their_own
    return 0 if clean and all(f.recovered_s is not None for f in report.faults) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="review events per second")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds of load before each fault")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(rate=args.rate, settle_s=args.settle)))
