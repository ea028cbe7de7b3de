"""What every simulated venue shares: one-shot faults per session and symbols by either name."""

import pytest

from markets.simulator.faults import Faults
from markets.simulator.specs import DEFAULT_MARKETS
from markets.simulator.venue import Session, rfc3339


@pytest.mark.asyncio
async def test_an_armed_fault_fires_once_and_only_for_its_symbol():
    session = Session(ws=None, faults=Faults())
    session.arm("gap", "BTC/USD")

    assert not session.take("gap", "ETH/USD")
    assert session.take("gap", "BTC/USD")
    assert not session.take("gap", "BTC/USD")


@pytest.mark.asyncio
async def test_a_fault_armed_for_every_symbol_fires_on_the_first():
    session = Session(ws=None, faults=Faults())
    session.arm("bad_checksum", None)

    assert not session.take("gap", "ETH/USD")
    assert session.take("bad_checksum", "ETH/USD")
    assert session.armed == []


@pytest.mark.asyncio
async def test_a_venue_takes_a_canonical_or_its_own_symbol_and_refuses_others(sim):
    kraken = sim.venues["kraken"]

    assert kraken.symbol("BTC-USD", DEFAULT_MARKETS) == "BTC/USD"
    assert kraken.symbol("ETH/USD", DEFAULT_MARKETS) == "ETH/USD"
    assert kraken.symbol(None, DEFAULT_MARKETS) is None
    with pytest.raises(ValueError, match="kraken does not list SOL-USD"):
        kraken.symbol("SOL-USD", DEFAULT_MARKETS)


def test_timestamps_carry_the_decimals_asked_for():
    assert len(rfc3339(6)) == len("2026-01-01T00:00:00.123456Z")
    assert rfc3339(9).endswith("Z") and len(rfc3339(9)) == 30
