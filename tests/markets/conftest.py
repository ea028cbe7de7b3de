"""The simulated venues on a loopback port, on the test's own event loop."""

import pytest_asyncio

from markets.simulator.server import VenueSimulator
from tests.markets.simulated import FAST


@pytest_asyncio.fixture
async def sim():
    async with VenueSimulator(seed=7, timing=FAST) as simulator:
        yield simulator
