"""The benchmark harness: rows with a value, a unit and ratios to reference runs of the same invocation."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table


@dataclass
class Row:
    group: str
    name: str
    value: float
    unit: str
    note: str = ""
    ratios: dict[str, float] = field(default_factory=dict)
    target: str = ""


@dataclass
class Bench:
    quick: bool = False
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        Console(stderr=True).print(f"  {row.group} / {row.name}: {figure(row.value)} {row.unit}")
        return row

    def find(self, group: str, name: str) -> Row:
        for row in self.rows:
            if row.group == group and row.name == name:
                return row
        raise KeyError((group, name))


def figure(value: float) -> str:
    """A value as a table shows it: whole numbers from 100 up, else three significant digits (0.296 s, not 0.3 s
    against a target of 0.3 s)."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return platform.processor()
    return platform.processor()


def report(bench: Bench, *, out_dir: Path) -> Path:
    table = Table(title=f"Notifier benchmarks — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    for column in ("group", "measurement", "value", "unit", "ratios", "target", "note"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for row in bench.rows:
        ratios = ", ".join(f"{v:.2f}x {k}" for k, v in row.ratios.items())
        table.add_row(row.group, row.name, figure(row.value), row.unit, ratios, row.target, row.note)
    Console(width=180).print(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-{int(time.time())}.json"
    payload = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "rows": [asdict(r) for r in bench.rows],
    }
    path.write_text(json.dumps(payload, indent=2))
    (out_dir / "latest.json").write_text(json.dumps(payload, indent=2))
    return path
