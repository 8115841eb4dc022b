"""A small Python client of Notifier for users' devices and end-to-end tests.

`Listener` is one device of a user (DESIGN section 9, the device protocol): it gets a ticket from
ws_delivery, opens the WebSocket, acknowledges every frame, then reads the user's feed in core after the
device's cursor (`DeviceState`), shows every change once, long-polls the feed while ws_delivery reports its
broker lost (`network_status=ERROR`) and returns to the WebSocket on OK, and reconnects with backoff.
`notifier listen` is its command line.
"""
