"""The Redis channel layer, with a connection pool that makes a burst of commands wait, not fail,
and a group send of many messages in two round trips and one message per member."""

import logging
import time
from collections import defaultdict

import redis
from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool

log = logging.getLogger(__name__)

# The type of a message that carries several: a member's share of `send_bundled`.
BUNDLE = "layer.bundle"


def unbundled(message: dict) -> list[dict]:
    """The messages `message` carries: a bundle's, in order, or itself alone."""
    return message["messages"] if message["type"] == BUNDLE else [message]


# channels_redis's own group-send script (4.3): each message onto its channel's sorted set, unless
# the channel is at capacity; returns how many were over. Here a microsecond apart: a receive
# takes the lowest score first, and of equal scores the lowest bytes, not the first sent.
_GROUP_SEND = """
local over_capacity = 0
local current_time = tonumber(ARGV[#ARGV - 1])
local expiry = ARGV[#ARGV]
for i=1,#KEYS do
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
        redis.call('ZADD', KEYS[i], current_time + i * 0.000001, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""


class BlockingRedisChannelLayer(RedisChannelLayer):
    """channels_redis on redis-py's blocking pool.

    channels_redis builds redis-py's plain pool, which raises "Too many connections" as soon as
    `max_connections` commands (100 by default) are in flight in one process: 200 pages opening
    their WebSockets at once each join their groups, and half of them were refused. This pool
    makes such a command wait up to `timeout` seconds for a free connection instead.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, redis.Redis] = {}

    def _host(self, index: int) -> tuple[str, dict]:
        """Host `index`'s address and its pool's options (max_connections, timeout)."""
        host = dict(self.hosts[index])
        return host.pop("address"), host

    def create_pool(self, index: int) -> BlockingConnectionPool:
        address, options = self._host(index)
        return BlockingConnectionPool.from_url(address, **options)

    def client(self, index: int) -> redis.Redis:
        """A synchronous client of host `index`, for a sender on a thread of its own."""
        found = self._clients.get(index)
        if found is None:
            address, options = self._host(index)
            pool = redis.BlockingConnectionPool.from_url(address, **options)
            found = self._clients[index] = redis.Redis(connection_pool=pool)
        return found

    def close_clients(self) -> None:
        for client in self._clients.values():
            client.close()
            client.connection_pool.disconnect()
        self._clients = {}

    def send_bundled(self, messages: list[tuple[str, dict]]) -> None:
        """Each (group, message) to every member of its group, as `group_send` would, but each
        member gets the messages of its groups in one message, a `BUNDLE` of them in order; in
        two round trips per Redis host (the groups' members, then every bundle), blocking.

        `group_send` makes four round trips per message, and a member receives one message per
        round trip: the web process heard a batch of six changes from the engine 20 ms after it
        was sent, and its last change later than its first. Blocking, on the engine's sender
        thread: each round trip is one wait for Redis and one for the interpreter lock, where
        redis-py's asyncio client took a turn of the interpreter for each of its awaits.
        """
        now = int(time.time())
        by_host = defaultdict(list)
        for group, _ in messages:
            assert self.require_valid_group_name(group), "Group name not valid"
            by_host[self.consistent_hash(group)].append(group)
        members: dict[str, list[str]] = {}
        for index, groups in by_host.items():
            pipe = self.client(index).pipeline(transaction=False)
            for group in groups:
                key = self._group_key(group)
                pipe.zremrangebyscore(key, min=0, max=now - self.group_expiry)
                pipe.zrange(key, 0, -1)
            replies = pipe.execute()
            for group, names in zip(groups, replies[1::2], strict=True):
                members[group] = [name.decode("utf8") for name in names]
        bundles: dict[str, list[dict]] = defaultdict(list)
        for group, message in messages:
            for channel in members[group]:
                bundles[channel].append(message)
        keys, payloads, capacities = defaultdict(list), defaultdict(list), defaultdict(list)
        for channel, its in bundles.items():
            by_index, payload, capacity = self._map_channel_keys_to_connection(
                [channel], {"type": BUNDLE, "messages": its}
            )
            for index, channel_keys in by_index.items():
                keys[index] += channel_keys
                payloads[index] += [payload[key] for key in channel_keys]
                capacities[index] += [capacity[key] for key in channel_keys]
        for index, channel_keys in keys.items():
            pipe = self.client(index).pipeline(transaction=False)
            for key in dict.fromkeys(channel_keys):
                pipe.zremrangebyscore(key, min=0, max=now - int(self.expiry))
            args = [*payloads[index], *capacities[index], time.time(), self.expiry]
            pipe.eval(_GROUP_SEND, len(channel_keys), *channel_keys, *args)
            over = pipe.execute()[-1]
            if over:
                log.info("%s of %s bundles over their channel's capacity", over, len(channel_keys))
