"""What the tests share, in one place; a helper two test directories need lives here, once.

waiting           eventually(probe), wait_ready(ops_url): polling what offers no event to await
processes         start_room, room_process, core_process, notifier: rooms and CLI commands as processes
metrics           sample(name, labels, text=...): one sample of a scraped /metrics or of this process
tokens            SECRET, token(sub, *roles), bearer(sub, *roles): valid tokens for the tests' rooms
rooms             running_room(room): a room started in the test's event loop, drained as SIGTERM would
tcp_proxy         TcpProxy: a proxy in front of Redis, RabbitMQ or core, to cut and restore
bus               indexed(redis, keys, index): the review bus's sharded indexes
redis_server      RedisServer: a redis-server of a test's own, to kill and restart
redis_cluster     RedisCluster: a Redis Cluster of a test session's own
rabbitmq_cluster  RabbitCluster: a RabbitMQ cluster of a test session's own
"""
