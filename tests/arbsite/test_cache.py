"""The Redis caches wait for a free connection under a burst instead of failing."""

import os
import threading

import pytest
from django.core.cache import caches

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis caches")


@pytest.mark.parametrize("alias", ["default", "books"])
def test_a_cache_call_waits_for_a_free_connection_instead_of_failing(alias):
    cache = caches[alias]
    cache.set("pool-test", 1)
    pool = cache._cache._get_connection_pool(write=False)
    held = [pool.get_connection() for _ in range(pool.max_connections)]
    got = []
    reader = threading.Thread(target=lambda: got.append(cache.get("pool-test")))

    try:
        reader.start()
        reader.join(0.3)
        # Every connection is taken: the read waits (redis-py's plain pool raised here).
        assert reader.is_alive() and got == []
    finally:
        for connection in held:
            pool.release(connection)
    reader.join(5)

    assert got == [1]
