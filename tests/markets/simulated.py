"""Plain websocket and HTTP clients of the simulated venues, and a test-side Kraken book."""

import asyncio
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from decimal import Decimal

from websockets.asyncio.client import ClientConnection, connect

from markets.simulator.server import VenueSimulator
from markets.simulator.specs import Timing

FAST = Timing(
    heartbeat=0.2,
    subscribe_timeout=0.5,
    dislocation_every=(0.3, 0.6),
    dislocation_for=(0.4, 0.8),
)


async def frames(ws: ClientConnection, seconds: float) -> list[str]:
    """Every frame that arrives within `seconds`."""
    received = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            received.append(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
    return received


async def http(
    url: str, method: str = "GET", *, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict]:
    """The status and JSON body of one request (a POST sends `body`, empty by default)."""

    def fetch() -> tuple[int, dict]:
        data = (body or b"") if method == "POST" else None
        request = urllib.request.Request(url, method=method, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            text = exc.read()
            is_json = exc.headers.get("Content-Type") == "application/json"
            return exc.code, json.loads(text) if is_json else {}

    return await asyncio.to_thread(fetch)


def signed(params: dict[str, str], secret: str, *, timestamp: int | None = None) -> str:
    """`params` as Binance wants them signed: timestamped, then HMAC-SHA256 of the query text."""
    stamp = int(time.time() * 1000) if timestamp is None else timestamp
    query = urllib.parse.urlencode({**params, "timestamp": stamp})
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}"


async def coinbase(sim: VenueSimulator, *products: str) -> ClientConnection:
    ws = await connect(sim.urls["coinbase"], max_size=None)
    subscribe = {"type": "subscribe", "product_ids": list(products), "channel": "level2"}
    await ws.send(json.dumps(subscribe))
    return ws


async def kraken(sim: VenueSimulator, depths: dict[str, int]) -> ClientConnection:
    ws = await connect(sim.urls["kraken"])
    for req_id, (symbol, depth) in enumerate(depths.items()):
        params = {"channel": "book", "symbol": [symbol], "depth": depth, "snapshot": True}
        await ws.send(json.dumps({"method": "subscribe", "params": params, "req_id": req_id}))
    return ws


async def binance(sim: VenueSimulator) -> ClientConnection:
    return await connect(sim.urls["binance"] + "/stream?streams=btcusdt@depth@100ms")


async def okx(sim: VenueSimulator, *symbols: str) -> ClientConnection:
    ws = await connect(sim.urls["okx"])
    args = [{"channel": "books", "instId": symbol} for symbol in symbols]
    await ws.send(json.dumps({"op": "subscribe", "args": args}))
    return ws


async def kucoin(sim: VenueSimulator, *symbols: str) -> ClientConnection:
    """A socket on a fresh bullet-public token, subscribed to `symbols` after the welcome."""
    _, bullet = await http(sim.urls["kucoin_rest"] + "/api/v1/bullet-public", method="POST")
    server = bullet["data"]["instanceServers"][0]
    ws = await connect(f"{server['endpoint']}?token={bullet['data']['token']}&connectId=t1")
    assert json.loads(await ws.recv())["type"] == "welcome"
    topic = "/market/level2:" + ",".join(symbols)
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "topic": topic, "response": True}))
    return ws


CONNECT = {
    "coinbase": lambda sim: coinbase(sim, "BTC-USD"),
    "kraken": lambda sim: kraken(sim, {"BTC/USD": 10}),
    "binance": binance,
    "okx": lambda sim: okx(sim, "BTC-USDT"),
    "kucoin": lambda sim: kucoin(sim, "BTC-USDT"),
}


class KrakenBook:
    """Test-side Kraken book: wire lexemes kept as sent, truncated to depth, CRC32 recomputed."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.sides: dict[str, dict[Decimal, tuple[str, str]]] = {"bids": {}, "asks": {}}

    def apply(self, data: dict) -> None:
        for name, side in self.sides.items():
            for level in data[name]:
                price, qty = level["price"], level["qty"]
                if Decimal(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = (price, qty)
            kept = self.ordered(name)[: self.depth]
            self.sides[name] = {Decimal(p): (p, q) for p, q in kept}

    def ordered(self, name: str) -> list[tuple[str, str]]:
        side = self.sides[name]
        return [side[p] for p in sorted(side, reverse=name == "bids")]

    def checksum(self) -> int:
        text = ""
        for price, qty in self.ordered("asks")[:10] + self.ordered("bids")[:10]:
            text += price.replace(".", "").lstrip("0") + qty.replace(".", "").lstrip("0")
        return zlib.crc32(text.encode()) & 0xFFFFFFFF


def kraken_books(raw_frames: list[str], depths: dict[str, int]) -> tuple[dict, int, int]:
    """Replay book frames; return the books, how many checksums matched and how many did not."""
    books = {symbol: KrakenBook(depth) for symbol, depth in depths.items()}
    good = bad = 0
    for raw in raw_frames:
        message = json.loads(raw, parse_float=str, parse_int=str)
        if message.get("channel") != "book":
            continue
        for data in message["data"]:
            book = books[data["symbol"]]
            if message["type"] == "snapshot":
                book.sides = {"bids": {}, "asks": {}}
            book.apply(data)
            if book.checksum() == int(data["checksum"]):
                good += 1
            else:
                bad += 1
    return books, good, bad
