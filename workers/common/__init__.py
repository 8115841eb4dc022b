"""The shared kernel: settings, connections, corridor names, wire formats, auth, ops and lifecycle.

It knows no room. Every Redis key, exchange, queue, routing key and HTTP path that two rooms share is
declared here once (`keys`, `topology`, `paths`).
"""
