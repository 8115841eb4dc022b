"""controller: reconciles NotificationStream custom resources (kopf).

Consumes NotificationStream objects from the Kubernetes API.
Produces the brand -> users mapping and stream settings in Redis, the object's status and events.
Owns reconciliation.
"""
