"""Echo server on python websockets, set up as websockets' own Autobahn
testee (compliance/test_server.py in python-websockets 10.x): the legacy
asyncio API with max_size=2**25 and max_queue=1, default compression
(permessage-deflate) and websockets' own UTF-8 validation.

    /usr/bin/python3 server.py [port]     (port 0 picks a free one)

Prints "echo server on ws://127.0.0.1:PORT" on stderr once listening.
"""

import asyncio
import logging
import sys

import websockets

logging.basicConfig(level=logging.CRITICAL)


async def echo(conn, path=None):
    async for message in conn:
        await conn.send(message)


async def main(port):
    async with websockets.serve(echo, "127.0.0.1", port, max_size=2**25, max_queue=1) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"echo server on ws://127.0.0.1:{bound}", file=sys.stderr, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9001))
    except KeyboardInterrupt:
        pass
