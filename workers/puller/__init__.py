"""puller: turns each user's due pending entries into ONE digest notification per window.

Consumes per-user pending lists whose digest window is due (the `due` index).
Produces one digest per user per window, handed to a sink (core over HTTP, or the log) with the digest id
as idempotency key.
Owns digest windows, in-flight batches (leased, taken over after a crash) and `last_pulled_at`.
"""
