"""The Redis channel layer, with a connection pool that makes a burst of commands wait, not fail."""

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool


class BlockingRedisChannelLayer(RedisChannelLayer):
    """channels_redis on redis-py's blocking pool.

    channels_redis builds redis-py's plain pool, which raises "Too many connections" as soon as
    `max_connections` commands (100 by default) are in flight in one process: 200 pages opening
    their WebSockets at once each join their groups, and half of them were refused. This pool
    makes such a command wait up to `timeout` seconds for a free connection instead.
    """

    def create_pool(self, index: int) -> BlockingConnectionPool:
        host = dict(self.hosts[index])
        return BlockingConnectionPool.from_url(host.pop("address"), **host)
