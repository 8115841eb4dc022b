"""pusher: fans review events out to the pending lists of the brand's users.

Consumes ReviewEvent messages from the quorum queue `notifier.reviews` (and the CLI generators).
Produces per-user pending entries in Redis, keeping the `due` and `pending_since` indexes right.
Owns the fan-out brand -> users.
"""
