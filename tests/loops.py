"""Calling into an event loop that serves the simulated venues from a thread of its own."""

import asyncio


def on_loop(loop: asyncio.AbstractEventLoop, function, *args, **kwargs):
    """Run `function` on the venues' loop, where their books and faults live; return its result."""

    async def call():
        return function(*args, **kwargs)

    return asyncio.run_coroutine_threadsafe(call(), loop).result(5)
