"""Plain TCP echo server (asyncio) for the proxy's end-to-end tests.

Flags:
  --port N       listen on 127.0.0.1:N
  --ready FILE   written (atomically, holding our pid) once the socket listens

Echoes bytes back as they come. When the client half-closes (EOF), the server
still writes a last line "bye\\n" and only then closes its side, so a test can
see a half-close pass through the proxy in both directions.
On SIGTERM/SIGINT: stops listening, drops open connections, exits 0.
"""

import argparse
import asyncio
import os
import signal

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--ready")
args = parser.parse_args()


async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write(b"bye\n")  # the peer's write side is closed, its read side is not
        await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass  # peer reset, or cancelled at shutdown (3.11 logs a cancelled handler)
    finally:
        writer.close()


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    server = await asyncio.start_server(echo, "127.0.0.1", args.port)
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(args.ready + ".tmp", args.ready)
    await stop
    server.close()


asyncio.run(main())  # cancels the remaining connection tasks on the way out
