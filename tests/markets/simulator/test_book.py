"""A simulated venue's book: stepping after a mid, the changes it reports, and what orders take."""

import random

import pytest

from markets.simulator.book import SimBook, best_first, diff
from markets.simulator.specs import DEFAULT_PROFILES

PROFILE = DEFAULT_PROFILES["coinbase"]


def stepped(steps: int, seed: int = 1) -> tuple[SimBook, list]:
    """A book walked through `steps` mids near 6,000,000 ticks, and the changes of each step."""
    rng = random.Random(seed)
    book = SimBook(random.Random(seed), PROFILE, size_lots=50)
    mid, changes = 6_000_000, []
    for _ in range(steps):
        mid += rng.randint(-300, 300)
        changes.append(book.step(mid))
    return book, changes


def test_every_step_keeps_about_the_profiles_depth_and_never_crosses():
    rng = random.Random(2)
    book = SimBook(random.Random(2), PROFILE, size_lots=50)
    mid = 6_000_000
    for _ in range(300):
        mid += rng.randint(-300, 300)
        book.step(mid)

        # Churn may take out up to three levels a side; the next step refills them.
        assert PROFILE.levels - 3 <= len(book.bids) <= PROFILE.levels
        assert PROFILE.levels - 3 <= len(book.asks) <= PROFILE.levels
        assert max(book.bids) < mid < min(book.asks)
        assert all(lots > 0 for lots in [*book.bids.values(), *book.asks.values()])


def test_a_steps_changes_take_the_previous_book_to_the_new_one():
    book, _ = stepped(20)
    bids, asks = dict(book.bids), dict(book.asks)

    changes = book.step(6_000_400)

    for side, price, lots in changes:
        levels = bids if side == "bid" else asks
        levels.pop(price, None)
        if lots:
            levels[price] = lots
    assert (bids, asks) == (book.bids, book.asks)
    assert (book.previous[0], book.previous[1]) != (book.bids, book.asks)


def test_diff_lists_removals_then_new_and_changed_levels():
    assert diff("bid", {10: 1, 9: 2, 8: 3}, {10: 1, 9: 5, 7: 4}) == [
        ("bid", 8, 0),
        ("bid", 9, 5),
        ("bid", 7, 4),
    ]


def test_best_first_orders_bids_down_and_asks_up():
    levels = {5: 1, 7: 1, 6: 1}

    assert (best_first(levels, "bid"), best_first(levels, "ask", 2)) == ([7, 6, 5], [5, 6])


def test_take_walks_the_best_asks_up_to_the_limit_and_removes_what_it_empties():
    book = SimBook(random.Random(0), PROFILE, size_lots=1)
    book.replace({99: 5}, {100: 4, 101: 10, 103: 7})

    taken = book.take("ask", 20, limit=102)

    assert taken == [(100, 4), (101, 10)]
    assert book.asks == {103: 7}
    assert book.previous[1] == {100: 4, 101: 10, 103: 7}


@pytest.mark.parametrize(("lots", "taken", "left"), [(3, [(99, 3)], {99: 2, 98: 4}), (0, [], None)])
def test_take_on_the_bids_stops_at_the_size_wanted(lots, taken, left):
    book = SimBook(random.Random(0), PROFILE, size_lots=1)
    book.replace({99: 5, 98: 4}, {100: 1})

    assert book.take("bid", lots, limit=90) == taken
    assert book.bids == (left or {99: 5, 98: 4})


def test_replace_reports_every_level_that_changed():
    book = SimBook(random.Random(0), PROFILE, size_lots=1)
    book.replace({99: 5, 98: 4}, {100: 1})

    changes = book.replace({99: 5, 97: 2}, {100: 3})

    assert changes == [("bid", 98, 0), ("bid", 97, 2), ("ask", 100, 3)]
