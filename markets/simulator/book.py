"""A simulated venue's L2 book in integer ticks and lots: moved step by step after a mid, and
taken from by the orders the venue fills."""

import itertools
import random

from markets.simulator.specs import VenueProfile

Levels = dict[int, int]  # price in ticks -> size in lots
Change = tuple[str, int, int]  # side ("bid"/"ask"), price ticks, new lots (0 removes)


def best_first(levels: Levels, side: str, n: int | None = None) -> list[int]:
    """The prices of `levels`, best first (highest bid, lowest ask), at most `n` of them."""
    return sorted(levels, reverse=side == "bid")[:n]


def diff(side: str, old: Levels, new: Levels) -> list[Change]:
    """Every level of `side` that differs between `old` and `new`, removals first."""
    removed = [(side, p, 0) for p in old if p not in new]
    return removed + [(side, p, q) for p, q in new.items() if old.get(p) != q]


class SimBook:
    """One venue's L2 book; `previous` is the book before the latest change."""

    def __init__(self, rng: random.Random, profile: VenueProfile, size_lots: int) -> None:
        self.rng = rng
        self.profile = profile
        self.size_lots = size_lots
        self.bids: Levels = {}
        self.asks: Levels = {}
        self.previous: tuple[Levels, Levels] = ({}, {})
        self.gap = 1

    def side(self, side: str) -> Levels:
        return self.bids if side == "bid" else self.asks

    def step(self, mid_ticks: int) -> list[Change]:
        """Move the book to a new mid; return every level that changed."""
        self.previous = (dict(self.bids), dict(self.asks))
        profile = self.profile
        self.gap = max(1, round(mid_ticks * profile.span_bps / 10_000 / profile.levels))
        half = max(1, round(mid_ticks * profile.half_spread_bps * self.rng.uniform(0.5, 1.5) / 1e4))
        self._move(self.bids, mid_ticks - half, -1)
        self._move(self.asks, mid_ticks + half, 1)
        self._churn(self.bids, -1)
        self._churn(self.asks, 1)
        return self._changes()

    def replace(self, bids: Levels, asks: Levels) -> list[Change]:
        """Set both sides outright; return every level that changed."""
        self.previous = (dict(self.bids), dict(self.asks))
        self.bids, self.asks = dict(bids), dict(asks)
        return self._changes()

    def take(self, side: str, lots: int, limit: int) -> list[tuple[int, int]]:
        """Take up to `lots` from `side` best first, no level priced beyond `limit` (above it on
        the asks, below it on the bids); return the (price, lots) taken."""
        self.previous = (dict(self.bids), dict(self.asks))
        levels = self.side(side)
        taken = []
        for price in best_first(levels, side):
            if lots == 0 or (price > limit if side == "ask" else price < limit):
                break
            qty = min(levels[price], lots)
            taken.append((price, qty))
            lots -= qty
            levels[price] -= qty
            if not levels[price]:
                del levels[price]
        return taken

    def _changes(self) -> list[Change]:
        old_bids, old_asks = self.previous
        return diff("bid", old_bids, self.bids) + diff("ask", old_asks, self.asks)

    def _size(self, rank: int) -> int:
        # Deeper levels hold more: that is what makes walking the book matter.
        return max(1, round(self.size_lots * (1 + rank / 8) * self.rng.uniform(0.2, 1.8)))

    def _move(self, levels: Levels, best: int, direction: int) -> None:
        """Take out levels through the new best, refill holes near the top, keep the depth."""
        for price in [p for p in levels if (p - best) * direction < 0]:
            del levels[price]
        levels.setdefault(best, self._size(0))
        ordered = sorted(levels, key=lambda p: (p - best) * direction)
        filled = 0
        for rank, (near, far) in enumerate(itertools.pairwise(ordered)):
            if filled == 5:
                break
            if (far - near) * direction > 3 * self.gap:
                hole = near + direction * self.rng.randint(self.gap, 2 * self.gap)
                levels[hole] = self._size(rank)
                filled += 1
        ordered = sorted(levels, key=lambda p: (p - best) * direction)
        while len(ordered) > self.profile.levels:
            del levels[ordered.pop()]
        worst = ordered[-1]
        while len(levels) < self.profile.levels:
            worst += direction * self.rng.randint(1, 2 * self.gap)
            levels[worst] = self._size(len(levels))

    def _churn(self, levels: Levels, direction: int) -> None:
        ordered = sorted(levels, key=lambda p: p * direction)
        for _ in range(self.rng.randint(1, 3)):
            rank = min(int(self.rng.expovariate(0.2)), len(ordered) - 1)
            if rank and self.rng.random() < 0.2:
                levels.pop(ordered[rank], None)
            else:
                levels[ordered[rank]] = self._size(rank)
