"""The live-load benchmark's lean WebSocket client against a real server (the websockets
library's), over loopback: handshake, messages whole and fragmented, pings, closes, refusals."""

import asyncio

import pytest
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from bench import lean_ws


async def _server(handler, **options):
    server = await serve(handler, "127.0.0.1", 0, **options)
    port = server.sockets[0].getsockname()[1]
    return server, f"ws://127.0.0.1:{port}/ws/live/?topics=desk"


@pytest.mark.asyncio
async def test_reads_whole_and_fragmented_messages_and_sends_its_headers():
    seen = {}

    async def handler(ws):
        seen["path"] = ws.request.path
        seen["cookie"] = ws.request.headers["Cookie"]
        await ws.send("first")
        await ws.send(["frag", "ment", "ed"])  # one message in three frames
        await ws.send("x" * 70_000)  # a 64-bit length
        await ws.wait_closed()

    server, url = await _server(handler)
    messages = []
    async with server:
        socket = await lean_ws.connect(
            url, {"Cookie": "sessionid=abc"}, lambda m, t: messages.append((m, t))
        )
        for _ in range(100):
            if len(messages) == 3:
                break
            await asyncio.sleep(0.02)
        socket.close()
        assert await socket.closed is None  # our close, answered: not an error
    assert [m for m, _ in messages] == [b"first", b"fragmented", b"x" * 70_000]
    assert all(isinstance(t, float) and t > 0 for _, t in messages)
    assert seen == {"path": "/ws/live/?topics=desk", "cookie": "sessionid=abc"}


@pytest.mark.asyncio
async def test_answers_a_ping_so_the_server_keeps_it():
    pongs = []

    async def handler(ws):
        pongs.append(await asyncio.wait_for(await ws.ping(b"are you there"), 5))
        await ws.send("after the ping")
        await ws.wait_closed()

    server, url = await _server(handler, ping_interval=None)
    messages = []
    async with server:
        socket = await lean_ws.connect(url, {}, lambda m, t: messages.append(m))
        for _ in range(100):
            if messages:
                break
            await asyncio.sleep(0.02)
        socket.close()
        await socket.closed
    assert messages == [b"after the ping"]
    assert len(pongs) == 1  # the pong came back (its latency)


@pytest.mark.asyncio
async def test_a_server_close_is_reported_with_its_code():
    async def handler(ws):
        await ws.close(code=4401, reason="log in again")

    server, url = await _server(handler)
    async with server:
        socket = await lean_ws.connect(url, {}, lambda m, t: None)
        reason = await asyncio.wait_for(socket.closed, 5)
    assert isinstance(reason, lean_ws.Closed)
    assert "4401" in str(reason)


@pytest.mark.asyncio
async def test_a_refused_upgrade_is_a_handshake_failure():
    def refuse(connection, request):
        return Response(403, "Forbidden", Headers(), b"no")

    server, url = await _server(lambda ws: ws.wait_closed(), process_request=refuse)
    async with server:
        with pytest.raises(lean_ws.HandshakeFailed, match="403"):
            await lean_ws.connect(url, {}, lambda m, t: None)


@pytest.mark.asyncio
async def test_a_connection_dropped_before_the_upgrade_is_worth_another_try():
    async def drop(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(lean_ws.Dropped):
            await lean_ws.connect(f"ws://127.0.0.1:{port}/", {}, lambda m, t: None)


def test_client_frames_are_masked_and_unmask_to_their_payload():
    frame = lean_ws.masked(lean_ws.CLOSE, (1000).to_bytes(2, "big"))
    assert frame[0] == 0x88 and frame[1] == 0x82  # final close, masked, 2 bytes
    mask, body = frame[2:6], frame[6:]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(body)) == b"\x03\xe8"
    # RFC 6455's own example (section 1.3).
    assert lean_ws.accept_of("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
