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

Also here: the detector's depth walk (`walk`), top-of-book prefilter (`TopGate`) and pair scan
(`PairScan`: the pair loop, the walk memo, a walk's fill and report in exact integers) on the
books' integers; `SlotsNew`, frozen slots dataclasses built without their `__init__`; and the
venues' frame handlers (`CoinbaseWire`, `KrakenWire`, `BinanceWire`).
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.ref cimport PyObject, Py_XDECREF, Py_XINCREF
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeASCII
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy, memmove

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


cdef unsigned long long POW10_64[19]
POW10_64[0] = 1
for _i in range(1, 19):
    POW10_64[_i] = POW10_64[_i - 1] * 10


cdef bint _fixed_chars(const char *s, Py_ssize_t n, i128 *out, int *places) noexcept:
    """Plain decimal text (digits, then '.' and 1 to 18 digits) -> fixed point at 18 decimals;
    False for anything else (sign, exponent, spaces, more than 16 integer digits...)."""
    cdef Py_ssize_t i = 0, lead, start
    # At most 16 significant integer digits and 18 decimals are kept: both fit 64 bits (the
    # unsigned sums only wrap on text refused below).
    cdef unsigned long long whole = 0, frac = 0
    cdef unsigned char c
    while i < n and s[i] == 48:
        i += 1
    lead = i
    while i < n:
        c = <unsigned char> s[i] - 48
        if c > 9:
            break
        whole = whole * 10 + c
        i += 1
    if i == 0 or i - lead > MAX_INT_DIGITS:
        return False
    places[0] = 0
    if i < n:
        if s[i] != 46:  # '.'
            return False
        i += 1
        start = i
        if i == n or n - start > DECIMALS:
            return False
        while i < n:
            c = <unsigned char> s[i] - 48
            if c > 9:
                return False
            frac = frac * 10 + c
            i += 1
        places[0] = <int> (n - start)
    out[0] = <i128> whole * SCALE + <i128> (frac * POW10_64[DECIMALS - places[0]])
    return True


cdef enum:
    # The longest number text a level keeps: 16 integer digits, '.', 18 decimals.
    TEXT_MOST = 35


cdef struct Text:
    unsigned char n
    # Where Kraken's checksum fragment starts (its first digit that is not a leading zero,
    # '.' aside) and where the '.' is (n when there is none).
    unsigned char lead, dot
    char s[TEXT_MOST]


cdef struct Wire:
    # One level's wire price and size text (size 0: a removal, its text is never read).
    Text price
    Text size


cdef inline void _keep(Text *out, const char *s, Py_ssize_t n) noexcept:
    """A validated number's text, less its integer part's leading zeros: neither its `Decimal`
    nor its checksum fragment depends on them, and what is left always fits."""
    cdef Py_ssize_t i = 0
    while n > 1 and s[0] == 48 and s[1] != 46:
        s += 1
        n -= 1
    out.n = <unsigned char> n
    memcpy(out.s, s, n)
    while i < n and s[i] != 46:
        i += 1
    out.dot = <unsigned char> i
    i = 0
    while i < n and (s[i] == 48 or s[i] == 46):
        i += 1
    out.lead = <unsigned char> i


cdef inline str _text(const Text *t):
    return PyUnicode_DecodeASCII(t.s, t.n, NULL)


cdef int _resize(void **block, Py_ssize_t count, size_t item) except -1:
    cdef void *p = realloc(block[0], count * item)
    if p == NULL:
        raise MemoryError()
    block[0] = p
    return 0


cdef class Levels:
    """One side's validated levels of a frame, in wire order: fixed-point numbers and wire text.

    The text is copied in, so a `Levels` owns all it holds (a buffered update outlives its
    frame) and holds no Python object per level."""

    cdef i128 *price
    cdef i128 *size
    cdef Wire *text
    cdef Py_ssize_t n, cap
    # The Decimal pairs, when the levels came as Decimals (`_as_levels`); else None.
    cdef list pairs
    # The most decimals any price / size text had (the walk's fixed point, `Side.places`).
    cdef int price_places, size_places

    def __cinit__(self):
        self.price_places = self.size_places = 0
        self.n = self.cap = 0
        self.price = self.size = NULL
        self.text = NULL
        self.pairs = None

    def __dealloc__(self):
        free(self.price)
        free(self.size)
        free(self.text)

    def __len__(self):
        return self.n

    cdef inline void reset(self) noexcept:
        self.n = 0
        self.price_places = self.size_places = 0

    cdef int add(self, object price, object size) except -1:
        cdef Py_ssize_t pn, sn
        cdef const char *ps
        cdef const char *ss
        if type(price) is not str or type(size) is not str:
            raise ValueError(f"not a plain number {price!r} {size!r}")
        ps = PyUnicode_AsUTF8AndSize(price, &pn)
        ss = PyUnicode_AsUTF8AndSize(size, &sn)
        status = self.put(ps, pn, ss, sn)
        if status == 1:
            raise ValueError(f"not a plain number {price!r} {size!r}")
        if status == 2:
            raise ValueError(f"absurd level {price!r} {size!r}")
        return 0

    cdef bint add_chars(self, const char *price, Py_ssize_t pn, const char *size, Py_ssize_t sn) except -1:
        """`add` from a frame's UTF-8 text; False (nothing added) where `add` would raise."""
        return self.put(price, pn, size, sn) == 0

    cdef int put(self, const char *price, Py_ssize_t pn, const char *size, Py_ssize_t sn) except -1:
        """Add one level: 0, or 1 when a number is not plain decimal text, 2 when absurd."""
        cdef i128 p, q
        cdef Py_ssize_t cap
        cdef int pp, qp
        if not _fixed_chars(price, pn, &p, &pp) or not _fixed_chars(size, sn, &q, &qp):
            return 1
        if not (0 < p < MAX_PRICE and 0 <= q < MAX_SIZE):
            return 2
        if self.n == self.cap:
            cap = 8 if self.cap == 0 else self.cap * 2
            _resize(<void **> &self.price, cap, sizeof(i128))
            _resize(<void **> &self.size, cap, sizeof(i128))
            _resize(<void **> &self.text, cap, sizeof(Wire))
            self.cap = cap
        self.price[self.n] = p
        self.size[self.n] = q
        if q:  # a removal: the side never reads its text
            _keep(&self.text[self.n].price, price, pn)
            _keep(&self.text[self.n].size, size, sn)
        self.n += 1
        if pp > self.price_places:
            self.price_places = pp
        if qp > self.size_places:
            self.size_places = qp
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
    key = -price), so most changes, near the top, move few entries. No Python object per level
    but the cached `Decimal` pair, built on first read."""

    cdef i128 *key
    cdef i128 *size
    # Per level: the text the price was first set with (its Decimal, as the reference's dict key
    # keeps the first key), the latest wire price and size text (the checksum's), the cached
    # Decimal pair or NULL (a reference owned here).
    cdef Text *key_text
    cdef Wire *wire
    cdef PyObject **decimals
    cdef Py_ssize_t n, cap
    cdef int sign
    # The most decimals a price / size ever set here had, never lowered: every level is a whole
    # number at 10^-places, the scale the walk computes in.
    cdef int price_places, size_places

    def __cinit__(self, int sign):
        self.price_places = self.size_places = 0
        self.sign = sign
        self.n = self.cap = 0
        self.key = self.size = NULL
        self.key_text = NULL
        self.wire = NULL
        self.decimals = NULL

    def __dealloc__(self):
        self.clear()
        free(self.key)
        free(self.size)
        free(self.key_text)
        free(self.wire)
        free(self.decimals)

    cdef Py_ssize_t find(self, i128 k) noexcept:
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

    cdef int set(self, i128 price, i128 size, const Wire *text, object pair) except -1:
        cdef i128 k = price if self.sign > 0 else -price
        cdef Py_ssize_t i = self.find(k), cap, rest
        cdef PyObject *cached = NULL if pair is None else <PyObject *> pair
        if i < self.n and self.key[i] == k:
            if size:
                self.size[i] = size
                self.wire[i] = text[0]
                Py_XINCREF(cached)
                Py_XDECREF(self.decimals[i])
                self.decimals[i] = cached
            else:
                self.remove(i, 1)
            return 0
        if not size:
            return 0  # removing an unknown level is normal (Binance beyond the snapshot)
        if self.n == self.cap:
            cap = 32 if self.cap == 0 else self.cap * 2
            _resize(<void **> &self.key, cap, sizeof(i128))
            _resize(<void **> &self.size, cap, sizeof(i128))
            _resize(<void **> &self.key_text, cap, sizeof(Text))
            _resize(<void **> &self.wire, cap, sizeof(Wire))
            _resize(<void **> &self.decimals, cap, sizeof(PyObject *))
            self.cap = cap
        rest = self.n - i
        if rest:
            memmove(&self.key[i + 1], &self.key[i], rest * sizeof(i128))
            memmove(&self.size[i + 1], &self.size[i], rest * sizeof(i128))
            memmove(&self.key_text[i + 1], &self.key_text[i], rest * sizeof(Text))
            memmove(&self.wire[i + 1], &self.wire[i], rest * sizeof(Wire))
            memmove(&self.decimals[i + 1], &self.decimals[i], rest * sizeof(PyObject *))
        self.key[i] = k
        self.size[i] = size
        self.key_text[i] = text.price
        self.wire[i] = text[0]
        Py_XINCREF(cached)
        self.decimals[i] = cached
        self.n += 1
        return 0

    cdef void remove(self, Py_ssize_t i, Py_ssize_t count) noexcept:
        """Drop `count` entries from index i."""
        cdef Py_ssize_t rest = self.n - i - count, j
        for j in range(i, i + count):
            Py_XDECREF(self.decimals[j])
        if rest > 0:
            memmove(&self.key[i], &self.key[i + count], rest * sizeof(i128))
            memmove(&self.size[i], &self.size[i + count], rest * sizeof(i128))
            memmove(&self.key_text[i], &self.key_text[i + count], rest * sizeof(Text))
            memmove(&self.wire[i], &self.wire[i + count], rest * sizeof(Wire))
            memmove(&self.decimals[i], &self.decimals[i + count], rest * sizeof(PyObject *))
        self.n -= count

    cdef void clear(self) noexcept:
        self.remove(0, self.n)

    cdef object level(self, Py_ssize_t rank):
        """The (price, size) Decimals of the `rank`-th best level, built once from the text."""
        cdef Py_ssize_t i = self.n - 1 - rank
        cdef PyObject *cached = self.decimals[i]
        if cached != NULL:
            return <object> cached
        pair = (Decimal(_text(&self.key_text[i])), Decimal(_text(&self.wire[i].size)))
        Py_XINCREF(<PyObject *> pair)
        self.decimals[i] = <PyObject *> pair
        return pair

    cdef uint32_t crc(self, uint32_t crc, Py_ssize_t count) noexcept:
        """Feed the best `count` levels' checksum text (wire digits, leading zeros cut) to crc."""
        cdef Py_ssize_t i, stop = self.n - count if self.n > count else 0
        for i in range(self.n - 1, stop - 1, -1):
            crc = _crc_text(crc, &self.wire[i].price)
            crc = _crc_text(crc, &self.wire[i].size)
        return crc


cdef inline uint32_t _crc_text(uint32_t crc, const Text *text) noexcept:
    """Kraken's fragment of one number: its wire text without '.' and leading zeros."""
    if text.lead < text.dot:
        crc = core_crc_update(crc, text.s + text.lead, text.dot - text.lead)
        return core_crc_update(crc, text.s + text.dot + 1, text.n - text.dot - 1) if text.dot < text.n else crc
    return core_crc_update(crc, text.s + text.lead, text.n - text.lead)


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
        self.load_levels(bids, asks, sequence)

    def apply(self, bids, asks):
        """Apply validated level changes in wire order, then truncate to depth."""
        self.apply_levels(bids, asks)

    # (The handlers call these C methods directly: no Python call per frame.)
    cdef int load_levels(self, object bids, object asks, object sequence) except -1:
        self._bids.clear()
        self._asks.clear()
        _apply(self._bids, bids)
        _apply(self._asks, asks)
        self.sequence = sequence
        self.valid = True
        self.invalid_reason = None
        return 0

    cdef int apply_levels(self, object bids, object asks) except -1:
        _apply(self._bids, bids)
        _apply(self._asks, asks)
        if self.depth is not None:
            self.cut(self.depth)
        self.updates += 1
        return 0

    cdef void cut(self, Py_ssize_t depth) noexcept:
        if self._bids.n > depth:
            self._bids.remove(0, self._bids.n - depth)
        if self._asks.n > depth:
            self._asks.remove(0, self._asks.n - depth)

    cdef bint is_crossed(self) noexcept:
        cdef Side b = self._bids, a = self._asks
        return b.n and a.n and b.key[b.n - 1] >= -a.key[a.n - 1]

    def set_bid(self, price, size, text=None):
        """Set the bid at `price` (Decimal) to the absolute `size`; size 0 removes the level."""
        _apply(self._bids, ((price, size),))

    def set_ask(self, price, size, text=None):
        """Set the ask at `price` (Decimal) to the absolute `size`; size 0 removes the level."""
        _apply(self._asks, ((price, size),))

    def truncate(self, Py_ssize_t depth):
        """Drop levels beyond `depth` per side: Kraken sends no deletes for levels leaving scope."""
        self.cut(depth)

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
        return self.is_crossed()

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
            &levels.text[i],
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


# -- the top-of-book gate ----------------------------------------------------------------------

cdef extern from *:
    """
    typedef unsigned __int128 core_u128;
    /* Whether a * f >= b * g, the products exact in 192 bits (a, b below 2^127). */
    static int core_ge_scaled(core_u128 a, unsigned long long f, core_u128 b, unsigned long long g) {
        core_u128 alo = (core_u128)(unsigned long long)a * f;
        core_u128 ahi = (a >> 64) * f + (alo >> 64);
        core_u128 blo = (core_u128)(unsigned long long)b * g;
        core_u128 bhi = (b >> 64) * g + (blo >> 64);
        if (ahi != bhi) return ahi > bhi;
        return (unsigned long long)alo >= (unsigned long long)blo;
    }
    """
    ctypedef unsigned long long u128 "core_u128"
    bint core_ge_scaled(u128 a, unsigned long long f, u128 b, unsigned long long g)

cdef enum:
    GATE_MOST = 16


cdef class TopGate:
    """The detector's top-of-book prefilter over one market's compiled books, in C.

    Each venue's ask and bid factors are integers over one common denominator (see
    `trading.detector.top_factors`): buying on A and selling on B can pay at the top only when
    B's best bid * B's bid factor >= A's best ask * A's ask factor, compared exactly on the
    books' fixed-point integers. `crossable` says whether any pair of fresh books passes, the
    question `trading.detector.find_opportunities` asks before it walks any depth.
    """

    cdef list books
    cdef Py_ssize_t n
    cdef unsigned long long ask_f[GATE_MOST]
    cdef unsigned long long bid_f[GATE_MOST]

    def __init__(self, list books, list factors):
        """`books`: compiled `Book`s; `factors`: each one's (ask factor, bid factor) integers,
        below 2^64 (the caller keeps the Python prefilter otherwise)."""
        cdef Py_ssize_t i
        if len(books) != len(factors) or len(books) > GATE_MOST:
            raise ValueError("one factor pair per book, at most 16 books")
        for book in books:
            if type(book) is not Book:
                raise TypeError("a TopGate reads compiled books only")
        self.books = books
        self.n = len(books)
        for i in range(self.n):
            self.ask_f[i] = factors[i][0]
            self.bid_f[i] = factors[i][1]

    cdef void fresh(self, double now, double max_age, object max_lag, bint *out):
        """Whether each book is valid, received within `max_age` of `now` and no later than
        `max_lag` by the venue's clock."""
        cdef Book book
        cdef Py_ssize_t i
        cdef bint has_lag = max_lag is not None
        cdef double lag_limit = max_lag if has_lag else 0.0
        for i in range(self.n):
            book = <Book> self.books[i]
            out[i] = (
                book.valid
                and book.received_ts is not None
                and not (now - <double> book.received_ts > max_age)
                and not (has_lag and book.lag > lag_limit)
            )

    cdef bint passes(self, Py_ssize_t i, Py_ssize_t j) noexcept:
        """Whether buying on book i and selling on book j passes the prefilter."""
        cdef Side asks = (<Book> self.books[i])._asks, bids = (<Book> self.books[j])._bids
        return asks.n and bids.n and core_ge_scaled(
            <u128> bids.key[bids.n - 1], self.bid_f[j], <u128> (-asks.key[asks.n - 1]), self.ask_f[i]
        )

    def crossable(self, double now, double max_age, object max_lag) -> bool:
        """Whether any pair of the fresh books (valid, received within `max_age` of `now`, no
        later than `max_lag` by the venue's clock) passes the prefilter."""
        cdef bint fresh[GATE_MOST]
        cdef Py_ssize_t i, j
        self.fresh(now, max_age, max_lag, fresh)
        for i in range(self.n):
            if not fresh[i]:
                continue
            for j in range(self.n):
                if j != i and fresh[j] and self.passes(i, j):
                    return True
        return False


cdef bint _same_top(Side side, bytes keys, bytes sizes, bint ran_out):
    """Whether the side starts with exactly the levels a walk read (`keys`, `sizes`: their
    integers, best last), and holds no more when the walk ran out of them."""
    cdef Py_ssize_t k = len(keys) // sizeof(i128)
    if side.n < k or (ran_out and side.n != k):
        return False
    return (
        memcmp(&side.key[side.n - k], <const char *> keys, k * sizeof(i128)) == 0
        and memcmp(&side.size[side.n - k], <const char *> sizes, k * sizeof(i128)) == 0
    )


cdef tuple _top_bytes(Side side, Py_ssize_t k):
    """The best `k` levels' key and size integers, as `_same_top` compares them."""
    return (
        PyBytes_FromStringAndSize(<const char *> &side.key[side.n - k], k * sizeof(i128)),
        PyBytes_FromStringAndSize(<const char *> &side.size[side.n - k], k * sizeof(i128)),
    )


cdef extern from *:
    """
    #include <string.h>
    /* The offsets of a slots class's object slots (its `__slots__`), in declaration order. */
    static Py_ssize_t core_slots(PyObject *type, Py_ssize_t *out, Py_ssize_t most) {
        PyMemberDef *m = ((PyTypeObject *)type)->tp_members;
        Py_ssize_t n = 0;
        for (; m != NULL && m->name != NULL; m++) {
            if (m->type != Py_T_OBJECT_EX) continue;
            if (n == most) return -1;
            out[n++] = m->offset;
        }
        return n;
    }
    static Py_ssize_t core_slot(PyObject *type, const char *name) {
        PyMemberDef *m = ((PyTypeObject *)type)->tp_members;
        for (; m != NULL && m->name != NULL; m++)
            if (m->type == Py_T_OBJECT_EX && strcmp(m->name, name) == 0) return m->offset;
        return -1;
    }
    """
    Py_ssize_t core_slots(object type, Py_ssize_t *out, Py_ssize_t most)
    Py_ssize_t core_slot(object type, const char *name)

cdef enum:
    SLOTS_MOST = 32


cdef extern from *:
    """
    /* A new instance of `type` (no __init__): its last len(values) slots hold `values`, the
       ones before them what `source`'s hold (source is not read when values fill them all). */
    static PyObject *core_fill_slots(
        PyObject *type, const Py_ssize_t *offsets, Py_ssize_t n, PyObject *source,
        PyObject *values
    ) {
        PyTypeObject *t = (PyTypeObject *)type;
        Py_ssize_t first = n - PyTuple_GET_SIZE(values);
        PyObject *o = t->tp_alloc(t, 0);
        if (o == NULL) return NULL;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *v = i < first ? *(PyObject **)((char *)source + offsets[i])
                                    : PyTuple_GET_ITEM(values, i - first);
            Py_XINCREF(v);
            *(PyObject **)((char *)o + offsets[i]) = v;
        }
        return o;
    }
    """
    object core_fill_slots(
        object type, const Py_ssize_t *offsets, Py_ssize_t n, object source, tuple values
    )


cdef class SlotsNew:
    """Builds instances of a frozen slots dataclass from every field's value, in declaration
    order, in C: what its `__init__` stores, without the `object.__setattr__` per field (1.4 us
    for the detector's 14-field `Cross`, against about 0.1 here). For dataclasses whose
    `__init__` only stores its arguments (no `__post_init__`, no `InitVar`), every field given."""

    cdef object cls
    cdef Py_ssize_t offsets[SLOTS_MOST]
    cdef Py_ssize_t n

    def __init__(self, cls):
        if not isinstance(cls, type) or hasattr(cls, "__post_init__"):
            raise TypeError(f"{cls!r} is not a slots class whose __init__ only stores fields")
        cdef Py_ssize_t i
        cdef Py_ssize_t held[SLOTS_MOST]
        names = getattr(cls, "__dataclass_fields__", None)
        slots = getattr(cls, "__slots__", None)
        # The fields in declaration order (`__slots__` keeps it; the type's members are sorted).
        if not names or type(slots) is not tuple or tuple(names) != slots:
            raise TypeError(f"{cls!r} is not a slots dataclass")
        if core_slots(cls, held, SLOTS_MOST) != len(slots):
            raise TypeError(f"{cls!r} has slots besides its fields")
        self.n = len(slots)
        for i in range(self.n):
            self.offsets[i] = core_slot(cls, slots[i].encode())
            if self.offsets[i] < 0:
                raise TypeError(f"{cls!r} has no object slot {slots[i]!r}")
        self.cls = cls

    def __call__(self, *values):
        return self.make(values)

    cdef object make(self, tuple values):
        if len(values) != self.n:
            raise TypeError(f"{self.cls.__name__} takes {self.n} values, {len(values)} given")
        return core_fill_slots(self.cls, self.offsets, self.n, None, values)

    cdef object replace_last(self, object source, tuple values):
        """A copy of `source` whose last fields are `values` (every other slot the same object)."""
        if type(source) is not self.cls or len(values) > self.n:
            raise TypeError(f"not a {self.cls.__name__} with {len(values)} fields to replace")
        return core_fill_slots(self.cls, self.offsets, self.n, source, values)


# -- a walk's fill and report in exact integers ------------------------------------------------
#
# `trading.detector._fill` and `_report` over `Decimal`s, done on (coefficient, exponent) pairs:
# each sum, difference and product is exact in Decimal's EXACT context, and so is it here, with
# the exponent Decimal gives it (a sum's is the smaller, a product's the sum), so every number
# comes out as the same `Decimal`, digits, exponent and all. An i128 holds 38 digits, fewer than
# EXACT's 60: a result that would not fit makes the caller run the `Decimal` code instead.

cdef struct Dec:
    i128 coef
    int exp


cdef bint _d_align(Dec *a, int exp) noexcept:
    """`a` at the smaller exponent `exp`; False when the coefficient would not fit."""
    cdef int k = a.exp - exp
    if k == 0 or a.coef == 0:
        a.exp = exp
        return True
    if k > 38:
        return False
    if core_mul(a.coef, POW10[k], &a.coef):
        return False
    a.exp = exp
    return True


cdef bint _d_add(Dec a, Dec b, Dec *out) noexcept:
    cdef int e = a.exp if a.exp < b.exp else b.exp
    if not _d_align(&a, e) or not _d_align(&b, e) or core_add(a.coef, b.coef, &out.coef):
        return False
    out.exp = e
    return True


cdef bint _d_sub(Dec a, Dec b, Dec *out) noexcept:
    b.coef = -b.coef
    return _d_add(a, b, out)


cdef bint _d_mul(Dec a, Dec b, Dec *out) noexcept:
    if core_mul(a.coef, b.coef, &out.coef):
        return False
    out.exp = a.exp + b.exp
    return True


cdef int _d_cmp(Dec a, Dec b, bint *less) noexcept:
    """`a < b` into `less`; 0, or -1 when aligning them would overflow."""
    cdef int e = a.exp if a.exp < b.exp else b.exp
    if not _d_align(&a, e) or not _d_align(&b, e):
        return -1
    less[0] = a.coef < b.coef
    return 0


cdef Py_ssize_t _put_digits(char *out, unsigned long long v, int width) noexcept:
    """`v`'s decimal digits at `out`, zero-padded to at least `width`; how many were written."""
    cdef char rev[20]
    cdef int k = 0, i
    while v or k < width:
        rev[k] = <char> (48 + <int> (v % 10))
        v //= 10
        k += 1
    for i in range(k):
        out[i] = rev[k - 1 - i]
    return k


cdef object _d_py(Dec d):
    """The `Decimal` of `d`, coefficient and exponent as they are (from "<coef>E<exp>")."""
    cdef char buf[64]
    cdef unsigned long long chunk[2]
    cdef int chunks = 0, e = d.exp
    cdef Py_ssize_t n = 0
    cdef u128 v = <u128> (-d.coef if d.coef < 0 else d.coef)
    if d.coef < 0:
        buf[n] = 45  # '-'
        n += 1
    # 19 digits at a time in 64 bits: one 128-bit division per chunk, not per digit.
    while v >= <u128> 10000000000000000000ULL:
        chunk[chunks] = <unsigned long long> (v % <u128> 10000000000000000000ULL)
        v //= <u128> 10000000000000000000ULL
        chunks += 1
    n += _put_digits(buf + n, <unsigned long long> v, 1)
    while chunks:
        chunks -= 1
        n += _put_digits(buf + n, chunk[chunks], 19)
    buf[n] = 69  # 'E'
    n += 1
    if e < 0:
        buf[n] = 45
        n += 1
        e = -e
    n += _put_digits(buf + n, <unsigned long long> e, 1)
    return Decimal(PyUnicode_DecodeASCII(buf, n, NULL))


cdef bint _d_of(object value, Dec *out) except -1:
    """A finite `Decimal` as a coefficient and exponent; False when it does not fit."""
    sign, digits, exp = value.as_tuple()
    if type(exp) is not int or len(digits) > 38:
        return False
    coef = int("".join(map(str, digits)) or "0")
    if not _big(-coef if sign else coef, &out.coef):
        return False
    out.exp = exp
    return True


cdef inline int _decimals(const Text *t) noexcept:
    return t.n - t.dot - 1 if t.dot < t.n else 0


cdef int _fill(Side side, Py_ssize_t count, Dec size, Dec *notional, list taken) except -1:
    """`trading.detector._fill` of the side's best `count` levels: 1, or 0 on overflow."""
    cdef Dec left = size, price, avail, q, t
    cdef Py_ssize_t rank, i
    cdef bint less
    cdef int dp, ds
    notional.coef = 0
    notional.exp = 0
    for rank in range(count):
        i = side.n - 1 - rank
        if not side.size[i]:
            continue
        dp = _decimals(&side.key_text[i])
        ds = _decimals(&side.wire[i].size)
        price.coef = (side.key[i] if side.sign > 0 else -side.key[i]) // POW10[DECIMALS - dp]
        price.exp = -dp
        avail.coef = side.size[i] // POW10[DECIMALS - ds]
        avail.exp = -ds
        if _d_cmp(avail, left, &less) < 0:
            return 0
        pair = side.level(rank)
        if less:  # the level's own size: its (price, size) pair as it is
            q = avail
            taken.append(pair)
        else:
            q = left
            taken.append((pair[0], _d_py(left)))
        if not _d_mul(price, q, &t) or not _d_add(notional[0], t, notional):
            return 0
        if not _d_sub(left, q, &left):
            return 0
        if not left.coef:
            break
    return 1


cdef class PairScan(TopGate):
    """`trading.detector.find_opportunities` over one market's compiled books, its walk memo
    kept on the books' integers: a pair whose books start with the levels its last walk read
    gets that walk's cross back, restamped, with no `Decimal` work.

    The detector supplies, per ordered pair (i, j) (index i * n + j): its key, the walk's
    arguments (see `walk`) and its fill's (buy fee, sell fee, common lot); `finish(pair, walked,
    latest, now)`, the cross of a walk's result by the `Decimal` code (`None` walked for the
    `Decimal` walk), for what the integers cannot hold; the quotient context's `divide` and the
    basis point `bps`; and the crosses' frozen slots dataclass, whose last three fields are
    `exchange_ts`, `received_ts` and `detected_ts`: a restamped cross is a copy of the last one,
    every other field the same object. The books' order is the venues' order of the answer.
    """

    cdef list keys
    cdef list args
    cdef list memo
    cdef object finish
    cdef SlotsNew new_cross
    # The fill and report in integers: per pair the buy fee, sell fee and lot as exact
    # decimals, and the basis point; `exact` False when one does not fit (`finish` does it).
    cdef bint exact
    cdef object divide
    cdef Dec *fee_a
    cdef Dec *fee_b
    cdef Dec *lot
    cdef Dec bps

    def __init__(
        self, list books, list factors, list keys, list args, list fills, finish, divide, bps,
        cross_type,
    ):
        cdef Py_ssize_t p, pairs
        TopGate.__init__(self, books, factors)
        pairs = self.n * self.n
        if len(keys) != pairs or len(args) != pairs or len(fills) != pairs:
            raise ValueError("one key, one walk and one fill per ordered pair")
        self.new_cross = SlotsNew(cross_type)
        fields = cross_type.__slots__  # in declaration order (SlotsNew checked it)
        if fields[len(fields) - 3:] != ("exchange_ts", "received_ts", "detected_ts"):
            raise TypeError(f"{cross_type!r} does not end with the three stamps")
        self.keys = keys
        self.args = args
        self.memo = [None] * pairs
        self.finish = finish
        self.divide = divide
        self.fee_a = <Dec *> malloc(pairs * sizeof(Dec))
        self.fee_b = <Dec *> malloc(pairs * sizeof(Dec))
        self.lot = <Dec *> malloc(pairs * sizeof(Dec))
        if self.fee_a == NULL or self.fee_b == NULL or self.lot == NULL:
            raise MemoryError()
        self.exact = _d_of(bps, &self.bps)
        for p in range(pairs):
            fee_a, fee_b, lot = fills[p]
            self.exact = self.exact and (
                _d_of(fee_a, &self.fee_a[p])
                and _d_of(fee_b, &self.fee_b[p])
                and _d_of(lot, &self.lot[p])
            )

    def __dealloc__(self):
        free(self.fee_a)
        free(self.fee_b)
        free(self.lot)

    cdef object cross_of(self, Py_ssize_t p, tuple walked, Book buy, Book sell, Book latest, object at):
        """`finish` for a walk on the integers: the cross in exact integers, `Decimal` only for
        its fields; `finish` itself when a number does not fit them."""
        cdef Dec size, buy_n, sell_n, gross, fees, net, t, u
        cdef list asks_taken = [], bids_taken = []
        size.exp = 0
        if not _big(walked[0], &size.coef) or not _d_mul(size, self.lot[p], &size):
            return self.finish(p, walked, latest, at)
        size.exp = self.lot[p].exp
        if size.coef <= 0:
            return None
        if (
            not _fill(buy._asks, len(walked[1]), size, &buy_n, asks_taken)
            or not _fill(sell._bids, len(walked[2]), size, &sell_n, bids_taken)
            or not _d_sub(sell_n, buy_n, &gross)
            or not _d_mul(self.fee_a[p], buy_n, &t)
            or not _d_mul(self.fee_b[p], sell_n, &u)
            or not _d_add(t, u, &fees)
            or not _d_sub(gross, fees, &net)
            or not _d_mul(net, self.bps, &t)
        ):
            return self.finish(p, walked, latest, at)
        size_o, buy_o, sell_o = _d_py(size), _d_py(buy_n), _d_py(sell_n)
        divide = self.divide
        return self.new_cross.make((
            size_o,
            divide(buy_o, size_o),
            divide(sell_o, size_o),
            buy_o,
            sell_o,
            _d_py(gross),
            _d_py(fees),
            _d_py(net),
            divide(_d_py(t), buy_o),
            tuple(asks_taken),
            tuple(bids_taken),
            latest.exchange_ts,
            latest.received_ts,
            at,
        ))

    def scan(self, double now, double max_age, object max_lag) -> dict:
        """The cross of every ordered pair of fresh books that pays, keyed by pair."""
        cdef bint fresh[GATE_MOST]
        cdef Py_ssize_t i, j, p
        cdef Book buy, sell, latest
        cdef dict crosses = {}
        cdef tuple last, walked
        cdef LevelIter asks, bids
        cdef object at = None
        self.fresh(now, max_age, max_lag, fresh)
        for i in range(self.n):
            if not fresh[i]:
                continue
            buy = <Book> self.books[i]
            for j in range(self.n):
                if j == i or not fresh[j] or not self.passes(i, j):
                    continue
                sell = <Book> self.books[j]
                latest = sell if <double> sell.received_ts > <double> buy.received_ts else buy
                if at is None:
                    at = now
                p = i * self.n + j
                last = self.memo[p]
                if (
                    last is not None
                    and _same_top(buy._asks, last[0], last[1], last[2])
                    and _same_top(sell._bids, last[3], last[4], last[5])
                ):
                    if last[6] is not None:
                        crosses[self.keys[p]] = self.new_cross.replace_last(
                            last[6], (latest.exchange_ts, latest.received_ts, at)
                        )
                    continue
                asks = buy.asks()
                bids = sell.bids()
                walked = walk(asks, bids, *self.args[p])
                if walked is not None and self.exact:
                    cross = self.cross_of(p, walked, buy, sell, latest, at)
                else:
                    cross = self.finish(p, walked, latest, at)
                if walked is None:
                    self.memo[p] = None  # the Decimal walk: nothing to compare next time
                else:
                    self.memo[p] = (
                        *_top_bytes(buy._asks, len(walked[1])),
                        walked[3],
                        *_top_bytes(sell._bids, len(walked[2])),
                        walked[4],
                        cross,
                    )
                if cross is not None:
                    crosses[self.keys[p]] = cross
        return crosses


# -- the venues' frames, straight from their text ----------------------------------------------
#
# Each handler takes the usual frame of its venue (a Coinbase level2 update or snapshot, a Kraken
# v2 book frame, a Binance depth diff) from its JSON text into the books without building the
# frame's dicts. It accepts a strict subset of JSON (no escapes in strings, nesting below 64) and
# of the venue's shapes; anything else, and any frame the feed would count, drop, buffer or
# resync on, goes untouched to the feed's own `handle` (the reference path), which then does
# exactly what it did before. So a frame either takes the fast path and ends as the reference
# would have left it, or is the reference's.

cdef struct Cur:
    const char *s
    Py_ssize_t i
    Py_ssize_t n


cdef inline void _ws(Cur *c) noexcept:
    cdef char ch
    while c.i < c.n:
        ch = c.s[c.i]
        if ch != 32 and ch != 10 and ch != 13 and ch != 9:
            return
        c.i += 1


cdef inline bint _lit(Cur *c, char ch) noexcept:
    _ws(c)
    if c.i < c.n and c.s[c.i] == ch:
        c.i += 1
        return True
    return False


# What ends a run of a string's plain bytes: its closing quote, a backslash, a control
# character (NUL among them: a str's UTF-8 text always ends in one, so a scan needs no bound).
cdef unsigned char STRING_STOP[256]
for _i in range(32):
    STRING_STOP[_i] = 1
STRING_STOP[34] = STRING_STOP[92] = 1


cdef bint _string(Cur *c, Py_ssize_t *start, Py_ssize_t *length) noexcept:
    """A string without escapes or control characters; its bytes are s[start:start+length].
    `c.s` is a str's UTF-8 text (`PyUnicode_AsUTF8AndSize`), NUL-terminated."""
    cdef const unsigned char *s = <const unsigned char *> c.s
    cdef Py_ssize_t i
    _ws(c)
    if c.i >= c.n or s[c.i] != 34:
        return False
    i = c.i + 1
    start[0] = i
    while not STRING_STOP[s[i]]:
        i += 1
    if i < c.n and s[i] == 34:
        length[0] = i - start[0]
        c.i = i + 1
        return True
    c.i = i
    return False


cdef inline bint _digits(Cur *c) noexcept:
    cdef Py_ssize_t start = c.i
    while c.i < c.n and 48 <= c.s[c.i] <= 57:
        c.i += 1
    return c.i > start


cdef bint _number(Cur *c, Py_ssize_t *start, Py_ssize_t *length) noexcept:
    """A JSON number (RFC 8259's grammar); its text is s[start:start+length]."""
    _ws(c)
    start[0] = c.i
    if c.i < c.n and c.s[c.i] == 45:  # '-'
        c.i += 1
    if c.i < c.n and c.s[c.i] == 48:
        c.i += 1
    elif not _digits(c):
        return False
    if c.i < c.n and c.s[c.i] == 46:
        c.i += 1
        if not _digits(c):
            return False
    if c.i < c.n and (c.s[c.i] == 101 or c.s[c.i] == 69):
        c.i += 1
        if c.i < c.n and (c.s[c.i] == 43 or c.s[c.i] == 45):
            c.i += 1
        if not _digits(c):
            return False
    length[0] = c.i - start[0]
    return True


cdef bint _word(Cur *c, const char *word, Py_ssize_t n) noexcept:
    if c.i + n <= c.n and memcmp(c.s + c.i, word, n) == 0:
        c.i += n
        return True
    return False


cdef bint _skip(Cur *c, int depth) noexcept:
    """Any JSON value of the subset, checked and passed over."""
    cdef Py_ssize_t a, b
    cdef char ch
    if depth > 64:
        return False
    _ws(c)
    if c.i >= c.n:
        return False
    ch = c.s[c.i]
    if ch == 34:
        return _string(c, &a, &b)
    if ch == 123:  # '{'
        c.i += 1
        if _lit(c, 125):
            return True
        while True:
            if not _string(c, &a, &b) or not _lit(c, 58) or not _skip(c, depth + 1):
                return False
            if _lit(c, 44):
                continue
            return _lit(c, 125)
    if ch == 91:  # '['
        c.i += 1
        if _lit(c, 93):
            return True
        while True:
            if not _skip(c, depth + 1):
                return False
            if _lit(c, 44):
                continue
            return _lit(c, 93)
    if ch == 116:
        return _word(c, "true", 4)
    if ch == 102:
        return _word(c, "false", 5)
    if ch == 110:
        return _word(c, "null", 4)
    return _number(c, &a, &b)


cdef inline bint _is(Cur *c, Py_ssize_t start, Py_ssize_t n, const char *name, Py_ssize_t m) noexcept:
    return n == m and memcmp(c.s + start, name, m) == 0


cdef inline bint _end(Cur *c) noexcept:
    """Nothing but whitespace after the frame's value."""
    _ws(c)
    return c.i == c.n


cdef bint _uint(Cur *c, Py_ssize_t start, Py_ssize_t n, long long *out) noexcept:
    """A number's text as a non-negative integer of at most 18 digits."""
    cdef long long v = 0
    cdef Py_ssize_t i
    if n < 1 or n > 18:
        return False
    for i in range(start, start + n):
        if not 48 <= c.s[i] <= 57:
            return False
        v = v * 10 + (c.s[i] - 48)
    out[0] = v
    return True


cdef inline int _two(const char *s, Py_ssize_t i) noexcept:
    if not (48 <= s[i] <= 57 and 48 <= s[i + 1] <= 57):
        return -1
    return (s[i] - 48) * 10 + s[i + 1] - 48


cdef bint _rfc3339(const char *s, Py_ssize_t n, double *out) noexcept:
    """`markets.venues.feed.exchange_time` of "YYYY-MM-DDTHH:MM:SS[.fraction]Z", 1-9 fraction
    digits cut to microseconds as `datetime.fromisoformat` does; False for any other text."""
    cdef int year, month, day, hour, minute, second, yy, era, yoe, doy, doe, mp, k
    cdef long long days, micros = 0
    cdef Py_ssize_t i
    if n < 20 or s[n - 1] != 90 or s[4] != 45 or s[7] != 45 or s[10] != 84:
        return False
    if s[13] != 58 or s[16] != 58:
        return False
    yy = _two(s, 0)
    k = _two(s, 2)
    month, day = _two(s, 5), _two(s, 8)
    hour, minute, second = _two(s, 11), _two(s, 14), _two(s, 17)
    if min(yy, k, month, day, hour, minute, second) < 0:
        return False
    year = yy * 100 + k
    if year < 1 or not 1 <= month <= 12 or hour > 23 or minute > 59 or second > 59:
        return False
    if day < 1 or day > _month_days(year, month):
        return False
    if n > 20:
        if s[19] != 46 or n - 21 < 1 or n - 21 > 9:
            return False
        for i in range(20, n - 1):
            if not 48 <= s[i] <= 57:
                return False
            if i < 26:
                micros = micros * 10 + (s[i] - 48)
        for i in range(n - 21, 6):
            micros *= 10
    # Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    yy = year - (month <= 2)
    era = yy // 400
    yoe = yy - era * 400
    mp = month + 9 if month <= 2 else month - 3
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = <long long> era * 146097 + doe - 719468
    # As `timedelta.total_seconds`: whole microseconds / 10**6, one correctly rounded division.
    out[0] = <double> ((days * 86400 + hour * 3600 + minute * 60 + second) * 1000000 + micros) / 1e6
    return True


cdef int _month_days(int year, int month) noexcept:
    if month == 2:
        return 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    return 30 if month in (4, 6, 9, 11) else 31


cdef extern from *:
    """
    /* counter += 1 for the int held in an object slot (a FeedStats counter). */
    static int core_bump(PyObject *o, Py_ssize_t offset) {
        PyObject **p = (PyObject **)((char *)o + offset);
        PyObject *old = *p, *fresh;
        long long v;
        if (old == NULL || !PyLong_CheckExact(old)) {
            PyErr_SetString(PyExc_TypeError, "a feed counter is not an int");
            return -1;
        }
        v = PyLong_AsLongLong(old);
        if (v == -1 && PyErr_Occurred()) return -1;
        fresh = PyLong_FromLongLong(v + 1);
        if (fresh == NULL) return -1;
        *p = fresh;
        Py_DECREF(old);
        return 0;
    }
    """
    int core_bump(object o, Py_ssize_t offset) except -1


cdef enum:
    FRAMES, BOOK_UPDATES, CHECKSUM_OK, CHECKSUM_FAILED


cdef class _Market:
    """One subscribed symbol of a feed: its wire bytes, canonical market and book."""

    cdef bytes symbol
    cdef str market
    cdef Book book


cdef class _Wire:
    """What the three handlers share: the feed, its symbols, books and counters."""

    cdef object feed
    cdef object reference
    cdef object stats
    cdef Py_ssize_t counter[4]  # FRAMES, BOOK_UPDATES, CHECKSUM_OK, CHECKSUM_FAILED
    cdef list symbols
    # Scratch `Levels` for one frame's sides, reused from frame to frame (`levels`).
    cdef list pool
    cdef Py_ssize_t used

    def __init__(self, feed, reference):
        """`reference`: the feed's own `handle`, which takes every frame this one does not."""
        cdef _Market entry
        self.feed = feed
        self.reference = reference
        self.stats = feed.stats
        # The counters the handlers add to, by their slots in the (slots) `FeedStats`: an
        # attribute read and write each from C cost several times the addition.
        for k, name in enumerate((b"frames", b"book_updates", b"checksum_ok", b"checksum_failed")):
            self.counter[k] = core_slot(type(self.stats), name)
            if self.counter[k] < 0:
                raise TypeError(f"{type(self.stats)!r} has no {name.decode()} slot")
        self.symbols = []
        self.pool = []
        self.used = 0
        for symbol, market in feed.markets.items():
            entry = _Market.__new__(_Market)
            entry.symbol = symbol.encode()
            entry.market = market
            entry.book = feed.books[market]
            self.symbols.append(entry)

    cdef Levels levels(self):
        """An empty scratch `Levels` for the frame being read (the handlers start each frame
        at `used = 0`): they only pass the books what it holds, which copy it."""
        cdef Levels out
        if self.used < len(self.pool):
            out = <Levels> self.pool[self.used]
            out.reset()
        else:
            out = Levels()
            self.pool.append(out)
        self.used += 1
        return out

    cdef _Market lookup(self, Cur *c, Py_ssize_t start, Py_ssize_t n):
        cdef _Market entry
        for entry in self.symbols:
            if len(entry.symbol) == n and memcmp(<const char *> entry.symbol, c.s + start, n) == 0:
                return entry
        return None

    cdef int stamp(self, Book book, object exchange_ts, object received_ts) except -1:
        """`Feed.stamp`: the change's venue time, receive time and lag."""
        cdef double delay, offset, most, lag = 0.0
        if exchange_ts is not None:
            delay = <double> received_ts - <double> exchange_ts
            known = self.feed.clock_offset
            if known is None or delay < <double> known:
                most = self.feed.max_clock_offset  # read now: a recorded replay raises it
                offset = delay if delay <= most else most
                self.feed.clock_offset = offset
            else:
                offset = known
            lag = delay - offset
        book.exchange_ts = exchange_ts
        book.received_ts = received_ts
        book.lag = lag
        return 0


cdef class CoinbaseWire(_Wire):
    """`CoinbaseFeed.handle` for its `l2_data` frames in sequence."""

    def handle(self, str text, received_ts):
        cdef Py_ssize_t n, a, b, ts_start = -1, ts_n = 0
        cdef Cur c
        cdef long long seq = -1
        cdef bint channel = False
        cdef list events = []
        c.s = PyUnicode_AsUTF8AndSize(text, &n)
        c.i = 0
        c.n = n
        self.used = 0
        if not _lit(&c, 123) or _lit(&c, 125):
            return self.reference(text, received_ts)
        while True:
            if not _string(&c, &a, &b) or not _lit(&c, 58):
                return self.reference(text, received_ts)
            if _is(&c, a, b, "channel", 7):
                if channel or not _string(&c, &a, &b) or not _is(&c, a, b, "l2_data", 7):
                    return self.reference(text, received_ts)
                channel = True
            elif _is(&c, a, b, "sequence_num", 12):
                if seq >= 0 or not _number(&c, &a, &b) or not _uint(&c, a, b, &seq):
                    return self.reference(text, received_ts)
            elif _is(&c, a, b, "timestamp", 9):
                if ts_start >= 0 or not _string(&c, &ts_start, &ts_n):
                    return self.reference(text, received_ts)
            elif _is(&c, a, b, "events", 6):
                if events or not self.events(&c, events):
                    return self.reference(text, received_ts)
            elif not _skip(&c, 1):
                return self.reference(text, received_ts)
            if _lit(&c, 44):
                continue
            if not _lit(&c, 125) or not _end(&c):
                return self.reference(text, received_ts)
            break
        return self.apply(text, received_ts, channel, seq, ts_start, ts_n, events, &c)

    cdef object apply(
        self, str text, object received_ts, bint channel, long long seq, Py_ssize_t ts_start,
        Py_ssize_t ts_n, list events, Cur *c
    ):
        cdef double ts
        cdef _Market entry
        cdef Book book
        cdef list changed = []
        cdef tuple event
        cdef object exchange_ts = None
        feed = self.feed
        last = feed.last_seq
        if not channel or seq < 0 or not events:
            return self.reference(text, received_ts)
        if last is not None and seq != <long long> last + 1:
            return self.reference(text, received_ts)  # late, or a gap: the feed resyncs
        if ts_start >= 0 and ts_n:
            if not _rfc3339(c.s + ts_start, ts_n, &ts):
                return self.reference(text, received_ts)
            exchange_ts = ts
        core_bump(self.stats, self.counter[FRAMES])
        feed.last_seq = seq
        sequence = seq
        for event in events:
            entry, snapshot, bids, asks = event
            book = entry.book
            if snapshot:
                book.load_levels(bids, asks, sequence)
            elif book.valid:
                book.apply_levels(bids, asks)
                book.sequence = sequence
            else:
                continue  # updates before the fresh snapshot belong to the dropped book
            core_bump(self.stats, self.counter[BOOK_UPDATES])
            self.stamp(book, exchange_ts, received_ts)
            if entry.market not in changed:
                changed.append(entry.market)
        crossed = [market for market in changed if (<Book> feed.books[market]).is_crossed()]
        if crossed:
            feed._resync(crossed, "crossed")
        return changed

    cdef bint events(self, Cur *c, list events) except -1:
        """The `events` array: each a snapshot or update of a subscribed product."""
        cdef Py_ssize_t a, b
        cdef int kind
        cdef _Market entry
        cdef Levels bids, asks
        if not _lit(c, 91) or _lit(c, 93):
            return False
        while True:
            if not _lit(c, 123):
                return False
            kind = -1
            entry = None
            bids = None
            while True:
                if not _string(c, &a, &b) or not _lit(c, 58):
                    return False
                if _is(c, a, b, "type", 4):
                    if kind >= 0 or not _string(c, &a, &b):
                        return False
                    if _is(c, a, b, "snapshot", 8):
                        kind = 1
                    elif _is(c, a, b, "update", 6):
                        kind = 0
                    else:
                        return False
                elif _is(c, a, b, "product_id", 10):
                    if entry is not None or not _string(c, &a, &b):
                        return False
                    entry = self.lookup(c, a, b)
                    if entry is None:
                        return False
                elif _is(c, a, b, "updates", 7):
                    if bids is not None:
                        return False
                    bids, asks = self.levels(), self.levels()
                    if not _coinbase_updates(c, bids, asks):
                        return False
                elif not _skip(c, 3):
                    return False
                if _lit(c, 44):
                    continue
                if not _lit(c, 125):
                    return False
                break
            if kind < 0 or entry is None or bids is None:
                return False
            events.append((entry, kind == 1, bids, asks))
            if _lit(c, 44):
                continue
            return _lit(c, 93)


cdef bint _coinbase_updates(Cur *c, Levels bids, Levels asks) except -1:
    """`{"side": "bid"|"offer", "price_level": "...", "new_quantity": "..."}` objects."""
    cdef Py_ssize_t a, b, p = -1, pn = 0, q = -1, qn = 0
    cdef int side
    if not _lit(c, 91):
        return False
    if _lit(c, 93):
        return True
    while True:
        if not _lit(c, 123):
            return False
        side = -1
        p = q = -1
        while True:
            if not _string(c, &a, &b) or not _lit(c, 58):
                return False
            if _is(c, a, b, "side", 4):
                if side >= 0 or not _string(c, &a, &b):
                    return False
                if _is(c, a, b, "bid", 3):
                    side = 1
                elif _is(c, a, b, "offer", 5):
                    side = 0
                else:
                    return False
            elif _is(c, a, b, "price_level", 11):
                if p >= 0 or not _string(c, &p, &pn):
                    return False
            elif _is(c, a, b, "new_quantity", 12):
                if q >= 0 or not _string(c, &q, &qn):
                    return False
            elif not _skip(c, 5):
                return False
            if _lit(c, 44):
                continue
            if not _lit(c, 125):
                return False
            break
        if side < 0 or p < 0 or q < 0:
            return False
        if not (bids if side else asks).add_chars(c.s + p, pn, c.s + q, qn):
            return False
        if _lit(c, 44):
            continue
        return _lit(c, 93)


cdef uint32_t _checksum(Book book) noexcept:
    cdef uint32_t crc = 0xFFFFFFFF
    crc = book._asks.crc(crc, 10)
    crc = book._bids.crc(crc, 10)
    return crc ^ 0xFFFFFFFF


cdef class KrakenWire(_Wire):
    """`KrakenFeed.handle` for its `book` frames."""

    def handle(self, str text, received_ts):
        cdef Py_ssize_t n, a, b
        cdef Cur c
        cdef int kind = -1
        cdef bint channel = False
        cdef list items = None
        c.s = PyUnicode_AsUTF8AndSize(text, &n)
        c.i = 0
        c.n = n
        self.used = 0
        if not _lit(&c, 123) or _lit(&c, 125):
            return self.reference(text, received_ts)
        while True:
            if not _string(&c, &a, &b) or not _lit(&c, 58):
                return self.reference(text, received_ts)
            if _is(&c, a, b, "channel", 7):
                if channel or not _string(&c, &a, &b) or not _is(&c, a, b, "book", 4):
                    return self.reference(text, received_ts)
                channel = True
            elif _is(&c, a, b, "type", 4):
                if kind >= 0 or not _string(&c, &a, &b):
                    return self.reference(text, received_ts)
                if _is(&c, a, b, "snapshot", 8):
                    kind = 1
                elif _is(&c, a, b, "update", 6):
                    kind = 0
                else:
                    return self.reference(text, received_ts)
            elif _is(&c, a, b, "data", 4):
                if items is not None:
                    return self.reference(text, received_ts)
                items = []
                if not self.items(&c, items):
                    return self.reference(text, received_ts)
            elif not _skip(&c, 1):
                return self.reference(text, received_ts)
            if _lit(&c, 44):
                continue
            if not _lit(&c, 125) or not _end(&c):
                return self.reference(text, received_ts)
            break
        if not channel or kind < 0 or items is None:
            return self.reference(text, received_ts)
        return self.commit(kind == 1, items, received_ts)

    cdef object commit(self, bint snapshot, list items, object received_ts):
        cdef _Market entry
        cdef Book book
        cdef list changed = []
        cdef long long checksum
        feed = self.feed
        core_bump(self.stats, self.counter[FRAMES])
        for entry, bids, asks, checksum, exchange_ts in items:
            book = entry.book
            if snapshot:
                book.load_levels(bids, asks, None)
                book.cut(feed.wire_depth)
            elif book.valid:
                book.apply_levels(bids, asks)
            else:
                continue  # waiting for the snapshot of a resubscription
            core_bump(self.stats, self.counter[BOOK_UPDATES])
            self.stamp(book, exchange_ts, received_ts)
            changed.append(entry.market)
            if _checksum(book) != checksum:
                core_bump(self.stats, self.counter[CHECKSUM_FAILED])
                feed._resync(entry.market, "checksum mismatch")
                continue
            core_bump(self.stats, self.counter[CHECKSUM_OK])
            if book.is_crossed():
                feed._resync(entry.market, "crossed")
        return changed

    cdef bint items(self, Cur *c, list items) except -1:
        """The `data` array: per symbol its bids, asks, checksum and timestamp."""
        cdef Py_ssize_t a, b, ts_start, ts_n
        cdef long long checksum
        cdef bint has_checksum
        cdef double ts
        cdef _Market entry
        cdef Levels bids, asks
        if not _lit(c, 91):
            return False
        if _lit(c, 93):
            return True
        while True:
            if not _lit(c, 123):
                return False
            entry = None
            bids = asks = None
            has_checksum = False
            ts_start = -1
            ts_n = 0
            while True:
                if not _string(c, &a, &b) or not _lit(c, 58):
                    return False
                if _is(c, a, b, "symbol", 6):
                    if entry is not None or not _string(c, &a, &b):
                        return False
                    entry = self.lookup(c, a, b)
                    if entry is None:
                        return False
                elif _is(c, a, b, "bids", 4):
                    if bids is not None:
                        return False
                    bids = self.levels()
                    if not _kraken_levels(c, bids):
                        return False
                elif _is(c, a, b, "asks", 4):
                    if asks is not None:
                        return False
                    asks = self.levels()
                    if not _kraken_levels(c, asks):
                        return False
                elif _is(c, a, b, "checksum", 8):
                    if has_checksum or not _number(c, &a, &b) or not _uint(c, a, b, &checksum):
                        return False
                    has_checksum = True
                elif _is(c, a, b, "timestamp", 9):
                    if ts_start >= 0 or not _string(c, &ts_start, &ts_n):
                        return False
                elif not _skip(c, 3):
                    return False
                if _lit(c, 44):
                    continue
                if not _lit(c, 125):
                    return False
                break
            if entry is None or not has_checksum:
                return False
            exchange_ts = None
            if ts_start >= 0 and ts_n:
                if not _rfc3339(c.s + ts_start, ts_n, &ts):
                    return False
                exchange_ts = ts
            items.append((
                entry,
                self.levels() if bids is None else bids,
                self.levels() if asks is None else asks,
                checksum,
                exchange_ts,
            ))
            if _lit(c, 44):
                continue
            return _lit(c, 93)


cdef bint _kraken_levels(Cur *c, Levels out) except -1:
    """`[{"price": number, "qty": number}, ...]`, each number's text its own."""
    cdef Py_ssize_t a, b, p, pn = 0, q, qn = 0
    if not _lit(c, 91):
        return False
    if _lit(c, 93):
        return True
    while True:
        if not _lit(c, 123):
            return False
        p = q = -1
        while True:
            if not _string(c, &a, &b) or not _lit(c, 58):
                return False
            if _is(c, a, b, "price", 5):
                if p >= 0 or not _number(c, &p, &pn):
                    return False
            elif _is(c, a, b, "qty", 3):
                if q >= 0 or not _number(c, &q, &qn):
                    return False
            elif not _skip(c, 5):
                return False
            if _lit(c, 44):
                continue
            if not _lit(c, 125):
                return False
            break
        if p < 0 or q < 0 or not out.add_chars(c.s + p, pn, c.s + q, qn):
            return False
        if _lit(c, 44):
            continue
        return _lit(c, 93)


cdef class BinanceWire(_Wire):
    """`BinanceFeed.handle` for the depth diffs that continue a valid book."""

    def handle(self, str text, received_ts):
        cdef Py_ssize_t n, a, b
        cdef Cur c
        cdef long long first = -1, last = -1, event_ms = -1
        cdef bint has_data = False, depth_update = False
        cdef _Market entry = None
        cdef Levels bids = None, asks = None
        cdef Book book
        c.s = PyUnicode_AsUTF8AndSize(text, &n)
        c.i = 0
        c.n = n
        self.used = 0
        if not _lit(&c, 123) or _lit(&c, 125):
            return self.reference(text, received_ts)
        while True:
            if not _string(&c, &a, &b) or not _lit(&c, 58):
                return self.reference(text, received_ts)
            if _is(&c, a, b, "data", 4):
                if has_data or not _lit(&c, 123):
                    return self.reference(text, received_ts)
                has_data = True
                while True:
                    if not _string(&c, &a, &b) or not _lit(&c, 58):
                        return self.reference(text, received_ts)
                    if _is(&c, a, b, "e", 1):
                        if not _string(&c, &a, &b) or not _is(&c, a, b, "depthUpdate", 11):
                            return self.reference(text, received_ts)
                        depth_update = True
                    elif _is(&c, a, b, "E", 1):
                        if event_ms >= 0 or not _number(&c, &a, &b) or not _uint(&c, a, b, &event_ms):
                            return self.reference(text, received_ts)
                    elif _is(&c, a, b, "s", 1):
                        if entry is not None or not _string(&c, &a, &b):
                            return self.reference(text, received_ts)
                        entry = self.lookup(&c, a, b)
                        if entry is None:
                            return self.reference(text, received_ts)
                    elif _is(&c, a, b, "U", 1):
                        if first >= 0 or not _number(&c, &a, &b) or not _uint(&c, a, b, &first):
                            return self.reference(text, received_ts)
                    elif _is(&c, a, b, "u", 1):
                        if last >= 0 or not _number(&c, &a, &b) or not _uint(&c, a, b, &last):
                            return self.reference(text, received_ts)
                    elif _is(&c, a, b, "b", 1):
                        if bids is not None:
                            return self.reference(text, received_ts)
                        bids = self.levels()
                        if not _pairs(&c, bids):
                            return self.reference(text, received_ts)
                    elif _is(&c, a, b, "a", 1):
                        if asks is not None:
                            return self.reference(text, received_ts)
                        asks = self.levels()
                        if not _pairs(&c, asks):
                            return self.reference(text, received_ts)
                    elif not _skip(&c, 2):
                        return self.reference(text, received_ts)
                    if _lit(&c, 44):
                        continue
                    if not _lit(&c, 125):
                        return self.reference(text, received_ts)
                    break
            elif not _skip(&c, 1):
                return self.reference(text, received_ts)
            if _lit(&c, 44):
                continue
            if not _lit(&c, 125) or not _end(&c):
                return self.reference(text, received_ts)
            break
        if (
            not depth_update or entry is None or bids is None or asks is None
            or first < 0 or last < first or not 0 <= event_ms < (1LL << 53)
        ):
            return self.reference(text, received_ts)
        book = entry.book
        sequence = book.sequence
        if not book.valid or type(sequence) is not int:
            return self.reference(text, received_ts)  # buffered until its snapshot
        if last > sequence and first > sequence + 1:
            return self.reference(text, received_ts)  # a gap: the feed resyncs
        core_bump(self.stats, self.counter[FRAMES])
        if last > sequence:
            book.apply_levels(bids, asks)
            book.sequence = last
            core_bump(self.stats, self.counter[BOOK_UPDATES])
        self.stamp(book, <double> event_ms / 1000.0, received_ts)
        if book.is_crossed():
            return self.feed._check_crossed(entry.market)
        return [entry.market]


cdef bint _pairs(Cur *c, Levels out) except -1:
    """Binance's `[["price", "qty"], ...]`."""
    cdef Py_ssize_t p, pn, q, qn
    if not _lit(c, 91):
        return False
    if _lit(c, 93):
        return True
    while True:
        if not _lit(c, 91) or not _string(c, &p, &pn) or not _lit(c, 44):
            return False
        if not _string(c, &q, &qn) or not _lit(c, 93):
            return False
        if not out.add_chars(c.s + p, pn, c.s + q, qn):
            return False
        if _lit(c, 44):
            continue
        return _lit(c, 93)
