"""The one error hierarchy of Notifier.

NotifierError
├── TemporaryError          retried: AMQP nack + requeue, HTTP 503 with Retry-After, backoff; never ends a room
│   └── ServiceUnavailable  Redis, RabbitMQ, core or the Kubernetes API cannot be reached right now
└── PermanentError          never retried: AMQP dead letter, HTTP 4xx, CLI exit 1
    ├── InvalidInput        a message, file, argument or request that can never succeed
    │   └── InvalidMapping  a NotificationStream / mapping file that does not validate
    ├── InvalidSettings     a room cannot run as configured (a bad setting, a port in use, an unknown host): exit 2
    └── NotFound            the thing asked for does not exist

Client libraries raise their own exceptions; `workers.common.runtime.faults.classify` is the one place that maps
them onto this tree.
"""

from __future__ import annotations

import json


class NotifierError(Exception):
    """Base of every error Notifier raises on purpose."""


class TemporaryError(NotifierError):
    """Worth retrying later: the same input may succeed once the world recovers."""


class ServiceUnavailable(TemporaryError):
    """A backing service (Redis, RabbitMQ, core) cannot be reached right now."""

    def __init__(self, message: str, *, dependency: str = "") -> None:
        super().__init__(message)
        self.dependency = dependency
        """Which service: `redis`, `rabbitmq`, `core`, `kubernetes` (the label of the dependency metrics)."""


class PermanentError(NotifierError):
    """Retrying the same input can never succeed."""


class InvalidInput(PermanentError):
    """Bad input: a message, request, file or argument that does not validate."""


class InvalidMapping(InvalidInput):
    """A NotificationStream or mapping file that does not validate."""


class InvalidSettings(PermanentError):
    """The process cannot run as configured; the message names the setting. Rooms exit 2 on it."""


class NotFound(PermanentError):
    """The thing asked for does not exist."""


def error_body(detail: str | list[dict[str, object]]) -> bytes:
    """The JSON body of every HTTP error Notifier answers, on every port: `{"detail": ...}`, a string (a list of
    validation errors for a 422)."""
    return json.dumps({"detail": detail}).encode()
