"""controller: reconciles NotificationStream custom resources (kopf).

Consumes NotificationStream objects from the Kubernetes API, and the monitor's findings hash per stream.
Produces the brand -> users mapping and stream settings in Redis (the same code as `notifier mapping load`),
the object's status (Ready condition, counts, stale/invalid users) and Kubernetes events.
Owns reconciliation, the finalizer `notifier.io/mapping`, and the record of which object owns which stream
(`ControllerKeys.streams`), so that deletes and the startup sweep remove only mappings it wrote.
Replicas coordinate through kopf peering (see `main`).
"""
