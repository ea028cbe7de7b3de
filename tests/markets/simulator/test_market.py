"""The simulated market model: the shared mid, each venue's lag behind it, and dislocations."""

import random
from decimal import Decimal

from markets.simulator.market import UNIT, SimMarket, VenueBook
from markets.simulator.specs import DEFAULT_MARKETS, DEFAULT_PROFILES, Timing, VenueProfile

SPEC = DEFAULT_MARKETS["BTC-USD"]
TIMING = Timing(dislocation_every=(1.0, 2.0), dislocation_for=(0.5, 1.0))


def market(seed: int = 3) -> SimMarket:
    return SimMarket(SPEC, random.Random(seed), TIMING, start=0.0)


def test_the_mid_walks_from_the_configured_price_one_step_per_market_interval():
    walk = market()

    first = walk.mid(0.0, latency=0.0)
    later = walk.mid(5.0, latency=0.0)

    assert first == int(SPEC.mid / UNIT)
    assert walk.steps == 50
    assert later != first
    assert abs(later - first) / first < 0.01


def test_a_venue_behind_the_market_sees_the_mid_of_its_latency_ago():
    walk = market()
    walk.mid(3.0, latency=0.0)

    lagging = walk.mid(3.0, latency=0.5)

    assert lagging == walk.history[-6]
    assert lagging != walk.history[-1]


def test_a_dislocation_moves_one_venue_by_its_bps_for_a_while_then_ends():
    walk = market()
    offsets = []
    for step in range(1, 200):
        walk.mid(step * TIMING.market_interval, latency=0.0)
        offsets.append({venue: walk.offset_bps(venue) for venue in SPEC.listings})

    dislocated = [o for o in offsets if any(o.values())]
    assert dislocated and len(dislocated) < len(offsets)
    for offset in dislocated:
        moved = [bps for bps in offset.values() if bps]
        assert len(moved) == 1 and 60 <= abs(moved[0]) <= 120


def test_a_venue_book_quotes_around_the_mid_on_its_own_tick():
    walk = market()
    quiet = VenueProfile(0.1, 0.0, 0.0, 0.3, 20, 30.0)
    kraken = VenueBook("kraken", walk, quiet, seed="k")

    kraken.step(0.0)
    bid, ask = kraken.best()

    assert bid < SPEC.mid < ask
    assert (bid % Decimal("0.1"), ask % Decimal("0.1")) == (0, 0)
    assert (ask - bid) / SPEC.mid < Decimal("0.001")


def test_venue_books_of_one_seed_are_the_same_and_of_two_seeds_differ():
    profile = DEFAULT_PROFILES["binance"]
    books = [VenueBook("binance", market(), profile, seed) for seed in ("a", "a", "b")]

    changes = [book.step(1.0) for book in books]

    assert changes[0] == changes[1]
    assert changes[0] != changes[2]
