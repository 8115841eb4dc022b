"""A small Python client of Notifier for users' devices and end-to-end tests.

`Listener` mints or takes a token, gets a ticket from ws_delivery, opens the WebSocket, yields
notifications and acknowledges every frame, long-polls core while ws_delivery reports its broker lost
(`network_status=ERROR`) and returns to the WebSocket on OK, and reconnects with backoff. `notifier
listen` is its command line.
"""
