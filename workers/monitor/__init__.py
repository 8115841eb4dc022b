"""monitor: alerts on stale users and on users with data who belong to no brand.

Consumes the `pending_since` index, the pending lists' lengths and the mapping (never SCANs the keyspace).
Produces log lines, Prometheus gauges and a findings hash the controller reads for status.
Owns nothing (read-only).
"""
