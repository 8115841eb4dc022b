"""Prometheus metrics of ws_delivery (`notifier_ws_<noun>_<unit>`, labels from closed sets)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from workers.common.contract import closes

CONNECTIONS = Gauge("notifier_ws_connections", "Open device WebSocket connections.")
MESSAGES_SENT = Counter("notifier_ws_messages_sent_total", "Frames sent to devices for the first time.")
MESSAGES_RESENT = Counter("notifier_ws_messages_resent_total", "Frames sent again because no ack came in time.")
MESSAGES_ACKED = Counter("notifier_ws_messages_acked_total", "Frames acknowledged by devices (first ack only).")
ACK_LATENCY = Histogram(
    "notifier_ws_ack_latency_seconds",
    "From the first send of a frame to its ack.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
EVENT_AGE = Histogram(
    "notifier_ws_event_age_seconds",
    "From a NEW notification's creation in core to its event reaching this instance (outbox, relay, broker).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REFUSED = Counter(
    "notifier_ws_refused_total", "Requests answered 503 because the device port held NOTIFIER_WS_MAX_CONNECTIONS."
)
CLOSES = Counter("notifier_ws_closes_total", "Closed device connections by reason.", ["reason"])
EVENTS = Counter("notifier_ws_events_total", "Notification events consumed, by outcome.", ["outcome"])
CONFIRMATIONS = Counter("notifier_ws_confirmations_published_total", "BrokerConfirmations confirmed by the broker.")
BROKER_CONNECTED = Gauge("notifier_ws_broker_connected", "1 while the RabbitMQ connection is up, else 0.")

for _reason in closes.LABELS:
    CLOSES.labels(_reason)
for _outcome in ("delivered", "duplicate", "invalid"):
    EVENTS.labels(_outcome)
