"""A pod behind `lameduck balance` in the end-to-end tests: one address of
its own on loopback (127.x.y.z), like a pod IP, and up to three servers on it.

Flags:
  --name NAME       who this pod is: every answer carries it
  --host ADDR       the pod's address
  --tcp-port N      a line server: each line "X" is answered "NAME X"
  --ws-port N       a WebSocket echo server (`websockets` package)
  --http-port N     a tiny HTTP/1.1 server: every request gets 200 "NAME\\n"
                    and Connection: close
  --ready FILE      written (atomically, holding our pid) once all listen

On SIGTERM the pod says goodbye as an app that drains would: it stops
listening, sends "bye NAME" on each open line session and closes it, closes
each WebSocket with 1001 (going away), and exits 0.
"""

import argparse
import asyncio
import os
import signal

parser = argparse.ArgumentParser()
parser.add_argument("--name", required=True)
parser.add_argument("--host", required=True)
parser.add_argument("--tcp-port", type=int)
parser.add_argument("--ws-port", type=int)
parser.add_argument("--http-port", type=int)
parser.add_argument("--ready")
args = parser.parse_args()
name = args.name.encode()
sessions = set()


async def lines(reader, writer):
    sessions.add(writer)
    try:
        while line := await reader.readline():
            writer.write(name + b" " + line)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        sessions.discard(writer)
        writer.close()


async def http(reader, writer):
    try:
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        body = name + b"\n"
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    servers = []
    if args.tcp_port:
        servers.append(await asyncio.start_server(lines, args.host, args.tcp_port))
    if args.http_port:
        servers.append(await asyncio.start_server(http, args.host, args.http_port))
    ws = None
    if args.ws_port:
        try:
            from websockets.asyncio.server import serve
        except ImportError:  # websockets < 13
            from websockets import serve

        async def echo(conn):
            try:
                async for message in conn:
                    await conn.send(message)
            except Exception:
                pass

        ws = await serve(echo, args.host, args.ws_port)
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(args.ready + ".tmp", args.ready)
    await stop
    for s in servers:
        s.close()
    for w in list(sessions):
        try:
            w.write(b"bye " + name + b"\n")
            await w.drain()
        except ConnectionError:
            pass
        w.close()
    if ws is not None:
        ws.close(close_connections=True) if "close_connections" in ws.close.__code__.co_varnames else ws.close()
        await asyncio.wait_for(ws.wait_closed(), 3)


asyncio.run(main())
