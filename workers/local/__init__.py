"""Local mode: every room as a plain process on one machine (`notifier demo`, `notifier up`).

Not a room: it starts rooms the way an orchestrator would, through their command lines, and talks to them
only over their corridors (Redis, RabbitMQ, HTTP and the ops port).
"""
