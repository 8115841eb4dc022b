"""Notifier: aggregated review notifications, delivered reliably to every device.

One subpackage per room (pusher, puller, monitor, cleaner, core, ws_delivery, controller), a small
shared kernel in `workers.common` and the `notifier` command line in `workers.cli`. Rooms never
import each other; they meet through Redis keys, RabbitMQ exchanges, HTTP, WebSocket and the
Kubernetes API, all named once in the kernel.
"""
