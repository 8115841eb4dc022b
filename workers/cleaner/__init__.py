"""cleaner: removes bad data from the review bus.

Consumes operator commands (`notifier clean USER`, `--invalid`, `--dry-run`), on a schedule too.
Produces the deletion of a user's bus keys and index entries.
Owns nothing.
"""
