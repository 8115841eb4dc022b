"""core: the notification store, its HTTP API, broker events and delivery confirmations.

Consumes HTTP from producers and users, and BrokerConfirmation messages (`notifier.confirmations`).
Produces stored notifications and NEW/UPDATED/DELETED events on `notifier.notifications` (via an outbox).
Owns every notification and each user's delivery state.
"""
