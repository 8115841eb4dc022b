"""Subcommands of the controller room: none besides `notifier controller` (the CRD lives in the Helm chart)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """The controller adds no subcommands; `notifier mapping load` runs its reconcile code without Kubernetes."""
