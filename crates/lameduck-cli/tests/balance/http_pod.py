"""An HTTP/1.1 pod behind `lameduck balance --mode http` in the end-to-end
tests: keep-alive connections, on an address of its own on loopback (as a
pod IP), writing what happens to an events file the test reads.

Flags:
  --name NAME        who this pod is: every answer's body is "NAME\\n"
  --host ADDR        the pod's address
  --port N           its port
  --events FILE      one line per event, flushed at once:
                       accept C          connection C opened
                       request C METHOD PATH
                       answered C PATH
                       closed C          the balancer closed idle connection C
  --drop-second      on each connection, answer the first request, then read
                     the next one whole and close without answering: a
                     keep-alive timeout that hits a request already sent
  --ready FILE       written (atomically, holding our pid) once it listens

`GET /slow?ms=N` answers after N milliseconds.
"""

import argparse
import asyncio
import itertools
import os
import urllib.parse

parser = argparse.ArgumentParser()
parser.add_argument("--name", required=True)
parser.add_argument("--host", required=True)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--events", required=True)
parser.add_argument("--drop-second", action="store_true")
parser.add_argument("--ready")
args = parser.parse_args()
body = args.name.encode() + b"\n"
events = open(args.events, "a", buffering=1)
ids = itertools.count(1)


def event(*words):
    events.write(" ".join(str(w) for w in words) + "\n")


async def read_request(reader):
    """The head's request line and fields, then the body; None at EOF."""
    line = await reader.readline()
    if not line:
        return None
    length = 0
    while (field := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = field.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    method, target, _ = line.decode("latin-1").split(" ", 2)
    return method, target


async def serve(reader, writer):
    conn = next(ids)
    event("accept", conn)
    served = 0
    try:
        while True:
            request = await read_request(reader)
            if request is None:
                event("closed", conn)
                return
            method, target = request
            event("request", conn, method, target)
            if args.drop_second and served == 1:
                event("dropped", conn, target)
                return
            url = urllib.parse.urlsplit(target)
            if url.path == "/slow":
                ms = int(urllib.parse.parse_qs(url.query).get("ms", ["1000"])[0])
                await asyncio.sleep(ms / 1000)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            await writer.drain()
            served += 1
            event("answered", conn, url.path)
    except (ConnectionError, asyncio.IncompleteReadError):
        event("closed", conn)
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(serve, args.host, args.port)
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(args.ready + ".tmp", args.ready)
    async with server:
        await server.serve_forever()


asyncio.run(main())
