"""A lean WebSocket client for the live-load benchmark: RFC 6455 on an asyncio protocol.

The benchmark's 200 clients share a core with daphne, so whatever they spend reading a push is
added to every later push's latency. The `websockets` library took about 15 ms of that core per
batch of 200 messages on this machine (a task wake-up, a frame parser's generator and a queue per
message). This reads each message in the loop's own call of `data_received`: the handshake,
frames (fragmented or not), a pong for each ping and the closing handshake, nothing else (no
extensions, no sending of data).
"""

import asyncio
import base64
import hashlib
import os
import time
from collections.abc import Callable
from urllib.parse import urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10


class HandshakeFailed(Exception):
    """The server refused the upgrade (an HTTP status other than 101), or sent a bad accept."""


class Dropped(Exception):
    """The connection ended before the server answered the upgrade (daphne drops a handshake its
    application has not accepted in time): worth another try."""


class Closed(Exception):
    """The server closed an open socket, or the connection was lost."""


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (every client frame is masked), final, of at most 125 bytes."""
    assert len(payload) <= 125, "control frames only"
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def accept_of(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


class LeanSocket(asyncio.Protocol):
    """One client socket; `on_message(payload, received)` is called with each whole message's
    bytes and the `time.time()` at which its last byte was read."""

    def __init__(self, request: bytes, key: str, on_message: Callable[[bytes, float], None]):
        loop = asyncio.get_running_loop()
        self.request, self.key, self.on_message = request, key, on_message
        self.opened = loop.create_future()
        self.closed = loop.create_future()  # the reason: a Closed, or None when we closed it
        self.buffer = bytearray()
        self.parts: list[bytes] = []  # a fragmented message's frames so far
        self.transport: asyncio.Transport | None = None
        self.closing = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        received = time.time()
        self.buffer += data
        if not self.opened.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            del self.buffer[: end + 4]
            error = self._refusal(head)
            if error is not None:
                self.opened.set_exception(error)
                self.transport.close()
                return
            self.opened.set_result(None)
        try:
            self._frames(received)
        except Closed as error:
            self._end(error)

    def _refusal(self, head: list[str]) -> HandshakeFailed | None:
        status = head[0].split(" ", 2)
        if len(status) < 2 or status[1] != "101":
            return HandshakeFailed(f"server answered {head[0]!r}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head)}
        if headers.get("sec-websocket-accept") != accept_of(self.key):
            return HandshakeFailed("wrong Sec-WebSocket-Accept")
        return None

    def _frames(self, received: float) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            first, second = buf[0], buf[1]
            if second & 0x80:
                raise Closed("the server sent a masked frame")
            length, start = second & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, start = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, start = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < start + length:
                return
            payload = bytes(buf[start : start + length])
            del buf[: start + length]
            self._frame(first & 0x0F, bool(first & 0x80), payload, received)

    def _frame(self, opcode: int, final: bool, payload: bytes, received: float) -> None:
        if opcode in (TEXT, BINARY, CONTINUATION):
            if opcode != CONTINUATION and self.parts:
                raise Closed("a new message inside a fragmented one")
            if opcode == CONTINUATION and not self.parts:
                raise Closed("a continuation frame outside a message")
            if final and not self.parts:
                self.on_message(payload, received)
            elif final:
                self.on_message(b"".join([*self.parts, payload]), received)
                self.parts = []
            else:
                self.parts.append(payload)
        elif opcode == PING:
            self.transport.write(masked(PONG, payload))
        elif opcode == CLOSE:
            if self.closing:  # the answer to our own close
                self.transport.close()
                self._end(None)
                return
            self.transport.write(masked(CLOSE, payload[:2]))
            self.transport.close()
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            raise Closed(f"closed by the server with code {code}")
        elif opcode != PONG:
            raise Closed(f"unknown opcode {opcode}")

    def close(self) -> None:
        """Start the closing handshake (code 1000); the server's close ends the connection."""
        if self.transport is not None and not self.transport.is_closing():
            self.closing = True
            self.transport.write(masked(CLOSE, (1000).to_bytes(2, "big")))
            # daphne answers with its own close; a server that does not still lets go here.
            asyncio.get_running_loop().call_later(5, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(Dropped(f"connection lost before the upgrade: {exc!r}"))
        self._end(None if self.closing else Closed(f"connection lost: {exc!r}"))

    def _end(self, reason: Closed | None) -> None:
        if not self.closed.done():
            self.closed.set_result(reason)


async def connect(
    url: str, headers: dict[str, str], on_message: Callable[[bytes, float], None]
) -> LeanSocket:
    """Open `url` (ws://host:port/path?query) with `headers` (Origin, Cookie, ...)."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    _, socket = await loop.create_connection(
        lambda: LeanSocket(request, key, on_message), parts.hostname, parts.port
    )
    try:
        await socket.opened
    except BaseException:  # refused, dropped or given up on (cancelled): nothing left open
        socket.transport.close()
        raise
    return socket
