"""The one error hierarchy of Notifier.

NotifierError
├── TemporaryError          retried: AMQP nack + requeue, HTTP 503 with Retry-After, backoff
│   └── ServiceUnavailable  Redis, RabbitMQ or core cannot be reached right now
└── PermanentError          never retried: AMQP dead letter, HTTP 4xx, CLI exit 1
    ├── InvalidInput        a message, file, argument or request that can never succeed
    │   └── InvalidMapping  a NotificationStream / mapping file that does not validate
    └── NotFound            the thing asked for does not exist
"""

from __future__ import annotations


class NotifierError(Exception):
    """Base of every error Notifier raises on purpose."""


class TemporaryError(NotifierError):
    """Worth retrying later: the same input may succeed once the world recovers."""


class ServiceUnavailable(TemporaryError):
    """A backing service (Redis, RabbitMQ, core) cannot be reached right now."""


class PermanentError(NotifierError):
    """Retrying the same input can never succeed."""


class InvalidInput(PermanentError):
    """Bad input: a message, request, file or argument that does not validate."""


class InvalidMapping(InvalidInput):
    """A NotificationStream or mapping file that does not validate."""


class NotFound(PermanentError):
    """The thing asked for does not exist."""
