"""Typed settings read from `NOTIFIER_*` environment variables.

Shared settings have fixed names (`NOTIFIER_REDIS_URL`, ...); a room's own settings are
`NOTIFIER_<ROOM>_<FIELD>`, durations in float seconds with the suffix `_S`. Defaults work for local
mode against Redis and RabbitMQ on 127.0.0.1.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workers.common.contract.addresses import check_redis_url
from workers.common.contract.keys import DEFAULT_SHARDS, MAX_SHARDS, STREAM_PATTERN

MIN_SECRET_BYTES = 32
"""HS256 wants a key of at least its 256-bit output (RFC 7518 section 3.2)."""


AMQP_SCHEMES = ("amqp", "amqps")


def amqp_addresses(value: str) -> list[str]:
    """The broker URLs of `NOTIFIER_AMQP_URL`: one `amqp://` (or `amqps://`) URL, or several separated by
    commas, `amqp://u:p@node-1:5672/,amqp://u:p@node-2:5672/`, each whole with its own credentials, virtual
    host and options (a comma inside one is written `%2C`). Raises ValueError naming the first one that is not
    such a URL, by position, never showing it (it may hold a password)."""
    urls = [part.strip() for part in value.split(",")]
    for position, url in enumerate(urls, 1):
        which = f"address {position} of {len(urls)}" if len(urls) > 1 else "the address"
        parts = urlsplit(url)
        if parts.scheme not in AMQP_SCHEMES:
            raise ValueError(f"{which} is not an amqp:// or amqps:// URL (several are separated by commas)")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if not parts.hostname or port == 0:
            raise ValueError(f"{which} needs a host and, if it names one, a port from 1 to 65535")
    return urls


def _check_amqp_url(value: str) -> str:
    amqp_addresses(value)
    return value


def _shared(name: str) -> AliasChoices:
    return AliasChoices(f"NOTIFIER_{name}")


class CommonSettings(BaseSettings):
    """Settings every room reads. Subclasses set `env_prefix="NOTIFIER_<ROOM>_"` for their own fields."""

    model_config = SettingsConfigDict(
        env_prefix="NOTIFIER_", extra="ignore", populate_by_name=True, allow_inf_nan=False
    )
    """`allow_inf_nan=False`: every duration and limit is finite (`inf` would wait for ever)."""

    redis_url: Annotated[str, AfterValidator(check_redis_url)] = Field(
        "redis://127.0.0.1:6379/0", validation_alias=_shared("REDIS_URL")
    )
    """One node (`redis://`, `rediss://`, `unix://`) or a Redis Cluster (`redis+cluster://host:port,...`), as
    workers/common/contract/addresses.py reads them."""
    redis_wait_replicas: int = Field(0, ge=0, le=16, validation_alias=_shared("REDIS_WAIT_REPLICAS"))
    """Replicas that must have a write the pipeline acts on (a pushed entry, a leased batch, a stored
    notification) before it goes on: 1 with replicas (a Redis Cluster, Sentinel), 0 without."""
    redis_wait_timeout_s: float = Field(1.0, gt=0, le=60, validation_alias=_shared("REDIS_WAIT_TIMEOUT_S"))
    amqp_url: Annotated[str, AfterValidator(_check_amqp_url)] = Field(
        "amqp://guest:guest@127.0.0.1:5672/", validation_alias=_shared("AMQP_URL")
    )
    """One broker or several, comma-separated (`amqp_addresses`); a room starts at a random one of them."""
    content_limit_bytes: int = Field(
        4096,
        ge=256,
        validation_alias=AliasChoices(
            "NOTIFIER_CONTENT_LIMIT_BYTES",
            "NOTIFIER_CORE_CONTENT_LIMIT_BYTES",
            "NOTIFIER_PULLER_MAX_CONTENT_BYTES",
            "NOTIFIER_WS_CONTENT_LIMIT_BYTES",
        ),
    )
    """Largest notification content, one setting for every room: core refuses a larger create (413), the puller
    cuts review ids to fit its digests under it, ws_delivery dead-letters a larger event. The three older
    per-room names are read as the same setting."""
    stream: str = Field("default", validation_alias=_shared("STREAM"), pattern=STREAM_PATTERN)
    shards: int = Field(DEFAULT_SHARDS, ge=1, le=MAX_SHARDS, validation_alias=_shared("SHARDS"))
    """Shards of the stream's keys (workers/common/contract/keys.py). Part of the key layout: every room of a
    stream uses the same count, and the first to start records it (`layout.claim_layout`)."""
    jwt_secret: str = Field("", validation_alias=_shared("JWT_SECRET"), repr=False)
    """HMAC key of bearer tokens. No default: core and ws_delivery refuse to start without it (or a public
    key), and only `notifier up` / `notifier demo` make one up, per run."""
    core_url: str = Field("", validation_alias=_shared("CORE_URL"))
    http_host: str = Field("127.0.0.1", validation_alias=_shared("HTTP_HOST"))
    http_port: int = Field(8000, validation_alias=_shared("HTTP_PORT"), ge=0, le=65535)
    ops_host: str = Field("127.0.0.1", validation_alias=_shared("OPS_HOST"))
    ops_port: int = Field(9100, validation_alias=_shared("OPS_PORT"), ge=0, le=65535)
    log_format: Literal["plain", "json"] = Field("plain", validation_alias=_shared("LOG_FORMAT"))
    log_level: str = Field("INFO", validation_alias=_shared("LOG_LEVEL"))
    shutdown_timeout_s: float = Field(10.0, validation_alias=_shared("SHUTDOWN_TIMEOUT_S"), gt=0)
    connect_timeout_s: float = Field(30.0, validation_alias=_shared("CONNECT_TIMEOUT_S"), gt=0)


class BrokerSettings(CommonSettings):
    """Settings of rooms that talk to RabbitMQ."""

    amqp_namespace: str = Field("", validation_alias=_shared("AMQP_NAMESPACE"), pattern=r"^[A-Za-z0-9._-]{0,64}$")
    amqp_prefetch: int = Field(1000, validation_alias=_shared("AMQP_PREFETCH"), ge=1, le=65535)
    publish_timeout_s: float = Field(
        10.0, gt=0, validation_alias=AliasChoices("NOTIFIER_PUBLISH_TIMEOUT_S", "NOTIFIER_CORE_PUBLISH_TIMEOUT_S")
    )
    """Longest wait for the broker to confirm a published batch (core's outbox relay, ws_delivery's
    confirmations); then the batch is retried. The older `NOTIFIER_CORE_PUBLISH_TIMEOUT_S` is read as the same."""


class MappingReaderSettings(CommonSettings):
    """Settings of rooms that read the mapping (pusher, puller); the field takes the room's own prefix."""

    mapping_refresh_s: float = Field(
        1.0, gt=0, description="How often the mapping pointer and the stream settings are read."
    )


class AuthSettings(CommonSettings):
    """Settings of rooms and commands that verify or mint bearer tokens."""

    jwt_public_key: str = Field("", validation_alias=_shared("JWT_PUBLIC_KEY"))
    """PEM of an RS256 public key; when set, RS256 tokens are accepted besides HS256/HS512."""
    jwt_roles_claim: str = Field("realm_access.roles", validation_alias=_shared("JWT_ROLES_CLAIM"))
    role_produce: str = Field("notifier_produce", validation_alias=_shared("ROLE_PRODUCE"))
    role_admin: str = Field("notifier_admin", validation_alias=_shared("ROLE_ADMIN"))
    jwt_max_lifetime_s: float = Field(86_400.0, validation_alias=_shared("JWT_MAX_LIFETIME_S"), gt=0)
    """A token whose `exp` lies further ahead than this is refused (no token that never expires)."""


class VerifierSettings(AuthSettings):
    """Settings of rooms that verify bearer tokens (core, ws_delivery): they do not start without a key."""

    @model_validator(mode="after")
    def _fail_closed(self) -> Self:
        """Without a key every token would be refused, or, worse, one everybody knows accepted: refuse to start."""
        if not self.jwt_secret and not self.jwt_public_key.strip():
            raise ValueError("NOTIFIER_JWT_SECRET (or NOTIFIER_JWT_PUBLIC_KEY) is not set: tokens cannot be verified")
        if self.jwt_secret and len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"NOTIFIER_JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes")
        return self
