#!/usr/bin/env python3
"""Open many idle HTTP/1.1 keep-alive connections to a proxy, for bench/proxy.sh.

Opens --conns TCP connections to --host:--port (at most --concurrency being
set up at a time), sends one keep-alive `GET /` on each, reads the whole
response and then leaves the connection open and idle. Once every connection
is set up it prints one line

    ready ok=N failed=M seconds=S sources=K errors=...

on stdout (and writes it to --ready-file, if given), then holds the
connections until SIGTERM or SIGINT (or --hold seconds), counts how many the
server closed meanwhile, prints

    done open=N closed_by_server=M

and exits. Exit status 0 unless no connection could be set up.

When one loopback source address has too few ephemeral ports for --conns
(see /proc/sys/net/ipv4/ip_local_port_range), connections are spread over
127.0.0.1, 127.0.0.2, ... (bound with IP_BIND_ADDRESS_NO_PORT, so the port is
picked at connect time). --sources forces the number of source addresses.

RLIMIT_NOFILE is raised as far as needed (up to the hard limit).
Standard library only.
"""

import argparse
import asyncio
import collections
import math
import resource
import signal
import socket
import sys
import time

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, default=10000)
    p.add_argument("--concurrency", type=int, default=200,
                   help="connections being set up at once (default 200)")
    p.add_argument("--sources", type=int, default=0,
                   help="loopback source addresses to use (default: as many as the ephemeral port range needs)")
    p.add_argument("--path", default="/")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds allowed for each connection's connect + request + response")
    p.add_argument("--hold", type=float, default=600.0,
                   help="seconds to hold the connections at most (default 600)")
    p.add_argument("--ready-file", default=None)
    return p.parse_args()


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    if soft != resource.RLIM_INFINITY and soft < need:
        sys.exit(f"idle_conns.py: RLIMIT_NOFILE hard limit {hard} < {need} needed for the connections")


def source_count(conns, host):
    if not host.startswith("127."):
        return 1
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        ports = hi - lo + 1
    except OSError:
        ports = 28232
    # Leave half of the range to everything else on the machine.
    return max(1, math.ceil(conns / max(1, ports // 2)))


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ValueError("bad status line")
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                # Trailers, then the empty line.
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            await reader.readexactly(size + 2)
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    keep = headers.get("connection", "").lower() != "close"
    return status, keep


async def open_one(i, args, sources, sem, request):
    async with sem:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if len(sources) > 1:
                sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                sock.bind((sources[i % len(sources)], 0))

            async def setup():
                await asyncio.get_running_loop().sock_connect(sock, (args.host, args.port))
                reader, writer = await asyncio.open_connection(sock=sock)
                writer.write(request)
                await writer.drain()
                status, keep = await read_response(reader)
                return reader, writer, status, keep

            reader, writer, status, keep = await asyncio.wait_for(setup(), args.timeout)
        except BaseException:
            sock.close()
            raise
        if status != 200 or not keep:
            writer.close()
            raise ValueError(f"status {status}" if status != 200 else "server sent Connection: close")
        return reader, writer


async def main():
    args = parse_args()
    raise_nofile(args.conns + 256)
    n_sources = args.sources or source_count(args.conns, args.host)
    sources = [f"127.0.0.{k + 1}" for k in range(n_sources)]
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
               "User-Agent: idle_conns.py\r\n\r\n").encode()

    sem = asyncio.Semaphore(args.concurrency)
    start = time.monotonic()
    results = await asyncio.gather(
        *(open_one(i, args, sources, sem, request) for i in range(args.conns)),
        return_exceptions=True)
    elapsed = time.monotonic() - start
    conns = [r for r in results if not isinstance(r, BaseException)]
    errors = collections.Counter(
        type(r).__name__ + (f"({r})" if isinstance(r, ValueError) else "")
        for r in results if isinstance(r, BaseException))
    err_text = ",".join(f"{k}:{v}" for k, v in errors.most_common()) or "none"
    line = (f"ready ok={len(conns)} failed={len(results) - len(conns)} "
            f"seconds={elapsed:.2f} sources={n_sources} errors={err_text}")
    print(line, flush=True)
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write(line + "\n")

    # Until here SIGTERM and SIGINT just end the process.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    try:
        await asyncio.wait_for(stop.wait(), args.hold)
    except asyncio.TimeoutError:
        pass

    closed = sum(1 for reader, _ in conns if reader.at_eof())
    print(f"done open={len(conns) - closed} closed_by_server={closed}", flush=True)
    for _, writer in conns:
        writer.close()
    return 0 if conns else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
