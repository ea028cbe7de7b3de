"""Fixtures for the trading tests: the simulated venues a live desk trades against, and the
alerts the desk queues."""

import asyncio

import pytest

from markets.simulator.server import VenueSimulator
from markets.simulator.specs import MarketSpec, SimListing
from tests.trading.execution.live import MARKET, STILL, VENUES, D


@pytest.fixture
def sim(loop):
    """The three simulated venues on one free loopback port, each listing BTC against USDT."""
    listings = {
        slug: SimListing(symbol, tick, lot) for slug, (symbol, tick, lot, _) in VENUES.items()
    }
    markets = {MARKET: MarketSpec(mid=D(101), size=D(1), listings=listings)}
    simulator = VenueSimulator(markets=markets, profiles=dict.fromkeys(VENUES, STILL))
    asyncio.run_coroutine_threadsafe(simulator.start(), loop).result(5)
    yield simulator
    asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(5)


@pytest.fixture
def alerts_sent(settings, monkeypatch, fresh_cache) -> list[tuple[str, str]]:
    """Alerts configured; each (title, body) the send_alert task is queued with, not sent."""
    from risk.tasks import send_alert

    settings.ALERT_URLS = ["json://127.0.0.1:9/alerts"]
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(send_alert, "delay", lambda title, body: sent.append((title, body)))
    return sent
