# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True
# (C division on the i128s: Cython's Python-style helpers would cut them to 64 bits.)
"""Compiled book sides on integers, the venues' level parsing, and Kraken's CRC32 in C.

The plain-Python reference is `markets.book`; `markets.core` says which one runs. Numbers are
fixed point at 18 decimals in C `__int128` (prices below 1e12 and sizes below 1e15 fit with room
to spare), so ordering, zero tests and the crossed check never touch a `Decimal`. A wire number
that is not plain decimal text with at most 18 decimals, or is out of bounds, is a malformed
level (ValueError), never rounded: the same rule `markets.book.parse_level` applies.

Each level keeps its wire text: the `Decimal` pair a reader asks for is built from it once and
cached (Decimal only at the edge), and Kraken's checksum is computed from it in C.
"""

from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memmove

from decimal import Decimal

cdef extern from *:
    """
    #include <stdint.h>
    typedef __int128 core_i128;
    #define CORE_SCALE ((core_i128)1000000000000000000LL)
    static uint32_t core_crc_table[256];
    static void core_crc_init(void) {
        for (uint32_t n = 0; n < 256; n++) {
            uint32_t c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            core_crc_table[n] = c;
        }
    }
    static uint32_t core_crc_update(uint32_t crc, const char *p, Py_ssize_t n) {
        for (Py_ssize_t i = 0; i < n; i++) crc = core_crc_table[(crc ^ (uint8_t)p[i]) & 0xFF] ^ (crc >> 8);
        return crc;
    }
    """
    # Cython only needs to know it is an integer; it is never converted to a Python int.
    ctypedef long long i128 "core_i128"
    i128 SCALE "CORE_SCALE"
    ctypedef unsigned int uint32_t
    void core_crc_init()
    uint32_t core_crc_update(uint32_t crc, const char *p, Py_ssize_t n)

core_crc_init()

cdef i128 MAX_PRICE = SCALE * 1000000000000LL  # 1e12, as markets.book.MAX_PRICE
cdef i128 MAX_SIZE = SCALE * 1000000000000000LL  # 1e15, as markets.book.MAX_SIZE
cdef int DECIMALS = 18
# More integer digits than this is beyond every bound, and would not fit the arithmetic.
cdef int MAX_INT_DIGITS = 16


cdef bint _fixed(object text, i128 *out, int *places):
    """Plain decimal text -> fixed point; False for anything else (sign, exponent, spaces...)."""
    cdef Py_ssize_t n, i = 0
    cdef const char *s
    cdef i128 whole = 0, frac = 0
    cdef int digits = 0, decimals = 0
    cdef char c
    if type(text) is not str:
        return False
    s = PyUnicode_AsUTF8AndSize(text, &n)
    while i < n:
        c = s[i]
        if c < 48 or c > 57:
            break
        if digits or c != 48:
            digits += 1
            if digits > MAX_INT_DIGITS:
                return False
        whole = whole * 10 + (c - 48)
        i += 1
    if i == 0:
        return False
    if i < n:
        if s[i] != 46:  # '.'
            return False
        i += 1
        if i == n:
            return False
        while i < n:
            c = s[i]
            if c < 48 or c > 57:
                return False
            decimals += 1
            if decimals > DECIMALS:
                return False
            frac = frac * 10 + (c - 48)
            i += 1
    places[0] = decimals
    while decimals < DECIMALS:
        frac *= 10
        decimals += 1
    out[0] = whole * SCALE + frac
    return True


cdef class Levels:
    """One side's validated levels of a frame, in wire order: fixed-point numbers and wire text."""

    cdef i128 *price
    cdef i128 *size
    cdef Py_ssize_t n, cap
    cdef list price_text
    cdef list size_text
    # The Decimal pairs, when the levels came as Decimals (`_as_levels`); else None.
    cdef list pairs
    # The most decimals any price / size text had (the walk's fixed point, `Side.places`).
    cdef int price_places, size_places

    def __cinit__(self):
        self.price_places = self.size_places = 0
        self.n = 0
        self.cap = 0
        self.price = NULL
        self.size = NULL
        self.price_text = []
        self.size_text = []
        self.pairs = None

    def __dealloc__(self):
        free(self.price)
        free(self.size)

    def __len__(self):
        return self.n

    cdef int add(self, object price, object size) except -1:
        cdef i128 p, q
        cdef Py_ssize_t cap
        cdef int pp, qp
        if not _fixed(price, &p, &pp) or not _fixed(size, &q, &qp):
            raise ValueError(f"not a plain number {price!r} {size!r}")
        if not (0 < p < MAX_PRICE and 0 <= q < MAX_SIZE):
            raise ValueError(f"absurd level {price!r} {size!r}")
        if self.n == self.cap:
            cap = 8 if self.cap == 0 else self.cap * 2
            _grow(&self.price, &self.size, cap)
            self.cap = cap
        self.price[self.n] = p
        self.size[self.n] = q
        self.n += 1
        if pp > self.price_places:
            self.price_places = pp
        if qp > self.size_places:
            self.size_places = qp
        self.price_text.append(price)
        self.size_text.append(size)
        return 0


cdef int _grow(i128 **price, i128 **size, Py_ssize_t cap) except -1:
    cdef i128 *p = <i128 *> realloc(price[0], cap * sizeof(i128))
    if p == NULL:
        raise MemoryError()
    price[0] = p
    p = <i128 *> realloc(size[0], cap * sizeof(i128))
    if p == NULL:
        raise MemoryError()
    size[0] = p
    return 0


def parse_pairs(levels) -> Levels:
    """Binance's `[[price, qty], ...]` (REST snapshot and diffs) into levels."""
    cdef Levels out = Levels()
    cdef object level
    for level in levels:
        price, size = level
        out.add(price, size)
    return out


cdef inline object _lexeme(object value):
    # A JSON integer is the one number msgspec hands over as a number; its str is its text.
    return str(value) if type(value) is int else value


def parse_kraken(levels) -> Levels:
    """Kraken v2's `[{"price": ..., "qty": ...}, ...]` (numbers as their JSON text) into levels."""
    cdef Levels out = Levels()
    for level in levels:
        out.add(_lexeme(level["price"]), _lexeme(level["qty"]))
    return out


def parse_coinbase(updates) -> tuple:
    """Coinbase level2 `updates` into (bid levels, ask levels); raise on an unknown side."""
    cdef Levels bids = Levels(), asks = Levels()
    for update in updates:
        price, size = update["price_level"], update["new_quantity"]
        side = update["side"]
        if side == "bid":
            bids.add(price, size)
        elif side == "offer":
            asks.add(price, size)
        else:
            _fixed_or_raise(price, size)
            raise ValueError(f"unknown side {side!r}")
    return bids, asks


cdef int _fixed_or_raise(object price, object size) except -1:
    # The reference validates the level before it reads the side: same error for the same frame.
    Levels().add(price, size)
    return 0


cdef class Side:
    """One side, sorted ascending by key with the best level last (bids: key = price; asks:
    key = -price), so most changes, near the top, move few entries."""

    cdef i128 *key
    cdef i128 *size
    cdef Py_ssize_t n, cap
    cdef int sign
    # Per level: the text the price was first set with (its Decimal, as the reference's dict key
    # keeps the first key), the latest wire price and size text (the checksum's), the cached
    # Decimal pair or None.
    cdef list key_text
    cdef list wire_price
    cdef list wire_size
    cdef list decimals
    # The most decimals a price / size ever set here had, never lowered: every level is a whole
    # number at 10^-places, the scale the walk computes in.
    cdef int price_places, size_places

    def __cinit__(self, int sign):
        self.price_places = self.size_places = 0
        self.sign = sign
        self.n = self.cap = 0
        self.key = self.size = NULL
        self.key_text = []
        self.wire_price = []
        self.wire_size = []
        self.decimals = []

    def __dealloc__(self):
        free(self.key)
        free(self.size)

    cdef Py_ssize_t find(self, i128 k):
        """The first index whose key is >= k."""
        cdef Py_ssize_t lo = 0, hi = self.n, mid
        # Most changes land at the top: check the last few entries before bisecting.
        if hi and self.key[hi - 1] < k:
            return hi
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.key[mid] < k:
                lo = mid + 1
            else:
                hi = mid
        return lo

    cdef int set(self, i128 price, i128 size, object ptext, object stext, object pair) except -1:
        cdef i128 k = price if self.sign > 0 else -price
        cdef Py_ssize_t i = self.find(k), cap
        if i < self.n and self.key[i] == k:
            if size:
                self.size[i] = size
                self.wire_price[i] = ptext
                self.wire_size[i] = stext
                self.decimals[i] = pair
            else:
                self.remove(i, 1)
            return 0
        if not size:
            return 0  # removing an unknown level is normal (Binance beyond the snapshot)
        if self.n == self.cap:
            cap = 32 if self.cap == 0 else self.cap * 2
            _grow(&self.key, &self.size, cap)
            self.cap = cap
        if i < self.n:
            memmove(&self.key[i + 1], &self.key[i], (self.n - i) * sizeof(i128))
            memmove(&self.size[i + 1], &self.size[i], (self.n - i) * sizeof(i128))
        self.key[i] = k
        self.size[i] = size
        self.n += 1
        self.key_text.insert(i, ptext)
        self.wire_price.insert(i, ptext)
        self.wire_size.insert(i, stext)
        self.decimals.insert(i, pair)
        return 0

    cdef void remove(self, Py_ssize_t i, Py_ssize_t count):
        """Drop `count` entries from index i."""
        cdef Py_ssize_t rest = self.n - i - count
        if rest > 0:
            memmove(&self.key[i], &self.key[i + count], rest * sizeof(i128))
            memmove(&self.size[i], &self.size[i + count], rest * sizeof(i128))
        self.n -= count
        del self.key_text[i:i + count]
        del self.wire_price[i:i + count]
        del self.wire_size[i:i + count]
        del self.decimals[i:i + count]

    cdef void clear(self):
        self.n = 0
        del self.key_text[:]
        del self.wire_price[:]
        del self.wire_size[:]
        del self.decimals[:]

    cdef object level(self, Py_ssize_t rank):
        """The (price, size) Decimals of the `rank`-th best level, built once from the text."""
        cdef Py_ssize_t i = self.n - 1 - rank
        cached = self.decimals[i]
        if cached is None:
            cached = (Decimal(self.key_text[i]), Decimal(self.wire_size[i]))
            self.decimals[i] = cached
        return cached

    cdef uint32_t crc(self, uint32_t crc, Py_ssize_t count):
        """Feed the best `count` levels' checksum text (wire digits, leading zeros cut) to crc."""
        cdef Py_ssize_t i, stop = self.n - count if self.n > count else 0
        for i in range(self.n - 1, stop - 1, -1):
            crc = _crc_text(crc, self.wire_price[i])
            crc = _crc_text(crc, self.wire_size[i])
        return crc


cdef uint32_t _crc_text(uint32_t crc, str text):
    """Kraken's fragment of one number: its wire text without '.' and leading zeros."""
    cdef Py_ssize_t n, i = 0, start
    cdef const char *s = PyUnicode_AsUTF8AndSize(text, &n)
    while i < n and (s[i] == 48 or s[i] == 46):
        i += 1
    start = i
    while i < n:
        if s[i] == 46:
            crc = core_crc_update(crc, s + start, i - start)
            start = i + 1
        i += 1
    return core_crc_update(crc, s + start, n - start)


cdef class LevelIter:
    """Best-first (price, size) Decimals of one side, for a depth walk."""

    cdef Side side
    cdef Py_ssize_t rank

    def __iter__(self):
        return self

    def __next__(self):
        if self.rank >= self.side.n:
            raise StopIteration
        self.rank += 1
        return self.side.level(self.rank - 1)


cdef class Book:
    """The compiled L2 book, with `markets.book.Book`'s interface: changes come as `Levels` from
    the parse functions (the hot path) or as the reference's `WireLevel`s."""

    cdef Side _bids
    cdef Side _asks
    cdef public str venue
    cdef public str market
    cdef public object depth
    cdef public object sequence
    cdef public object exchange_ts
    cdef public object received_ts
    cdef public double lag
    cdef public long long updates
    cdef public bint valid
    cdef public object invalid_reason

    def __init__(self, str venue, str market, depth=None):
        self.venue = venue
        self.market = market
        self.depth = depth
        self._bids = Side(1)
        self._asks = Side(-1)
        self.sequence = None
        self.exchange_ts = None
        self.received_ts = None
        self.lag = 0.0
        self.updates = 0
        self.valid = False
        self.invalid_reason = "no snapshot yet"

    # -- changing the book -----------------------------------------------------------------

    def load(self, bids, asks, sequence=None):
        """Replace the whole book with a snapshot and mark it valid."""
        self.clear()
        _apply(self._bids, bids)
        _apply(self._asks, asks)
        self.sequence = sequence
        self.valid = True
        self.invalid_reason = None

    def apply(self, bids, asks):
        """Apply validated level changes in wire order, then truncate to depth."""
        _apply(self._bids, bids)
        _apply(self._asks, asks)
        if self.depth is not None:
            self.truncate(self.depth)
        self.updates += 1

    def set_bid(self, price, size, text=None):
        """Set the bid at `price` (Decimal) to the absolute `size`; size 0 removes the level."""
        _apply(self._bids, ((price, size),))

    def set_ask(self, price, size, text=None):
        """Set the ask at `price` (Decimal) to the absolute `size`; size 0 removes the level."""
        _apply(self._asks, ((price, size),))

    def truncate(self, Py_ssize_t depth):
        """Drop levels beyond `depth` per side: Kraken sends no deletes for levels leaving scope."""
        if self._bids.n > depth:
            self._bids.remove(0, self._bids.n - depth)
        if self._asks.n > depth:
            self._asks.remove(0, self._asks.n - depth)

    def clear(self):
        """Empty both sides (validity is left to the caller)."""
        self._bids.clear()
        self._asks.clear()

    def invalidate(self, str reason):
        """Mark the book unusable until the next snapshot; levels stay for inspection."""
        self.valid = False
        self.invalid_reason = reason

    def stamp(self, exchange_ts, received_ts, double lag=0.0):
        """Record when the change happened at the venue, when we received it, and how late."""
        self.exchange_ts = exchange_ts
        self.received_ts = received_ts
        self.lag = lag

    # -- reading the book ------------------------------------------------------------------

    def best_bid(self):
        """Return (price, size) of the best bid, or None."""
        return self._bids.level(0) if self._bids.n else None

    def best_ask(self):
        """Return (price, size) of the best ask, or None."""
        return self._asks.level(0) if self._asks.n else None

    def top_prices(self):
        """Return (best ask price, best bid price), None for an empty side."""
        return (
            self._asks.level(0)[0] if self._asks.n else None,
            self._bids.level(0)[0] if self._bids.n else None,
        )

    @property
    def crossed(self):
        """True if the best bid is at or above the best ask."""
        cdef Side b = self._bids, a = self._asks
        return bool(b.n and a.n and b.key[b.n - 1] >= -a.key[a.n - 1])

    def bids(self):
        """Yield (price, size) best (highest) first, for a depth walk."""
        cdef LevelIter it = LevelIter.__new__(LevelIter)
        it.side = self._bids
        return it

    def asks(self):
        """Yield (price, size) best (lowest) first, for a depth walk."""
        cdef LevelIter it = LevelIter.__new__(LevelIter)
        it.side = self._asks
        return it

    def __len__(self):
        return self._bids.n + self._asks.n

    def top(self, Py_ssize_t n=10):
        """Return a plain snapshot of the best `n` levels per side with the book's stamps."""
        return {
            "venue": self.venue,
            "market": self.market,
            "bids": [self._bids.level(i) for i in range(min(n, self._bids.n))],
            "asks": [self._asks.level(i) for i in range(min(n, self._asks.n))],
            "sequence": self.sequence,
            "exchange_ts": self.exchange_ts,
            "received_ts": self.received_ts,
            "lag": self.lag,
            "valid": self.valid,
        }

    def checksum(self):
        """Kraken CRC32 over the wire text of the top 10 asks (ascending) then 10 bids
        (descending), computed in C from each level's cached text."""
        cdef uint32_t crc = 0xFFFFFFFF
        crc = self._asks.crc(crc, 10)
        crc = self._bids.crc(crc, 10)
        return crc ^ 0xFFFFFFFF


cdef int _apply(Side side, object changes) except -1:
    cdef Levels levels = _as_levels(changes)
    cdef Py_ssize_t i
    if levels.price_places > side.price_places:
        side.price_places = levels.price_places
    if levels.size_places > side.size_places:
        side.size_places = levels.size_places
    for i in range(levels.n):
        side.set(
            levels.price[i],
            levels.size[i],
            levels.price_text[i],
            levels.size_text[i],
            None if levels.pairs is None else levels.pairs[i],
        )
    return 0


cdef Levels _as_levels(object changes):
    """`Levels` as they are; `markets.book` `WireLevel`s (Decimal price, size, text) converted.

    The second is the reference book's interface, for callers that build levels themselves
    (tests, tools): each Decimal's plain text becomes the level's wire text.
    """
    if type(changes) is Levels:
        return changes
    cdef Levels out = Levels()
    out.pairs = []
    for change in changes:
        price, size = change[0], change[1]
        out.add(format(price, "f"), format(size, "f"))
        out.pairs.append((price, size))
    return out


# -- the depth walk --------------------------------------------------------------------------

cdef extern from *:
    """
    static int core_mul(core_i128 a, core_i128 b, core_i128 *out) {
        return __builtin_mul_overflow(a, b, out);
    }
    static int core_add(core_i128 a, core_i128 b, core_i128 *out) {
        return __builtin_add_overflow(a, b, out);
    }
    static core_i128 core_join(long long hi, unsigned long long lo) {
        return (core_i128)(((unsigned __int128)(core_i128)hi << 64) | lo);
    }
    static long long core_hi(core_i128 v) { return (long long)(v >> 64); }
    static unsigned long long core_lo(core_i128 v) { return (unsigned long long)v; }
    static int core_fits64(core_i128 v) { return v >= INT64_MIN && v <= INT64_MAX; }
    """
    bint core_mul(i128 a, i128 b, i128 *out)
    bint core_add(i128 a, i128 b, i128 *out)
    i128 core_join(long long hi, unsigned long long lo)
    long long core_hi(i128 v)
    unsigned long long core_lo(i128 v)
    bint core_fits64(i128 v)

cdef i128 POW10[39]
POW10[0] = 1
for _i in range(1, 39):
    POW10[_i] = POW10[_i - 1] * 10


cdef bint _big(object value, i128 *out) except -1:
    """A Python int into an i128; False when it does not fit (with room for the sums)."""
    cdef long long small
    try:
        small = value
        out[0] = small
        return True
    except OverflowError:
        if not -(1 << 124) < value < (1 << 124):
            return False
        out[0] = core_join(value >> 64, value & 0xFFFFFFFFFFFFFFFF)
        return True


cdef object _py(i128 value):
    cdef object hi, lo
    if core_fits64(value):
        return <long long> value
    hi = core_hi(value)
    lo = core_lo(value)
    return (hi << 64) | lo


cdef bint _at(object ratio, int places, i128 *out) except -1:
    """The exact integer of `ratio` (num, den) at 10^-places; False when it is not whole there."""
    cdef i128 num, den
    if not _big(ratio[0], &num) or not _big(ratio[1], &den) or den <= 0:
        return False
    if POW10[places] % den:
        return False
    return not core_mul(num, POW10[places] // den, out)


cdef int _pull(
    Side side,
    Py_ssize_t rank,
    int dp,
    int dq,
    i128 factor,
    list used,
    i128 *price,
    i128 *left,
    i128 *product,
) except -2:
    """Pull the `rank`-th best level for the walk: 1 when the side ran out, -1 on overflow."""
    cdef Py_ssize_t i = side.n - 1 - rank
    if i < 0:
        return 1
    used.append(side.level(rank))
    price[0] = side.key[i] * side.sign // POW10[DECIMALS - dp]
    left[0] = side.size[i] // POW10[DECIMALS - dq]
    return -1 if core_mul(price[0], factor, product) else 0


def walk(LevelIter asks, LevelIter bids, tuple factors, tuple caps, object limit, object lot):
    """`trading.detector._walk` on the books' integers: the same slices, the same levels read.

    `factors` is (x, y) with integers: a slice pays when bid * x >= ask * y. `caps` holds
    (cap, weight) pairs and `limit` and `lot` are (numerator, denominator) of exact ratios.
    Returns (whole lots taken, asks pulled, bids pulled, asks ran out, bids ran out), the levels
    as Decimal pairs; or None when a number does not fit the integers (the caller then walks the
    Decimal reference), so the answer is never rounded.
    """
    cdef Side A = asks.side, B = bids.side
    cdef list asks_used = [], bids_used = []
    cdef int dp = A.price_places if A.price_places > B.price_places else B.price_places
    cdef int dq = A.size_places if A.size_places > B.size_places else B.size_places
    cdef i128 x, y, lot_i, limit_i = 0, a, b, ask_left, bid_left, ask_cost, bid_value
    cdef i128 size = 0, notional = 0, q, after, t, best, lots, room, per
    cdef i128 cap_w[2]
    cdef i128 wn[2]
    cdef Py_ssize_t ra = 0, rb = 0, j, ncaps = len(caps)
    cdef bint has_limit = limit is not None, cut
    cdef int status = 0
    if asks.rank or bids.rank or ncaps > 2:
        return None
    if A.n == 0 or B.n == 0:
        if A.n:
            asks_used.append(A.level(0))
        if B.n:
            bids_used.append(B.level(0))
        return 0, asks_used, bids_used, A.n == 0, B.n == 0
    if not _big(factors[0], &x) or not _big(factors[1], &y):
        return None
    # The size scale must hold the lot (and so the limit, a whole number of lots) exactly.
    while dq <= DECIMALS and POW10[dq] % lot[1]:
        dq += 1
    if dq > DECIMALS or not _at(lot, dq, &lot_i) or lot_i <= 0:
        return None
    if has_limit and not _at(limit, dq, &limit_i):
        return None
    for j in range(ncaps):
        # weight * notional <= cap, as wn * notional <= cap * wd (notional at 10^-(dp+dq)).
        cap, weight = caps[j]
        if not _at((cap[0] * weight[1], cap[1]), dp + dq, &cap_w[j]) or not _big(weight[0], &wn[j]):
            return None
    if _pull(A, 0, dp, dq, y, asks_used, &a, &ask_left, &ask_cost) < 0:
        return None
    if _pull(B, 0, dp, dq, x, bids_used, &b, &bid_left, &bid_value) < 0:
        return None
    while True:
        q = ask_left if ask_left < bid_left else bid_left
        if q:
            if bid_value < ask_cost:
                break
            if core_mul(a, q, &t) or core_add(notional, t, &after):
                return None
            cut = False
            best = 0
            for j in range(ncaps):
                if core_mul(wn[j], after, &t):
                    return None
                if t > cap_w[j]:
                    # Cap j stops at size + (cap - w*notional) / (w*a), in whole lots.
                    if core_mul(wn[j], a, &per) or core_mul(per, size, &room):
                        return None
                    if core_mul(wn[j], notional, &t) or core_mul(per, lot_i, &per):
                        return None
                    room = room + cap_w[j] - t
                    lots = room // per if room >= 0 else -((-room) // per)  # toward zero
                    if not cut or lots < best:
                        best = lots
                    cut = True
            if cut:
                return _py(best), asks_used, bids_used, False, False
            size += q
            notional = after
            if has_limit and size >= limit_i:
                break
            ask_left -= q
            bid_left -= q
        # status: 1 the asks ran out, 2 the bids, negative an overflow.
        if not ask_left:
            ra += 1
            status = _pull(A, ra, dp, dq, y, asks_used, &a, &ask_left, &ask_cost)
            if status:
                break
        if not bid_left:
            rb += 1
            status = 2 * _pull(B, rb, dp, dq, x, bids_used, &b, &bid_left, &bid_value)
            if status:
                break
    if status < 0:
        return None
    return _py(size // lot_i), asks_used, bids_used, status == 1, status == 2
