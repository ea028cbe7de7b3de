"""Hot-path benchmark: a generated 1M-frame recording through `Replay`, against a ccxt baseline.

Frames come from the simulated venues' own formatters, so checksums and sequences are the real ones.
"""

import gc
import heapq
import json
import os
import random
import statistics
import sys
import time
from array import array
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

from markets import core
from markets.recording import apply_record, read_records
from markets.simulator.book import Change
from markets.simulator.market import SimMarket, VenueBook
from markets.simulator.server import VENUE_TYPES
from markets.simulator.specs import (
    DEFAULT_MARKETS,
    DEFAULT_PROFILES,
    SATOSHI,
    MarketSpec,
    SimListing,
    Timing,
)
from markets.simulator.venue import SimVenue
from markets.venues import VenueConfig, make_feed
from markets.venues.feed import Feed
from trading.engine.pipeline import Limits, Pipeline
from trading.engine.replay import Replay

VENUES = ("coinbase", "kraken", "binance")
MARKETS: dict[str, MarketSpec] = {
    **DEFAULT_MARKETS,
    "SOL-USD": MarketSpec(
        mid=Decimal(150),
        size=Decimal(40),
        listings={
            "coinbase": SimListing("SOL-USD", Decimal("0.01"), SATOSHI),
            "kraken": SimListing("SOL/USD", Decimal("0.01"), Decimal("0.00000001")),
            "binance": SimListing("SOLUSDT", Decimal("0.01"), Decimal("0.001")),
        },
    ),
    "XRP-USD": MarketSpec(
        mid=Decimal("0.6"),
        size=Decimal(5000),
        listings={
            "coinbase": SimListing("XRP-USD", Decimal("0.0001"), Decimal("0.000001")),
            "kraken": SimListing("XRP/USD", Decimal("0.00001"), Decimal("0.00000001")),
            "binance": SimListing("XRPUSDT", Decimal("0.0001"), Decimal("0.1")),
        },
    ),
    "DOGE-USD": MarketSpec(
        mid=Decimal("0.15"),
        size=Decimal(20000),
        listings={
            "coinbase": SimListing("DOGE-USD", Decimal("0.00001"), Decimal("0.1")),
            "kraken": SimListing("XDG/USD", Decimal("0.0000001"), Decimal("0.00000001")),
            "binance": SimListing("DOGEUSDT", Decimal("0.00001"), Decimal(1)),
        },
    ),
}
FEES = {"coinbase": Decimal("0.0060"), "kraken": Decimal("0.0026"), "binance": Decimal("0.0010")}
URLS = {
    "coinbase": "ws://127.0.0.1:8765/coinbase",
    "kraken": "ws://127.0.0.1:8765/kraken/v2",
    "binance": "ws://127.0.0.1:8765/binance",
}
BINANCE_REST = "http://127.0.0.1:8765/binance"
KRAKEN_WIRE_DEPTH = 25  # what the Kraken feed subscribes for depth 10
EPOCH = 1_767_225_600.0  # the recording's clock starts here (2026-01-01)
LIMITS = Limits(min_profit_bps=Decimal(0), max_notional=Decimal(50_000), max_book_age_s=2.0)
CACHE = Path(__file__).resolve().parents[1] / "var" / "bench"


def venue_configs() -> list[VenueConfig]:
    """The three venues with all five markets, as the engine would load them."""
    configs = []
    for slug in VENUES:
        listings = {market: spec.listings[slug] for market, spec in MARKETS.items()}
        configs.append(
            VenueConfig(
                slug,
                ws_url=URLS[slug],
                rest_url=BINANCE_REST if slug == "binance" else "",
                taker_fee=FEES[slug],
                symbols={market: listing.symbol for market, listing in listings.items()},
                lots={market: listing.lot for market, listing in listings.items()},
            )
        )
    return configs


# -- generating the recording ------------------------------------------------------------------


class Outbox:
    """Stands in for a simulator `Session`: one subscribed client whose frames we keep."""

    def __init__(self, subs: dict[str, int], combined: bool = False) -> None:
        self.subs = subs
        self.combined = combined
        self.seq = 0
        self.sent: list[str] = []

    def take(self, fault: str, symbol: str) -> bool:
        return False  # no faults: every frame is valid

    def send(self, text: str) -> None:
        self.sent.append(text)


# Most changes per frame: real Coinbase and Kraken messages carry a few levels each, while a
# simulator step moves a dozen; Binance batches 100 ms of changes into one event anyway.
MOST_PER_FRAME = {"coinbase": 4, "kraken": 2, "binance": 1000}


def publish_in_frames(venue: SimVenue, book: VenueBook, changes: list[Change]) -> None:
    """Publish one simulator step as several frames, walking the book through each state.

    Removals go first, so no intermediate book is ever crossed; Kraken's publish diffs its window
    between `previous` and the current sides, so each frame gets its own valid checksum.
    """
    sim = book.book
    final = sim.bids, sim.asks
    sides = {"bid": dict(sim.previous[0]), "ask": dict(sim.previous[1])}
    ordered = sorted(changes, key=lambda change: change[2] != 0)
    most = MOST_PER_FRAME[venue.name]
    while ordered:
        cut = venue.rng.randint(1, most)
        chunk, ordered = ordered[:cut], ordered[cut:]
        sim.previous = dict(sides["bid"]), dict(sides["ask"])
        for side, price, lots in chunk:
            if lots:
                sides[side][price] = lots
            else:
                sides[side].pop(price, None)
        sim.bids, sim.asks = sides["bid"], sides["ask"]
        venue.publish(book, chunk)
    sim.bids, sim.asks = final


def generate(path: Path, frames: int, seed: int) -> None:
    """Write a recording of `frames` received frames from the simulated venues to `path`."""
    timing = Timing()
    markets = {
        symbol: SimMarket(spec, random.Random(f"{seed}:{symbol}"), timing, 0.0)
        for symbol, spec in MARKETS.items()
    }
    venues = {
        name: VENUE_TYPES[name](
            [
                VenueBook(name, market, DEFAULT_PROFILES[name], f"{seed}:{name}:{symbol}")
                for symbol, market in markets.items()
            ],
            timing,
        )
        for name in VENUES
    }
    outboxes = {
        "coinbase": Outbox(dict.fromkeys(venues["coinbase"].books, 0)),
        "kraken": Outbox(dict.fromkeys(venues["kraken"].books, KRAKEN_WIRE_DEPTH)),
        "binance": Outbox(
            {f"{s.lower()}@depth@100ms": 0 for s in venues["binance"].books}, combined=True
        ),
    }
    for name, venue in venues.items():
        venue.sessions = {outboxes[name]}
        for book in venue.books.values():
            book.step(0.0)
    feeds = {config.slug: make_feed(config) for config in venue_configs()}
    written = 0
    with open(path, "wb") as file:

        def write(record: dict) -> None:
            file.write(orjson.dumps(record) + b"\n")

        for slug, feed in feeds.items():
            for text in feed.subscribe_messages():
                write({"ts": EPOCH, "venue": slug, "frame": text, "kind": "sent", "url": feed.url})
        for book in venues["coinbase"].books.values():
            venues["coinbase"]._snapshot(outboxes["coinbase"], book)
        for book in venues["kraken"].books.values():
            outboxes["kraken"].send(venues["kraken"]._snapshot(book, KRAKEN_WIRE_DEPTH))
        # Each clock: (next time, name); names are venue steps, batches and heartbeats.
        clocks = [(0.0, "coinbase"), (0.0, "kraken"), (0.0, "binance"), (0.1, "batch")]
        clocks.append((1.0, "heartbeat"))
        heapq.heapify(clocks)
        urls_written: set[str] = set()
        snapshotted: set[str] = set()
        heartbeats = 0
        while written < frames:
            now, name = heapq.heappop(clocks)
            if name == "batch":
                binance = venues["binance"]
                for symbol in list(binance.first_pending):
                    binance._emit(binance.books[symbol], binance.first_pending.pop(symbol))
                heapq.heappush(clocks, (now + timing.binance_batch, name))
            elif name == "heartbeat":
                heartbeats += 1
                event = {"current_time": "", "heartbeat_counter": heartbeats}
                venues["coinbase"]._send(outboxes["coinbase"], "heartbeats", [event])
                heapq.heappush(clocks, (now + timing.heartbeat, name))
            else:
                venue = venues[name]
                for book in venue.books.values():
                    changes = book.step(now)
                    if changes:
                        publish_in_frames(venue, book, changes)
                step = venue.profile.interval * venue.rng.uniform(0.5, 1.5)
                heapq.heappush(clocks, (now + step, name))
            for slug, outbox in outboxes.items():
                for text in outbox.sent:
                    record = {"ts": EPOCH + now, "venue": slug, "frame": text}
                    if slug not in urls_written:
                        urls_written.add(slug)
                        record["url"] = feeds[slug].url
                    write(record)
                    written += 1
                outbox.sent.clear()
            # Binance books start from a REST snapshot taken after their first diff.
            for symbol in venues["binance"].books:
                if symbol in snapshotted or symbol in venues["binance"].first_pending:
                    continue
                snapshotted.add(symbol)
                _, body = venues["binance"].depth({"symbol": [symbol], "limit": ["1000"]})
                market = feeds["binance"].markets[symbol]
                url = feeds["binance"].snapshot_url(market)
                write(
                    {
                        "ts": EPOCH + now,
                        "venue": "binance",
                        "frame": json.dumps(body, separators=(",", ":")),
                        "kind": "rest",
                        "url": url,
                    }
                )


def recording(frames: int, seed: int) -> Path:
    """Return the cached recording for these parameters, generating it when missing."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"feed-{frames}-seed{seed}-v1.jsonl"
    if not path.exists():
        started = time.perf_counter()
        # Its own partial file: two runs generating at once each write theirs and rename it over
        # the same (deterministic) recording, where one shared partial file was written by both.
        partial = path.with_suffix(f".{os.getpid()}.partial")
        generate(partial, frames, seed)
        partial.rename(path)
        print(f"generated {path} in {time.perf_counter() - started:.0f} s", flush=True)
    return path


# -- measuring ---------------------------------------------------------------------------------


def load(path: Path) -> list[dict]:
    """Every record in memory first, so reading the file is timed by neither side.

    The records are then frozen out of the cyclic GC: a live engine holds no million frames, and
    scanning them at each collection would tax both sides for the harness's sake.
    """
    records = list(read_records(path))
    gc.collect()
    gc.freeze()
    return records


def run_pipeline(
    records: list[dict], detect: bool = True, on: object = None
) -> tuple[float, Replay]:
    """Replay every record through the real path (`Replay` -> `Pipeline`); return seconds taken.

    With `detect=False` the feeds run alone (decoding, validation, books, sequences, checksums),
    which splits the pipeline's time between the feeds and detection. `on` is the core the feeds
    run on (`markets.core`): the active one unless given.
    """
    with core.using(on or core.active()):
        replay = Replay(venue_configs(), LIMITS)
    if not detect:
        replay.pipeline.detect = lambda markets, now, venue=None: []
    started = time.perf_counter()
    replay.run(records, lambda event: None)
    return time.perf_counter() - started, replay


def run_baseline(records: list[dict], loads: Callable[[str], object] = json.loads) -> float:
    """The least a Python bot does: `json.loads` and ccxt's order book, no checks, no detection.

    With `loads=orjson.loads` it is the floor of any Python pipeline: the fastest JSON decoder
    and a sorted book, nothing else (Kraken's numbers as floats, as ccxt keeps them).
    """
    from ccxt.async_support.base.ws.order_book import OrderBook

    kraken_depth = KRAKEN_WIRE_DEPTH
    books: dict[tuple[str, str], OrderBook] = {}

    def book(venue: str, symbol: str, depth: int | None = None) -> OrderBook:
        key = venue, symbol
        if key not in books:
            books[key] = OrderBook({}, depth)
        return books[key]

    def coinbase(msg: dict) -> None:
        for event in msg.get("events", ()):
            if "updates" not in event:
                continue
            target = book("coinbase", event["product_id"])
            if event["type"] == "snapshot":
                target.reset({})
            bids, asks = target["bids"], target["asks"]
            for level in event["updates"]:
                side = bids if level["side"] == "bid" else asks
                side.store(float(level["price_level"]), float(level["new_quantity"]))

    def kraken(msg: dict) -> None:
        if msg.get("channel") != "book":
            return
        for item in msg["data"]:
            target = book("kraken", item["symbol"], kraken_depth)
            if msg["type"] == "snapshot":
                target.reset({})
            for level in item["bids"]:
                target["bids"].store(level["price"], level["qty"])
            for level in item["asks"]:
                target["asks"].store(level["price"], level["qty"])
            target.limit()

    def binance(msg: dict, symbol: str | None = None) -> None:
        data = msg.get("data", msg)  # a REST snapshot body has the same lists, longer names
        target = book("binance", symbol or data["s"])
        for price, qty in data.get("b") or data.get("bids", ()):
            target["bids"].store(float(price), float(qty))
        for price, qty in data.get("a") or data.get("asks", ()):
            target["asks"].store(float(price), float(qty))

    handlers: dict[str, Callable[[dict], None]] = {
        "coinbase": coinbase,
        "kraken": kraken,
        "binance": binance,
    }
    started = time.perf_counter()
    for record in records:
        kind = record.get("kind")
        if kind is None:
            handlers[record["venue"]](loads(record["frame"]))
        elif kind == "rest":
            symbol = parse_qs(urlsplit(record["url"]).query)["symbol"][0]
            binance(loads(record["frame"]), symbol)
    return time.perf_counter() - started


def rss_bytes() -> int:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_latency(records: list[dict]) -> dict:
    """Time `feed.handle` + `pipeline.detect` per frame, as `Replay.run` calls them.

    Frames are split by whether they moved a best bid or ask; memory is sampled as it goes. The
    timings go into arrays sized up front, so the harness itself allocates nothing per frame.
    """
    pipeline = Pipeline(venue_configs(), LIMITS)
    feeds, detect = pipeline.feeds, pipeline.detect
    clock = time.perf_counter_ns
    elapsed = array("q", bytes(8 * len(records)))
    moved = bytearray(len(records))
    venue_of = bytearray(len(records))  # index into VENUES
    venue_index = {venue: i for i, venue in enumerate(VENUES)}
    samples: list[tuple[int, int, int]] = []  # frames, allocated blocks, RSS
    every = max(1, len(records) // 20)

    def tops(feed: Feed) -> list:
        return [(book.best_bid(), book.best_ask()) for book in feed.books.values()]

    timed = 0
    for number, record in enumerate(records):
        feed = feeds[record["venue"]]
        kind, ts = record.get("kind"), record["ts"]
        if kind is not None:  # a REST snapshot (applied, not timed) or a frame we sent
            apply_record(feed, kind, record["frame"], record.get("url", ""), ts)
            continue
        before = tops(feed)
        text = record["frame"]
        started = clock()
        changed = apply_record(feed, None, text, "", ts)
        if changed:
            detect(changed, ts, record["venue"])
        elapsed[timed] = clock() - started
        moved[timed] = tops(feed) != before
        venue_of[timed] = venue_index[record["venue"]]
        timed += 1
        if number % every == 0:
            samples.append((number, sys.getallocatedblocks(), rss_bytes()))
    samples.append((len(records), sys.getallocatedblocks(), rss_bytes()))
    top = [elapsed[i] for i in range(timed) if moved[i]]
    other = [elapsed[i] for i in range(timed) if not moved[i]]
    by_venue = {
        venue: [elapsed[i] for i in range(timed) if moved[i] and venue_of[i] == index]
        for venue, index in venue_index.items()
    }
    return {"top": top, "other": other, "top_by_venue": by_venue, "memory": samples}


def quantile(values: list[int], q: float) -> float:
    """The `q` quantile of nanosecond values, in microseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def check_clean(replay: Replay) -> dict:
    """The run must be honest: every checksum and sequence verified, none failed."""
    summary = replay.summary(1.0)
    for name in ("checksum_failed", "gaps", "malformed"):
        if summary[name]:
            raise RuntimeError(f"generated feed is not clean: {name}={summary[name]}")
    return summary


def main(frames: int = 1_000_000, runs: int = 3, seed: int = 1) -> dict:
    """Generate (or reuse) the recording, time pipeline and baseline `runs` times, report."""
    path = recording(frames, seed)
    records = load(path)
    received = sum(1 for record in records if "kind" not in record)
    print(f"hot path: {received:,} frames, {path.stat().st_size / 1e6:.0f} MB ({path.name})")
    print(f"  core: {core.active().name}", flush=True)
    pipeline_s: list[float] = []
    reference_s: list[float] = []
    baseline_s: list[float] = []
    floor_s: list[float] = []
    feeds_s: list[float] = []
    ratios: list[float] = []
    summary: dict = {}
    for run in range(1, runs + 1):
        gc.collect()
        seconds, replay = run_pipeline(records)
        summary = check_clean(replay)
        del replay
        gc.collect()
        feeds = run_pipeline(records, detect=False)[0]
        gc.collect()
        reference = run_pipeline(records, on=core.REFERENCE)[0]
        reference_s.append(reference)
        gc.collect()
        base = run_baseline(records)
        gc.collect()
        floor = run_baseline(records, orjson.loads)
        pipeline_s.append(seconds)
        feeds_s.append(feeds)
        baseline_s.append(base)
        floor_s.append(floor)
        ratios.append(base / seconds)
        print(
            f"  run {run}: pipeline {received / seconds:,.0f} frames/s, "
            f"baseline {received / base:,.0f} frames/s, ratio {base / seconds:.2f}; "
            f"floor (orjson + ccxt book) {received / floor:,.0f} frames/s, {base / floor:.2f}x; "
            f"feeds alone {received / feeds:,.0f} frames/s; "
            f"pipeline on the reference core {received / reference:,.0f} frames/s, "
            f"ratio {base / reference:.2f}",
            flush=True,
        )
    gc.collect()
    latency = run_latency(records)
    memory = latency["memory"]
    warm = memory[len(memory) // 10]
    end = memory[-1]
    per_frame = (end[2] - warm[2]) / max(1, end[0] - warm[0])
    result = {
        "frames": received,
        "pipeline_fps": received / statistics.median(pipeline_s),
        "baseline_fps": received / statistics.median(baseline_s),
        "ratio": statistics.median(ratios),
        "reference_fps": received / statistics.median(reference_s),
        "reference_ratio": statistics.median(
            [base / ref for base, ref in zip(baseline_s, reference_s, strict=True)]
        ),
        "floor_fps": received / statistics.median(floor_s),
        "floor_ratio": statistics.median(baseline_s) / statistics.median(floor_s),
        # Per frame, in microseconds: where the pipeline's time goes, and the baseline's.
        "feeds_us": statistics.median(feeds_s) / received * 1e6,
        "detect_us": (statistics.median(pipeline_s) - statistics.median(feeds_s)) / received * 1e6,
        "baseline_us": statistics.median(baseline_s) / received * 1e6,
        "top_p50_us": quantile(latency["top"], 0.50),
        "top_p99_us": quantile(latency["top"], 0.99),
        "all_p50_us": quantile(latency["top"] + latency["other"], 0.50),
        "all_p99_us": quantile(latency["top"] + latency["other"], 0.99),
        "top_frames": len(latency["top"]),
        "top_p99_by_venue_us": {
            venue: quantile(values, 0.99) for venue, values in latency["top_by_venue"].items()
        },
        "blocks_growth": end[1] - warm[1],
        "rss_growth_mb": (end[2] - warm[2]) / 1e6,
        "rss_per_frame_b": per_frame,
        "checksums_ok": summary["checksum_ok"],
        "opened": summary["opportunities_opened"],
    }
    print(
        f"  median of {runs}: pipeline {result['pipeline_fps']:,.0f} frames/s, baseline "
        f"{result['baseline_fps']:,.0f} frames/s, ratio {result['ratio']:.2f} (target 2.00)\n"
        f"  the same pipeline on the plain-Python reference core: "
        f"{result['reference_fps']:,.0f} frames/s, ratio {result['reference_ratio']:.2f}\n"
        f"  floor, decode + apply and nothing else (orjson + ccxt book): "
        f"{result['floor_fps']:,.0f} frames/s, {result['floor_ratio']:.2f}x the baseline\n"
        f"  per frame: feeds (decode, validate, apply, sequences, checksums) "
        f"{result['feeds_us']:.2f} us + detection {result['detect_us']:.2f} us, against the "
        f"baseline's {result['baseline_us']:.2f} us (2x needs {result['baseline_us'] / 2:.2f} us "
        f"in all)\n"
        f"  latency receive -> detection, frames that move a top level "
        f"({result['top_frames']:,}): p50 {result['top_p50_us']:.1f} us, "
        f"p99 {result['top_p99_us']:.1f} us (target < 50); p99 by venue: "
        + ", ".join(f"{v} {us:.1f} us" for v, us in result["top_p99_by_venue_us"].items())
        + "\n"
        f"  all frames: p50 {result['all_p50_us']:.1f} us, p99 {result['all_p99_us']:.1f} us\n"
        f"  memory from 10% to the end: {result['blocks_growth']:+,} allocated blocks, RSS "
        f"{result['rss_growth_mb']:+.1f} MB ({result['rss_per_frame_b']:+.2f} B/frame)\n"
        f"  {result['checksums_ok']:,} Kraken checksums verified, none failed; "
        f"{result['opened']:,} opportunities opened",
        flush=True,
    )
    return result
