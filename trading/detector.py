"""Cross-venue arbitrage detection: the depth walk that sizes a cross after both taker fees.

Pure: plain Decimal values in, frozen value objects out; no Django, no I/O.

Conventions, the contract the rest of the product relies on:
- Prices and sizes are exact `Decimal`; levels are `(price, size)`, best first (asks ascending,
  bids descending). Taker fees are Decimal fractions of each leg's quote notional (0.0026 = 26 bps).
- All sums and products are exact: they run in `EXACT`, which raises `decimal.Inexact` rather
  than round. The only rounded numbers are the reported quotients (VWAPs, `margin_bps`): the
  exact quotient cut toward zero to 60 significant digits (`QUOTIENT`).
- A slice of the walk pays when `b*(1 - fee_b) / (a*(1 + fee_a)) - 1 >= min_profit_bps / 10_000`,
  evaluated without division as `b*(1 - fee_b)*10_000 >= a*(1 + fee_a)*(10_000 + min_profit_bps)`.
- Timestamps are float seconds since the epoch, passed through untouched.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import (
    ROUND_DOWN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    localcontext,
)
from functools import cache
from itertools import islice
from math import lcm
from typing import NamedTuple, Protocol

from markets.core import COMPILED, WALK, PairScan, new_of
from markets.money import BPS

type Level = tuple[Decimal, Decimal]

EXACT = Context(prec=60, traps=[Inexact, Rounded, InvalidOperation, DivisionByZero, Overflow])
QUOTIENT = Context(prec=60, rounding=ROUND_DOWN)
ZERO = Decimal(0)
ONE = Decimal(1)
# Exact arithmetic without switching the thread's context (a `localcontext` costs microseconds).
_add, _sub, _mul = EXACT.add, EXACT.subtract, EXACT.multiply


@dataclass(frozen=True, slots=True)
class Cross:
    """The best size to buy on one venue and sell on another, and what it earns.

    `buy_notional`/`sell_notional` are before fees; `fees` = fee_a*buy + fee_b*sell;
    `net_profit` = `gross_profit` - `fees`; `margin_bps` = net / buy notional * 10_000 (the buy
    cost is the buy notional before its fee). `asks_taken`/`bids_taken` are the levels walked on
    each side with the size taken at each, so their last prices bound the execution legs.
    """

    size: Decimal
    buy_vwap: Decimal
    sell_vwap: Decimal
    buy_notional: Decimal
    sell_notional: Decimal
    gross_profit: Decimal
    fees: Decimal
    net_profit: Decimal
    margin_bps: Decimal
    asks_taken: tuple[Level, ...]
    bids_taken: tuple[Level, ...]
    exchange_ts: float | None
    received_ts: float | None
    detected_ts: float

    @property
    def buy_limit(self) -> Decimal:
        """The worst ask price the buy leg needs."""
        return self.asks_taken[-1][0]

    @property
    def sell_limit(self) -> Decimal:
        """The worst bid price the sell leg needs."""
        return self.bids_taken[-1][0]


# `Cross(...)` from its 14 values in field order, in C when the core is built (a frozen
# dataclass's `__init__` costs 1.4 us: one `object.__setattr__` per field).
_new_cross = new_of(Cross)


class OpportunityKey(NamedTuple):
    """One lifecycle: buy `market` on `buy_venue`, sell it on `sell_venue`."""

    market: str
    buy_venue: str
    sell_venue: str


class BookView(Protocol):
    """What the detector reads of a venue's book; `markets.book.Book` satisfies it.

    `asks()` and `bids()` return a fresh best-first iterator on each call.
    """

    @property
    def valid(self) -> bool: ...

    @property
    def exchange_ts(self) -> float | None: ...

    @property
    def received_ts(self) -> float | None: ...

    @property
    def lag(self) -> float: ...

    def asks(self) -> Iterator[Level]: ...

    def bids(self) -> Iterator[Level]: ...


def pays_at_top(
    best_ask: Decimal,
    best_bid: Decimal,
    buy_fee: Decimal,
    sell_fee: Decimal,
    min_profit_bps: Decimal,
) -> bool:
    """Return whether the first slice (best ask against best bid) meets the threshold.

    The prefilter: when it is False, no slice pays and `best_cross` would return None.
    """
    ask_factor, bid_factor = _price_factors(buy_fee, sell_fee, min_profit_bps)
    return EXACT.multiply(best_bid, bid_factor) >= EXACT.multiply(best_ask, ask_factor)


@cache
def common_lot(lot_a: Decimal, lot_b: Decimal) -> Decimal:
    """Return the finest size both venues accept: the coarser lot when one divides the other."""
    with localcontext(EXACT):
        unit = Decimal(1).scaleb(min(lot_a.as_tuple().exponent, lot_b.as_tuple().exponent))
        return lcm(int(lot_a / unit), int(lot_b / unit)) * unit


def best_cross(
    asks: Iterable[Level],
    bids: Iterable[Level],
    *,
    buy_fee: Decimal,
    sell_fee: Decimal,
    min_profit_bps: Decimal,
    buy_lot: Decimal,
    sell_lot: Decimal,
    exchange_ts: float | None,
    received_ts: float | None,
    detected_ts: float,
    max_notional: Decimal | None = None,
    max_base: Decimal | None = None,
    max_quote: Decimal | None = None,
    reads: list[tuple[Level | None, ...]] | None = None,
) -> Cross | None:
    """Return the cross from buying `asks` (venue A) and selling into `bids` (venue B), or None.

    Takes whole slices while they pay and stops at the first that does not; the caps cut the
    last slice: `max_notional` bounds the buy notional before fee, `max_quote` (quote held on A)
    bounds the buy notional including A's fee, `max_base` (base held on B) bounds the size. The
    size is then rounded down to `common_lot(buy_lot, sell_lot)` and the VWAPs recomputed for it.
    Levels are pulled lazily: one past the last slice taken, at most. `reads`, when given,
    receives the ask then the bid levels pulled, each ending in None if its side ran out: all
    the walk read, so books that start with the same levels give the same cross.
    """
    ask_factor, bid_factor = _price_factors(buy_fee, sell_fee, min_profit_bps)
    lot = common_lot(buy_lot, sell_lot)
    caps = _notional_caps(max_notional, max_quote, buy_fee)
    limit = None if max_base is None else _round_down(max_base, lot)
    walked = None
    if WALK is not None and type(asks) is WALK[0] and type(bids) is WALK[0]:
        # Two compiled books: the same walk on their integers (None if a number does not fit).
        walked = WALK[1](asks, bids, *_walk_args(ask_factor, bid_factor, caps, limit, lot))
    if walked is None:
        size, asks_used, bids_used, asks_out, bids_out = _walk(
            iter(asks), iter(bids), ask_factor, bid_factor, caps, limit, lot
        )
    else:
        lots, asks_used, bids_used, asks_out, bids_out = walked
        size = _smaller(_mul(Decimal(lots), lot), limit)  # as `_walk` rounds and caps it
    if reads is not None:
        reads.append((*asks_used, None) if asks_out else tuple(asks_used))
        reads.append((*bids_used, None) if bids_out else tuple(bids_used))
    return _cross_of(
        size, asks_used, bids_used, buy_fee, sell_fee, exchange_ts, received_ts, detected_ts
    )


def _walk_args(
    ask_factor: Decimal,
    bid_factor: Decimal,
    caps: tuple[tuple[Decimal, Decimal], ...],
    limit: Decimal | None,
    lot: Decimal,
) -> tuple:
    """The compiled walk's arguments after its two level iterators (see `markets.core.WALK`)."""
    return (
        _int_factors(ask_factor, bid_factor),
        tuple((_ratio(cap), _ratio(weight)) for cap, weight in caps),
        None if limit is None else _ratio(limit),
        _ratio(lot),
    )


def _cross_of(
    size: Decimal,
    asks_used: list[Level],
    bids_used: list[Level],
    buy_fee: Decimal,
    sell_fee: Decimal,
    exchange_ts: float | None,
    received_ts: float | None,
    detected_ts: float,
) -> Cross | None:
    """The cross of a walk's size over the levels it drew on; None when the size is nil."""
    if size <= 0:
        return None
    stamps = (exchange_ts, received_ts, detected_ts)
    asks_taken, bids_taken = _fill(asks_used, size), _fill(bids_used, size)
    return _report(size, *asks_taken, *bids_taken, buy_fee, sell_fee, stamps)


def find_opportunities(
    market: str,
    books_by_venue: Mapping[str, BookView],
    fees_by_venue: Mapping[str, Decimal],
    lots_by_venue: Mapping[str, Decimal],
    *,
    min_profit_bps: Decimal,
    max_book_age: float,
    now: float,
    max_notional: Decimal | None = None,
    max_lag: float | None = None,
    base_by_venue: Mapping[str, Decimal] | None = None,
    quote_by_venue: Mapping[str, Decimal] | None = None,
    memo: dict | None = None,
) -> dict[OpportunityKey, Cross]:
    """Return the cross of every ordered venue pair of `market` that pays, keyed by pair.

    Invalid books, books received more than `max_book_age` seconds before `now`, and books whose
    last change came more than `max_lag` seconds late by the venue's clock take part in no pair.
    With a balance mapping, a venue missing from it holds nothing. A cross carries the stamps of
    whichever of its two books was received last (the change that revealed it).

    `memo`, a dict the caller keeps per market, carries work from one call to the next: each
    venue's top-of-book products while its best prices are the same objects, and each pair's
    last depth walk with the levels it read. A pair whose walk inputs are equal and whose books
    still start with exactly those levels is not walked again: the walk reads nothing else, so
    the same cross comes back, stamped with the current books' times and `detected_ts=now`.
    Over compiled books without balances, `pair_scan` gives the same loop in C, its prefilter
    and memo on the books' integers (the engine's pipeline uses it).
    """
    # The top-of-book prefilter, per venue rather than per pair: `pays_at_top(a, b, ...)` is
    # `b * bid_factor(fee_b) >= a * ask_factor(fee_a)`, so each venue's two products are enough.
    fresh: dict[str, BookView] = {}
    ask_costs: dict[str, Decimal] = {}
    bid_values: dict[str, Decimal] = {}
    for venue, book in books_by_venue.items():
        received = book.received_ts
        if not book.valid or received is None or now - received > max_book_age:
            continue
        if max_lag is not None and book.lag > max_lag:
            continue
        fresh[venue] = book
        try:
            best_ask, best_bid = book.top_prices()  # `markets.book.Book`: two list reads
        except AttributeError:
            best_ask, best_bid = _top_prices(book)
        fee = fees_by_venue[venue]
        known = None if memo is None else memo.get(venue)
        if (
            known is not None
            and known[0] is best_ask
            and known[1] is best_bid
            and known[2] is fee
            and known[3] is min_profit_bps
        ):
            ask_cost, bid_value = known[4]  # same objects as last time: no Decimal work at all
        else:
            ask_cost, bid_value = top_products(best_ask, best_bid, fee, min_profit_bps)
            if memo is not None:
                memo[venue] = (best_ask, best_bid, fee, min_profit_bps, (ask_cost, bid_value))
        if ask_cost is not None:
            ask_costs[venue] = ask_cost
        if bid_value is not None:
            bid_values[venue] = bid_value
    crosses: dict[OpportunityKey, Cross] = {}
    if not ask_costs or not bid_values or max(bid_values.values()) < min(ask_costs.values()):
        return crosses  # the usual frame: no bid reaches any ask after fees, no depth to walk
    for buy, ask_cost in ask_costs.items():
        for sell, bid_value in bid_values.items():
            if buy == sell or bid_value < ask_cost:
                continue
            buy_book, sell_book = fresh[buy], fresh[sell]
            # Stamps of the book received last (the buy book's on a tie).
            latest = sell_book if sell_book.received_ts > buy_book.received_ts else buy_book
            inputs = (
                fees_by_venue[buy],
                fees_by_venue[sell],
                min_profit_bps,
                lots_by_venue[buy],
                lots_by_venue[sell],
                max_notional,
                _balance(base_by_venue, sell),
                _balance(quote_by_venue, buy),
            )
            reads: list[tuple[Level | None, ...]] | None = None
            if memo is not None:
                pair = (buy, sell)
                last = memo.get(pair)
                if (
                    last is not None
                    and last[0] == inputs
                    and _starts_with(buy_book.asks(), last[1])
                    and _starts_with(sell_book.bids(), last[2])
                ):
                    if (cross := last[3]) is not None:
                        crosses[OpportunityKey(market, buy, sell)] = _restamp(cross, latest, now)
                    continue
                reads = []
            fee_a, fee_b, min_bps, lot_a, lot_b, notional, max_base, max_quote = inputs
            cross = best_cross(
                buy_book.asks(),
                sell_book.bids(),
                buy_fee=fee_a,
                sell_fee=fee_b,
                min_profit_bps=min_bps,
                buy_lot=lot_a,
                sell_lot=lot_b,
                exchange_ts=latest.exchange_ts,
                received_ts=latest.received_ts,
                detected_ts=now,
                max_notional=notional,
                max_base=max_base,
                max_quote=max_quote,
                reads=reads,
            )
            if reads is not None:
                memo[pair] = (inputs, *reads, cross)
            if cross is not None:
                crosses[OpportunityKey(market, buy, sell)] = cross
    return crosses


# The compiled book type when the pair scan is built (None, which no type is, otherwise).
_COMPILED_BOOK = COMPILED.Book if COMPILED is not None and PairScan is not None else None


def pair_scan(
    market: str,
    books_by_venue: Mapping[str, BookView],
    fees_by_venue: Mapping[str, Decimal],
    lots_by_venue: Mapping[str, Decimal],
    min_profit_bps: Decimal,
    max_notional: Decimal | None,
) -> object | None:
    """The compiled `find_opportunities` of these books and inputs without balances
    (`markets.core.PairScan`: `scan(now, max_book_age, max_lag)` gives the same crosses, and
    keeps its own walk memo); None when a book is not compiled or a number does not fit it.
    The caller builds it again when a fee, lot or limit changes."""
    books = tuple(books_by_venue.values())
    if not all(type(book) is _COMPILED_BOOK for book in books):
        return None
    venues = tuple(books_by_venue)
    fees = tuple(map(fees_by_venue.get, venues))
    lots = tuple(map(lots_by_venue.get, venues))
    if None in fees or None in lots or len(books) > 16:
        return None
    factors = top_factors(fees, min_profit_bps)
    if factors is None:
        return None
    pairs = [(i, j) for i in range(len(venues)) for j in range(len(venues))]
    keys = [OpportunityKey(market, venues[i], venues[j]) for i, j in pairs]
    args = []
    for i, j in pairs:
        ask_factor, bid_factor = _price_factors(fees[i], fees[j], min_profit_bps)
        lot = common_lot(lots[i], lots[j])
        caps = _notional_caps(max_notional, None, fees[i])
        args.append(_walk_args(ask_factor, bid_factor, caps, None, lot))

    def finish(pair: int, walked: tuple | None, latest: BookView, now: float) -> Cross | None:
        i, j = pairs[pair]
        stamps = latest.exchange_ts, latest.received_ts, now
        if walked is None:  # a number the integers cannot hold: the `Decimal` walk
            return best_cross(
                books[i].asks(),
                books[j].bids(),
                buy_fee=fees[i],
                sell_fee=fees[j],
                min_profit_bps=min_profit_bps,
                buy_lot=lots[i],
                sell_lot=lots[j],
                exchange_ts=stamps[0],
                received_ts=stamps[1],
                detected_ts=now,
                max_notional=max_notional,
            )
        size = _mul(Decimal(walked[0]), common_lot(lots[i], lots[j]))
        return _cross_of(size, walked[1], walked[2], fees[i], fees[j], *stamps)

    # The fill and report of a walk that ran are done in C on exact integers (`finish` when a
    # number does not fit them): each pair's fees and common lot, the quotient's context.
    fills = [(fees[i], fees[j], common_lot(lots[i], lots[j])) for i, j in pairs]
    return PairScan(list(books), factors, keys, args, fills, finish, QUOTIENT.divide, BPS, Cross)


def _restamp(cross: Cross, latest: BookView, now: float) -> Cross:
    """The same cross with the stamps of `latest` and detected at `now`."""
    # Positional, as the fields are declared: several times cheaper than `dataclasses.replace`.
    return _new_cross(
        cross.size,
        cross.buy_vwap,
        cross.sell_vwap,
        cross.buy_notional,
        cross.sell_notional,
        cross.gross_profit,
        cross.fees,
        cross.net_profit,
        cross.margin_bps,
        cross.asks_taken,
        cross.bids_taken,
        latest.exchange_ts,
        latest.received_ts,
        now,
    )


def _starts_with(levels: Iterator[Level], read: tuple[Level | None, ...]) -> bool:
    """Return whether pulling `levels` as a walk did gives exactly `read` (see `best_cross`)."""
    if read and read[-1] is None:  # the walk ran out: the side must hold these levels, no more
        return tuple(islice(levels, len(read))) == read[:-1]
    return tuple(islice(levels, len(read))) == read


def top_products(
    best_ask: Decimal | None, best_bid: Decimal | None, fee: Decimal, min_profit_bps: Decimal
) -> tuple[Decimal | None, Decimal | None]:
    """Return a venue's (ask cost, bid value) for the prefilter; None for an empty side.

    A pair (buy on A, sell on B) can pay only when B's bid value >= A's ask cost.
    """
    ask_factor, bid_factor = _venue_factors(fee, min_profit_bps)
    return (
        None if best_ask is None else EXACT.multiply(best_ask, ask_factor),
        None if best_bid is None else EXACT.multiply(best_bid, bid_factor),
    )


def top_factors(fees: Iterable[Decimal], min_profit_bps: Decimal) -> list[tuple[int, int]] | None:
    """Each fee's (ask factor, bid factor) as integers over one common denominator, for the
    compiled top-of-book gate (`markets.core.TopGate`); None when one is negative or does not
    fit 64 bits. Scaling every factor by the same number keeps every comparison's answer."""
    ratios = [
        (ask.as_integer_ratio(), bid.as_integer_ratio())
        for ask, bid in (_venue_factors(fee, min_profit_bps) for fee in fees)
    ]
    common = lcm(*(den for pair in ratios for _, den in pair))
    factors = [(an * (common // ad), bn * (common // bd)) for (an, ad), (bn, bd) in ratios]
    if any(not 0 <= value < 2**64 for pair in factors for value in pair):
        return None
    return factors


def _top_prices(book: BookView) -> tuple[Decimal | None, Decimal | None]:
    """Return (best ask price, best bid price) of a book that only offers the level walks."""
    ask, bid = next(book.asks(), None), next(book.bids(), None)
    return (None if ask is None else ask[0], None if bid is None else bid[0])


@cache
def _price_factors(
    buy_fee: Decimal, sell_fee: Decimal, min_profit_bps: Decimal
) -> tuple[Decimal, Decimal]:
    """Return (ask factor, bid factor): a slice pays when bid * bid factor >= ask * ask factor."""
    with localcontext(EXACT):
        return (1 + buy_fee) * (BPS + min_profit_bps), (1 - sell_fee) * BPS


@cache
def _ratio(value: Decimal) -> tuple[int, int]:
    """An exact Decimal as (numerator, denominator), for the compiled walk."""
    return value.as_integer_ratio()


@cache
def _int_factors(ask_factor: Decimal, bid_factor: Decimal) -> tuple[int, int]:
    """(x, y) in integers: a slice pays when bid * x >= ask * y (see `_price_factors`)."""
    (an, ad), (bn, bd) = ask_factor.as_integer_ratio(), bid_factor.as_integer_ratio()
    return bn * ad, an * bd


@cache
def _venue_factors(fee: Decimal, min_profit_bps: Decimal) -> tuple[Decimal, Decimal]:
    """Return (ask factor, bid factor) of a venue with taker fee `fee` (see `_price_factors`)."""
    return _price_factors(fee, ZERO, min_profit_bps)[0], _price_factors(ZERO, fee, ZERO)[1]


def _notional_caps(
    max_notional: Decimal | None, max_quote: Decimal | None, buy_fee: Decimal
) -> tuple[tuple[Decimal, Decimal], ...]:
    """Return the caps as (cap, weight) pairs, each meaning weight * buy notional <= cap."""
    caps = []
    if max_notional is not None:
        caps.append((max_notional, ONE))
    if max_quote is not None:
        caps.append((max_quote, _add(ONE, buy_fee)))
    return tuple(caps)


def _walk(
    asks: Iterator[Level],
    bids: Iterator[Level],
    ask_factor: Decimal,
    bid_factor: Decimal,
    caps: tuple[tuple[Decimal, Decimal], ...],
    limit: Decimal | None,
    lot: Decimal,
) -> tuple[Decimal, list[Level], list[Level], bool, bool]:
    """Return the lot-rounded size that pays within the caps, and the levels it draws on.

    The two-pointer walk: each slice is the smaller of what is left at the current ask and bid
    level. A level is pulled only when the one before is used up, and its price is multiplied by
    its factor once, however many slices it gives. `limit` is the base cap in lots, or None.
    The levels come back as pulled, whole: every one but the last on each side was used up, so
    the first `size` of each side's levels is what fills it (`_fill`); the two flags say
    whether a side ran out.
    """
    asks_used: list[Level] = []
    bids_used: list[Level] = []
    ask, bid = next(asks, None), next(bids, None)
    if ask is None or bid is None:
        asks_used += () if ask is None else (ask,)
        bids_used += () if bid is None else (bid,)
        return ZERO, asks_used, bids_used, ask is None, bid is None
    asks_used.append(ask)
    bids_used.append(bid)
    (a, ask_left), (b, bid_left) = ask, bid
    ask_cost, bid_value = _mul(a, ask_factor), _mul(b, bid_factor)
    size = notional = ZERO
    asks_out = bids_out = False
    while True:
        q = ask_left if ask_left < bid_left else bid_left
        if q:
            if bid_value < ask_cost:
                break
            after = _add(notional, _mul(a, q))
            for cap, weight in caps:
                if (after if weight is ONE else _mul(weight, after)) > cap:
                    cut = _cut_size(caps, a, q, size, notional, lot)
                    return _smaller(cut, limit), asks_used, bids_used, False, False
            size = _add(size, q)
            notional = after
            if limit is not None and size >= limit:
                break
            ask_left, bid_left = _sub(ask_left, q), _sub(bid_left, q)
        if not ask_left:
            if (ask := next(asks, None)) is None:
                asks_out = True
                break
            asks_used.append(ask)
            a, ask_left = ask
            ask_cost = _mul(a, ask_factor)
        if not bid_left:
            if (bid := next(bids, None)) is None:
                bids_out = True
                break
            bids_used.append(bid)
            b, bid_left = bid
            bid_value = _mul(b, bid_factor)
    return _smaller(_round_down(size, lot), limit), asks_used, bids_used, asks_out, bids_out


def _cut_size(
    caps: tuple[tuple[Decimal, Decimal], ...],
    a: Decimal,
    q: Decimal,
    size: Decimal,
    notional: Decimal,
    lot: Decimal,
) -> Decimal:
    """Return the lot-rounded size at which a cap cuts the slice (a, q); at least one does.

    Cap (c, w) stops at size + (c - w*notional) / (w*a); in lots that is one integer division.
    """
    cut = None
    for cap, weight in caps:
        if _mul(weight, _add(notional, _mul(a, q))) > cap:
            per_size = _mul(weight, a)
            room = _sub(_add(_mul(per_size, size), cap), _mul(weight, notional))
            lots = EXACT.divide_int(room, _mul(per_size, lot))
            cut = _smaller(_mul(lots, lot), cut)
    assert cut is not None, "called without a cap that cuts"
    return cut


def _fill(levels: list[Level], size: Decimal) -> tuple[tuple[Level, ...], Decimal]:
    """Return the (price, size) taken per level to fill `size` best first, and their notional."""
    taken: list[Level] = []
    left = size
    notional = ZERO
    for price, available in levels:
        if not available:
            continue  # an empty level gives no slice (a `BookView` may hold one)
        q = available if available < left else left
        taken.append((price, q))
        notional = _add(notional, _mul(price, q))
        left = _sub(left, q)
        if not left:
            break
    return tuple(taken), notional


def _report(
    size: Decimal,
    asks_taken: tuple[Level, ...],
    buy_notional: Decimal,
    bids_taken: tuple[Level, ...],
    sell_notional: Decimal,
    buy_fee: Decimal,
    sell_fee: Decimal,
    stamps: tuple[float | None, float | None, float],
) -> Cross:
    gross = _sub(sell_notional, buy_notional)
    fees = _add(_mul(buy_fee, buy_notional), _mul(sell_fee, sell_notional))
    net = _sub(gross, fees)
    return _new_cross(
        size,
        QUOTIENT.divide(buy_notional, size),  # buy_vwap
        QUOTIENT.divide(sell_notional, size),  # sell_vwap
        buy_notional,
        sell_notional,
        gross,
        fees,
        net,
        QUOTIENT.divide(_mul(net, BPS), buy_notional),  # margin_bps
        asks_taken,
        bids_taken,
        *stamps,  # exchange_ts, received_ts, detected_ts
    )


def _round_down(size: Decimal, lot: Decimal) -> Decimal:
    return _mul(EXACT.divide_int(size, lot), lot)


def _smaller(value: Decimal, other: Decimal | None) -> Decimal:
    return value if other is None or value < other else other


def _balance(balances: Mapping[str, Decimal] | None, venue: str) -> Decimal | None:
    return None if balances is None else balances.get(venue, ZERO)
