"""ws_delivery: pushes notification events to every device of a user over WebSocket.

Consumes notification events (one exclusive queue per instance) and WebSocket acks.
Produces frames to every device of the addressed users and BrokerConfirmation for acknowledged NEW
messages.
Owns tickets, live connections and resend queues.
"""
