"""WebSocket echo server for the proxy's end-to-end tests (`websockets` package).

Flags:
  --port N       listen on 127.0.0.1:N
  --ready FILE   written (atomically, holding our pid) once the socket listens

Echoes every message (text or binary) back. On SIGTERM/SIGINT it stops
listening, closes open connections with 1001 (going away), waits at most 3 s
for the close handshakes, and exits 0.
Uses websockets.asyncio.server (websockets >= 13) and falls back to the
legacy API on older versions.
"""

import argparse
import asyncio
import os
import signal

try:
    from websockets.asyncio.server import serve
except ImportError:  # websockets < 13
    from websockets import serve
from websockets.exceptions import ConnectionClosed

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--ready")
args = parser.parse_args()


async def echo(ws, *_path):  # legacy handlers of websockets < 10.1 also get a path
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def main():
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    server = await serve(echo, "127.0.0.1", args.port, close_timeout=2)
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(args.ready + ".tmp", args.ready)
    await stop
    # Stop listening and send close 1001 to every open WebSocket. wait_closed
    # would also wait out a connection still in its opening handshake (up to
    # open_timeout), so cap it; asyncio.run cancels what is left.
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), 3)
    except asyncio.TimeoutError:
        pass


asyncio.run(main())
