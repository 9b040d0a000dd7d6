"""python `websockets` as a peer of ws13's interop tests (see ../README.md
for the agent protocol every peer speaks).

    python3 peer.py server   prints {"event":"listening","urls":{...}} and serves
    python3 peer.py client   opens one connection per job line read on stdin

Events (open, close, error) go to stdout as JSON lines.
"""

import asyncio
import base64
import json
import os
import ssl
import sys
import threading

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory

PREFIX = "@@ws13 "
GREETING = "hello from the peer ✓"
MAX = 64 << 20
PROTOCOLS = ["chat.v1", "chat.v2"]

# The deflate servers that impose a parameter on whatever the client offers,
# by URL key, in RFC 7692's names (ServerPerMessageDeflateFactory's too).
IMPOSED = {
    "deflate-snct": dict(server_no_context_takeover=True),
    "deflate-cnct": dict(client_no_context_takeover=True),
    "deflate-w9": dict(server_max_window_bits=9, client_max_window_bits=9),
    "deflate-w15": dict(server_max_window_bits=15, client_max_window_bits=15),
}


def emit(ev):
    sys.stdout.write(json.dumps(ev) + "\n")
    sys.stdout.flush()


def text_fragments(data, splits):
    """Cuts data at the offsets given, moved forward to the next code point
    boundary: websockets sends text fragments as str, which cannot hold half
    a character."""
    out, start = [], 0
    for cut in list(splits) + [len(data)]:
        cut = max(cut, start)
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:
            cut += 1
        out.append(data[start:cut].decode())
        start = cut
    return out


def response_headers(ws):
    """The headers of the handshake's response: response_headers in
    websockets' legacy API, response.headers in the new one (the default
    from websockets 14 on)."""
    headers = getattr(ws, "response_headers", None)
    if headers is None:
        headers = ws.response.headers
    return headers


async def pieces_with_ping(ws, pieces, after, ping):
    """Yields the fragments of a message and pings after fragment number
    after: send writes a fragment before it asks for the next."""
    for i, piece in enumerate(pieces):
        yield piece
        if i == after:
            await ws.ping(ping)


async def pieces_then_close(ws, pieces, after, code, reason):
    """Yields the fragments of a message up to fragment number after, then
    closes: the message stays unfinished."""
    for i, piece in enumerate(pieces):
        yield piece
        if i == after:
            await ws.close(code, reason)
            return


async def command(ws, cmd):
    kind = cmd["cmd"]
    if kind == "info":
        ext = response_headers(ws).get("Sec-WebSocket-Extensions", "")
        await ws.send(PREFIX + json.dumps({"protocol": ws.subprotocol or "", "extensions": ext}))
    elif kind == "frag":
        data = base64.b64decode(cmd["data"])
        if cmd["type"] == "text":
            pieces = text_fragments(data, cmd["splits"])
        else:
            cuts = [0] + list(cmd["splits"]) + [len(data)]
            pieces = [data[a:b] for a, b in zip(cuts, cuts[1:])]
        if cmd.get("closeAfter") is not None:
            await ws.send(pieces_then_close(ws, pieces, cmd["closeAfter"], cmd["code"], cmd["reason"]))
        elif cmd.get("pingAfter") is not None:
            await ws.send(pieces_with_ping(ws, pieces, cmd["pingAfter"], base64.b64decode(cmd["pingData"])))
        else:
            await ws.send(pieces)
    elif kind == "ping":
        waiter = await ws.ping(base64.b64decode(cmd["data"]))
        await waiter
        # websockets resolves the waiter only for a pong with the same data.
        await ws.send(PREFIX + json.dumps({"pong": cmd["data"]}))
    elif kind == "close":
        await ws.close(cmd["code"], cmd["reason"])
    else:
        await ws.send(PREFIX + json.dumps({"error": "unknown command " + kind}))


async def agent(ws, conn_id, url):
    """Echoes every data message and obeys the commands of the driver."""
    if "greet=1" in url.partition("?")[2].split("&"):
        # Two messages at once, before anything is read, so that they
        # follow the handshake's response closely.
        await ws.send(GREETING)
        await ws.send(bytes(range(256)))
    tasks = set()
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith(PREFIX):
                # Commands run beside the loop: a ping waits for its pong,
                # which only this loop's reading lets in.
                task = asyncio.create_task(command(ws, json.loads(msg[len(PREFIX):])))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            else:
                await ws.send(msg)
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    emit({"id": conn_id, "event": "close", "code": ws.close_code, "reason": ws.close_reason})


def request_path(ws):
    return getattr(ws, "path", None) or ws.request.path


def request_id(ws):
    query = request_path(ws).partition("?")[2]
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == "id":
            return value
    return ""


async def server():
    common = dict(subprotocols=PROTOCOLS, max_size=MAX, ping_interval=None)
    plain = await websockets.serve(lambda ws, *_: agent(ws, request_id(ws), request_path(ws)), "127.0.0.1", 0, compression=None, **common)
    # compression="deflate" (the default): websockets asks for 12-bit windows.
    deflate = await websockets.serve(lambda ws, *_: agent(ws, request_id(ws), request_path(ws)), "127.0.0.1", 0, **common)
    # wss:// with the certificate the driver made.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.environ["INTEROP_TLS_CERT"], os.environ["INTEROP_TLS_KEY"])
    secure = await websockets.serve(lambda ws, *_: agent(ws, request_id(ws), request_path(ws)), "127.0.0.1", 0, compression=None, ssl=ctx, **common)
    servers = [("plain", plain), ("deflate", deflate), ("frag", plain), ("tls", secure)]
    for name, params in IMPOSED.items():
        srv = await websockets.serve(lambda ws, *_: agent(ws, request_id(ws), request_path(ws)), "127.0.0.1", 0, compression=None,
                                     extensions=[ServerPerMessageDeflateFactory(**params)], **common)
        servers.append((name, srv))
    urls = {}
    for name, srv in servers:
        port = srv.sockets[0].getsockname()[1]
        scheme = "wss" if srv is secure else "ws"
        urls[name] = f"{scheme}://127.0.0.1:{port}/{name}"
    emit({"event": "listening", "urls": urls})
    await asyncio.Future()


async def client_conn(job):
    kwargs = dict(max_size=MAX, ping_interval=None, open_timeout=10)
    if job.get("protocols"):
        kwargs["subprotocols"] = job["protocols"]
    if job.get("origin"):
        kwargs["origin"] = job["origin"]
    if job["url"].startswith("wss:"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        kwargs["ssl"] = ctx
    deflate = job.get("deflate", "default")
    if deflate == "off":
        kwargs["compression"] = None
    elif deflate == "nct":
        kwargs["compression"] = None
        kwargs["extensions"] = [ClientPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True, client_max_window_bits=True)]
    elif deflate == "offer":
        # The driver's parameters, in RFC 7692's names; client_max_window_bits
        # without a value unless given one, as by default.
        params = dict(client_max_window_bits=True)
        params.update(job["offer"])
        kwargs["compression"] = None
        kwargs["extensions"] = [ClientPerMessageDeflateFactory(**params)]
    # default: compression="deflate", which offers client_max_window_bits.
    try:
        ws = await websockets.connect(job["url"], **kwargs)
    except Exception as err:  # the driver asserts on refusals, e.g. a 403
        emit({"id": job["id"], "event": "error", "detail": repr(err)})
        return
    emit({"id": job["id"], "event": "open"})
    await agent(ws, job["id"], job["url"])


async def client():
    loop = asyncio.get_running_loop()
    tasks = set()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        task = asyncio.create_task(client_conn(json.loads(line)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def exit_at_eof():
    """The driver holds our stdin: at its EOF the driver is gone, and so are
    we, whatever the event loop is doing."""
    while sys.stdin.buffer.read(65536):
        pass
    os._exit(0)


if __name__ == "__main__":
    if sys.argv[1:] == ["server"]:
        threading.Thread(target=exit_at_eof, daemon=True).start()
        asyncio.run(server())
    elif sys.argv[1:] == ["client"]:
        asyncio.run(client())
    else:
        sys.exit("usage: peer.py server|client")
