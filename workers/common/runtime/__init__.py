"""The kernel's upper floor: what every room needs to run (connections and the one error mapping, AMQP,
the mapping store, auth, the lifecycle, ops, logs, settings, the async idioms). Stands on `contract`."""
