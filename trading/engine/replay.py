"""Replay a recorded feed through the same parsers, books and detector as the engine.

The clock is the file's: each frame is handled at its recorded receive time.
"""

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from markets.recording import apply_record, read_records
from markets.venues import FEED_CLASSES, VenueConfig
from trading.detector import Cross
from trading.engine.pipeline import Limits, Pipeline
from trading.lifecycle import OpportunityEvent, OpportunityKey

log = logging.getLogger(__name__)
COUNTERS = ("book_updates", "checksum_ok", "checksum_failed", "gaps", "resyncs", "malformed")


def text(value: Decimal | None) -> str | None:
    """An exact decimal as plain text (never exponent notation)."""
    return None if value is None else format(value, "f")


@dataclass
class Listing:
    """What the database says about one venue symbol (None fields: the market is unknown)."""

    market: str | None = None
    lot: Decimal | None = None


@dataclass
class VenueFacts:
    taker_fee_bps: Decimal | None = None
    exchange_id: int | None = None
    listings: dict[str, Listing] = field(default_factory=dict)  # venue symbol -> listing


def recorded_venues(path: str) -> dict[str, tuple[list[str], dict]]:
    """First pass: each venue's subscribed symbols and feed options, from its sent frames."""
    sent: dict[str, list[str]] = {}
    urls: dict[str, str] = {}
    for record in read_records(path):
        venue = record["venue"]
        if record.get("kind") == "sent":
            sent.setdefault(venue, []).append(record["frame"])
        elif record.get("kind") is None and "url" in record:
            urls.setdefault(venue, record["url"])
    found = {}
    for venue in set(sent) | set(urls):
        if venue not in FEED_CLASSES:
            log.warning("replay: no feed module for venue %r; its frames are skipped", venue)
            continue
        found[venue] = FEED_CLASSES[venue].recorded_subscription(
            sent.get(venue, []), urls.get(venue, "")
        )
    return found


def build_venues(
    subscriptions: dict[str, tuple[list[str], dict]],
    facts: dict[str, VenueFacts],
    fee_overrides: dict[str, Decimal],
) -> list[VenueConfig]:
    """Venue configurations for the replay; unknown markets keep the venue's own symbol."""
    venues = []
    for slug, (venue_symbols, options) in sorted(subscriptions.items()):
        known = facts.get(slug, VenueFacts())
        fee_bps = fee_overrides.get(slug, known.taker_fee_bps)
        if fee_bps is None:
            log.warning("replay: no taker fee for %s; using 0 (pass --taker-fee-bps)", slug)
            fee_bps = Decimal(0)
        config = VenueConfig(slug, ws_url="", taker_fee=fee_bps / Decimal(10_000), **options)
        config.exchange_id = known.exchange_id
        for venue_symbol in venue_symbols:
            listing = known.listings.get(venue_symbol, Listing())
            if listing.market is None:
                log.warning(
                    "replay: %s %s is not a known market; replayed under its own symbol",
                    slug,
                    venue_symbol,
                )
            market = listing.market or venue_symbol
            config.symbols[market] = venue_symbol
            config.lots[market] = listing.lot or Decimal("1E-8")
        venues.append(config)
    return venues


def event_json(event: OpportunityEvent) -> dict:
    cross = event.cross
    return {
        "event": event.kind.value,
        "ts": cross.detected_ts if event.closed_at is None else event.closed_at,
        **cross_json(event.key, cross),
        "gross_profit": text(cross.gross_profit),
        "fees": text(cross.fees),
        "peak_net_profit": text(event.peak_net_profit),
        "opened_at": event.opened_at,
        "duration_s": event.duration,
        **({"close_reason": event.close_reason} if event.close_reason else {}),
    }


def cross_json(key: OpportunityKey, cross: Cross) -> dict:
    return {
        "market": key.market,
        "buy_venue": key.buy_venue,
        "sell_venue": key.sell_venue,
        "size": text(cross.size),
        "buy_vwap": text(cross.buy_vwap),
        "sell_vwap": text(cross.sell_vwap),
        "net_profit": text(cross.net_profit),
        "net_bps": text(cross.margin_bps),
    }


class Replay:
    """Feeds one recording's records through a Pipeline and counts what happened."""

    def __init__(self, venues: Iterable[VenueConfig], limits: Limits) -> None:
        self.pipeline = Pipeline(venues, limits)
        self.frames = 0
        self.opened = 0

    def run(self, records: Iterable[dict], emit: Callable[[OpportunityEvent], None]) -> None:
        feeds, detect = self.pipeline.feeds, self.pipeline.detect
        frames = 0
        try:
            for record in records:
                venue = record["venue"]
                feed = feeds.get(venue)
                if feed is None:
                    continue
                ts = record["ts"]
                kind = record.get("kind")
                if kind is None:
                    # `apply_record` of a received frame, inline: the loop's one frequent case.
                    frames += 1
                    changed = feed.handle(record["frame"], ts)
                    if feed.actions:
                        feed.actions.clear()
                else:
                    changed = apply_record(feed, kind, record["frame"], record.get("url", ""), ts)
                if changed:
                    for event in detect(changed, ts, venue):
                        self.opened += event.kind == "open"
                        emit(event)
        finally:
            self.frames += frames

    def summary(self, elapsed_s: float) -> dict:
        feeds = self.pipeline.feeds.values()
        counts = {name: sum(getattr(f.stats, name) for f in feeds) for name in COUNTERS}
        books = {}
        for market, by_venue in sorted(self.pipeline.books.items()):
            for venue, book in sorted(by_venue.items()):
                bid, ask = book.best_bid(), book.best_ask()
                books[f"{venue}:{market}"] = {
                    "bid": text(bid[0]) if bid else None,
                    "ask": text(ask[0]) if ask else None,
                    # An invalid book's top is stale: say so, and why, rather than pass it off.
                    "valid": book.valid,
                    **({} if book.valid else {"invalid_reason": book.invalid_reason}),
                }
        open_at_end = [
            cross_json(key, cross)
            for key, cross in sorted(self.pipeline.tracker.open_crosses().items())
        ]
        return {
            "frames": self.frames,
            **counts,
            "opportunities_opened": self.opened,
            "open_at_end": open_at_end,
            "books_at_end": books,
            "elapsed_s": round(elapsed_s, 3),
            "frames_per_s": round(self.frames / elapsed_s) if elapsed_s > 0 else None,
        }


def replay_file(
    path: str,
    facts: dict[str, VenueFacts],
    limits: Limits,
    fee_overrides: dict[str, Decimal],
    emit: Callable[[OpportunityEvent], None],
) -> dict:
    """Replay `path` and return the summary; `emit` receives each lifecycle event."""
    venues = build_venues(recorded_venues(path), facts, fee_overrides)
    replay = Replay(venues, limits)
    started = time.perf_counter()
    replay.run(read_records(path), emit)
    return replay.summary(time.perf_counter() - started)
