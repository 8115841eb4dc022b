"""The image tests run through `make test-images`, which builds the images first and sets NOTIFIER_TEST_IMAGES=1.

In any other pytest run they are deselected (not skipped): without built images they could only fail. With
NOTIFIER_TEST_IMAGES=1 a missing engine or image is a failure, never a skip. The controller's Kubernetes API
is the KMock server of the controller tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.controller.conftest import cluster, namespace, owned_streams, servers  # noqa: F401
from tests.images.containers import engine, missing_images

HERE = Path(__file__).parent
ENABLED = os.environ.get("NOTIFIER_TEST_IMAGES") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    ours = [item for item in items if HERE in item.path.parents]
    if ours:
        config.hook.pytest_deselected(items=ours)
        items[:] = [item for item in items if item not in ours]


def pytest_report_header(config: pytest.Config) -> str:
    if ENABLED:
        return "image tests: on (containers from `make images`)"
    return "image tests: deselected here; `make test-images` runs them"


@pytest.fixture(scope="session")
def built_images() -> None:
    if not engine():
        pytest.fail("neither podman nor docker is installed: the image tests cannot run")
    if missing := missing_images():
        pytest.fail(f"images not built (run `make images`): {', '.join(missing)}")
