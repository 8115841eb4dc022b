"""What the tests share: waiting, processes, metrics, tokens, a room in the test's loop, a Redis of a test's own.

waiting       eventually(probe), wait_ready(ops_url): polling what offers no event to await
processes     start_room / room_process / notifier: rooms and CLI commands as real processes
metrics       sample(name, labels, text=...): one sample of Prometheus text or of this process's registry
tokens        SECRET, token(sub, *roles), bearer(sub, *roles): valid tokens for the tests' rooms
rooms         running_room(room): a room started in the test's event loop, drained as SIGTERM would
bus           indexed(redis, keys, index): the review bus's sharded indexes
redis_server  RedisServer: a redis-server to kill and restart
"""
