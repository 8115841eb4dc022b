"""The NotificationStream spec: parsing and validation, shared by `notifier mapping load` and the controller.

Accepts a NotificationStream document (YAML or JSON, DESIGN section 10) or the prototype's bare mapping
`{"Brand1": [1, 2], "Brand2": [4]}`. Everything the CRD schema checks is checked here too, plus what a
schema cannot say (a user twice in one brand, an empty brand), so a file and a custom resource are
judged alike:

- types are strict, as the API server's: `maxItems: true`, `windowSeconds: "30"` or an integer user id
  in a NotificationStream are refused (only the prototype's bare mapping keeps its integer user ids);
- a key given twice in one mapping is refused naming it (YAML and JSON parsers keep the last silently,
  which drops a brand's users without a word); YAML aliases are refused (a custom resource has none,
  and they let a small file expand without bound);
- a document over `MAX_DOCUMENT_BYTES` (the API server's 3 MiB request limit) is refused unread.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workers.common.contract.errors import InvalidMapping
from workers.common.contract.keys import ID_PATTERN, is_valid_id
from workers.common.contract.stream import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_MONITOR_INTERVAL_S,
    DEFAULT_STALE_AFTER_S,
    DEFAULT_WINDOW_S,
)

"""A stream's defaults, declared once: the spec, the settings read from Redis and (as literals a test checks)
the CRD's `default:`s and the chart's values take them."""
MAX_DOCUMENT_BYTES = 3 * 1024 * 1024
MAX_BRANDS = 10_000
MAX_USERS_PER_BRAND = 10_000
KIND = "NotificationStream"
API_GROUP = "notifier.io"
API_VERSION = "v1alpha1"


class _Spec(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True, strict=True)


class DigestSpec(_Spec):
    window_seconds: float = Field(DEFAULT_WINDOW_S, alias="windowSeconds", ge=0, le=86_400)
    max_items: int = Field(DEFAULT_MAX_ITEMS, alias="maxItems", ge=1, le=100_000)


class MonitorSpec(_Spec):
    stale_after_seconds: float = Field(DEFAULT_STALE_AFTER_S, alias="staleAfterSeconds", ge=1, le=604_800)
    interval_seconds: float = Field(DEFAULT_MONITOR_INTERVAL_S, alias="intervalSeconds", ge=1, le=3_600)


class StreamSpec(_Spec):
    brands: dict[str, list[str]] = Field(max_length=MAX_BRANDS)
    digest: DigestSpec = DigestSpec()
    monitor: MonitorSpec = MonitorSpec()

    @field_validator("brands", mode="before")
    @classmethod
    def _ids_as_strings(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {str(brand): users for brand, users in value.items()}

    @field_validator("brands")
    @classmethod
    def _check_brands(cls, brands: dict[str, list[str]]) -> dict[str, list[str]]:
        problems: list[str] = []
        for brand, users in brands.items():
            if not is_valid_id(brand):
                problems.append(f"brand {brand!r} does not match {ID_PATTERN}")
            if not users:
                problems.append(f"brand {brand!r} has no users")
            if len(users) > MAX_USERS_PER_BRAND:
                problems.append(f"brand {brand!r} has more than {MAX_USERS_PER_BRAND} users")
            seen: set[str] = set()
            for user in users:
                if not is_valid_id(user):
                    problems.append(f"user {user!r} of brand {brand!r} does not match {ID_PATTERN}")
                elif user in seen:
                    problems.append(f"user {user!r} appears twice in brand {brand!r}")
                seen.add(user)
        if problems:
            raise ValueError("; ".join(problems))
        return brands

    @property
    def user_brands(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        for brand, members in self.brands.items():
            for user in members:
                users.setdefault(user, []).append(brand)
        return users


def _users_as_strings(users: Any) -> Any:
    if not isinstance(users, list):
        return users
    return [str(u) if isinstance(u, int) and not isinstance(u, bool) else u for u in users]


def parse_spec(spec: Any) -> StreamSpec:
    """Validate a NotificationStream `spec` (a dict), raising InvalidMapping with every problem found."""
    if not isinstance(spec, dict):
        raise InvalidMapping("spec must be a mapping with a `brands` field")
    try:
        return StreamSpec.model_validate(spec)
    except ValidationError as exc:
        raise InvalidMapping(_describe(exc)) from None


def parse_document(text: str) -> tuple[str | None, StreamSpec]:
    """Parse a file's text: returns (metadata.name or None, spec)."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidMapping(f"document of {size} bytes is over the limit of {MAX_DOCUMENT_BYTES} bytes")
    try:
        docs = [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc is not None]
    except yaml.YAMLError as exc:
        raise InvalidMapping(f"not valid YAML or JSON: {exc}") from None
    if len(docs) != 1:
        raise InvalidMapping(f"expected exactly one document, found {len(docs)}")
    doc = docs[0]
    if not isinstance(doc, dict):
        raise InvalidMapping("expected a NotificationStream or a brand -> users mapping")
    if "kind" in doc or "apiVersion" in doc:
        if doc.get("kind") != KIND or doc.get("apiVersion") != f"{API_GROUP}/{API_VERSION}":
            raise InvalidMapping(f"expected kind {KIND} of apiVersion {API_GROUP}/{API_VERSION}")
        metadata = doc.get("metadata") or {}
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return (str(name) if name else None), parse_spec(doc.get("spec"))
    return None, parse_spec({"brands": {brand: _users_as_strings(users) for brand, users in doc.items()}})


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping and YAML aliases."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.constructor.ConstructorError(None, None, "YAML aliases are not accepted", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
