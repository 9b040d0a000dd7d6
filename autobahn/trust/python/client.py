"""Autobahn fuzzingserver client on python websockets, set up as websockets'
own testee (compliance/test_client.py in python-websockets 10.x): the legacy
asyncio API, max_size=2**25 and max_queue=1 for the cases, default
compression, every message echoed, then /updateReports.

    /usr/bin/python3 client.py [url] [agent]   (defaults ws://127.0.0.1:9001, websockets)
"""

import asyncio
import logging
import sys
import urllib.parse

import websockets

logging.basicConfig(level=logging.CRITICAL)


async def case_count(base):
    async with websockets.connect(f"{base}/getCaseCount") as conn:
        return int(await conn.recv())


async def run_case(base, n, agent):
    url = f"{base}/runCase?case={n}&agent={agent}"
    try:
        async with websockets.connect(url, max_size=2**25, max_queue=1) as conn:
            async for message in conn:
                await conn.send(message)
    except (websockets.exceptions.WebSocketException, OSError, asyncio.TimeoutError):
        # The case is over either way; its verdict is the fuzzer's.
        pass


async def main(base, agent):
    count = await case_count(base)
    for n in range(1, count + 1):
        await run_case(base, n, agent)
    async with websockets.connect(f"{base}/updateReports?agent={agent}"):
        pass


if __name__ == "__main__":
    base = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9001"
    agent = urllib.parse.quote(sys.argv[2] if len(sys.argv) > 2 else "websockets")
    asyncio.run(main(base, agent))
