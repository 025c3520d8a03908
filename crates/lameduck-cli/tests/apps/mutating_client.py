"""A client that sends mutated requests and checks that each connection ends.

Usage: mutating_client.py HOST:PORT h1|h2 SERIES CASES

Each case opens a connection, sends one input in random fragments, ends its
side (a half-close), and reads until the server closes. Inputs:

- h1: well-formed HTTP/1.1 requests (keep-alive, bodies both ways framed,
  `Expect`, upgrades, pipelining, parts of the HTTP/2 preface) with bytes
  flipped, inserted, repeated, cut or shuffled between lines;
- h2: HTTP/2 connections written by the `h2` library with its own checks
  off (odd pseudo-headers and fields, bodies, resets), half of them with
  their frames' bytes mutated.

A connection the server has not closed `DEADLINE` seconds after the client
ended its side is a hang. Prints `cases=N ended=N` (closed or reset by the
server), then one line per input that hung (the first five, as Python byte
literals). The same SERIES number gives the same inputs.
"""

import random
import socket
import sys
import time

import h2.config
import h2.connection

host, port = sys.argv[1].rsplit(":", 1)
mode, series, cases = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
DEADLINE = 5.0
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

H1 = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /x?y=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nx-t: 1\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    b"GET http://b:80/abs HTTP/1.1\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"PUT /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: keep-alive, x-d\r\nx-d: 1\r\n\r\n",
    PREFACE,
]
TOKENS = [b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b";", b",", b"\x00", b"\x7f", b"\xff", b"0",
          b"-1", b"18446744073709551616", b"FFFFFFFFFFFFFFFFF", b"chunked",
          b"Transfer-Encoding: chunked\r\n", b"Content-Length: 5\r\n", b"Content-Length: 99999999999\r\n",
          b"Host: b\r\n", b" x\r\n", b"Connection: close\r\n", b"Expect: 100-continue\r\n",
          b"0\r\n\r\n", b"5\r\nhello\r\n", b"HTTP/2.0", b"PRI", b"/../", b"a" * 300]

NAMES = [b"host", b"te", b"connection", b"content-length", b"transfer-encoding", b"x-forwarded-for",
         b"x-forwarded-proto", b"expect", b"upgrade", b"keep-alive", b"cookie", b"content-type",
         b"x-a", b"X-Upper", b"bad name", b"", b":path", b":protocol", b"trailer"]
VALUES = [b"", b"trailers", b"chunked", b"close", b"5", b"-1", b"0", b"99999999999999999999",
          b"a, b", b"1.2.3.4", b"\x80\xff", b"\t x \t", b"a\r\nb", b"\x00", b"application/grpc",
          b"websocket", b"keep-alive, x-a", b"100-continue", b"x" * 5000, b"[::1]:8", b"*", b"//x"]


def mutate_h1(data, rng):
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op, at = rng.randrange(7), rng.randint(0, len(b))
        if op == 0 and b:
            b[min(at, len(b) - 1)] = rng.randrange(256)
        elif op == 1:
            b[at:at] = rng.choice(TOKENS)
        elif op == 2:
            del b[at:at + rng.randint(1, 20)]
        elif op == 3:
            b[at:at] = b[at:at + rng.randint(1, 40)] * rng.randint(1, 4)
        elif op == 4:
            del b[at:]
        elif op == 5:
            b += rng.choice(H1)
        else:
            lines = bytes(b).split(b"\r\n")
            rng.shuffle(lines)
            b = bytearray(b"\r\n".join(lines))
    return bytes(b)


def h2_headers(rng):
    pseudo = [(b":method", rng.choice([b"GET", b"GET", b"POST", b"HEAD", b"CONNECT", b"X"])),
              (b":scheme", rng.choice([b"http", b"http", b"https", b""])),
              (b":path", rng.choice([b"/", b"/a?b=1", b"*", b"", b"//y", b"/" + b"a" * 3000])),
              (b":authority", rng.choice([b"a", b"a:80", b"", b"a b", b"u@a", b"[::1]"]))]
    fields = [p for p in pseudo if rng.random() < 0.95]
    for _ in range(rng.choice([0, 1, 2, 5, 120])):
        fields.append((rng.choice(NAMES), rng.choice(VALUES)))
    return fields


def h2_flow(rng):
    config = h2.config.H2Configuration(client_side=True, validate_outbound_headers=False,
                                       normalize_outbound_headers=False)
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    for stream in range(1, 2 * rng.randint(1, 5), 2):
        body = rng.random() < 0.4
        try:
            conn.send_headers(stream, h2_headers(rng), end_stream=not body)
            if body:
                conn.send_data(stream, rng.randbytes(rng.choice([0, 1, 100, 5000])),
                               end_stream=rng.random() < 0.8)
            if rng.random() < 0.1:
                conn.reset_stream(stream)
        except Exception:  # the library refused what it was asked to send
            pass
    data = bytearray(conn.data_to_send())
    if rng.random() < 0.5:
        for _ in range(rng.randint(1, 4)):
            op, at = rng.randrange(4), rng.randint(len(PREFACE), max(len(PREFACE), len(data)))
            if op == 0 and at < len(data):
                data[at] = rng.randrange(256)
            elif op == 1:
                data[at:at] = rng.randbytes(rng.randint(1, 12))
            elif op == 2:
                del data[at:]
            else:  # a frame header of a random type, flags and stream
                data[at:at] = bytes([0, 0, rng.randrange(16), rng.randrange(12), rng.randrange(256),
                                     0, 0, 0, rng.choice([0, 1, 2, 3])]) + rng.randbytes(rng.randrange(16))
    return bytes(data)


def one(data, rng):
    """True if the server ended the connection in time after the half-close."""
    sock = socket.create_connection((host, int(port)), timeout=DEADLINE)
    try:
        at = 0
        while at < len(data):
            n = rng.randint(1, max(1, len(data)))
            sock.sendall(data[at:at + n])
            at += n
        sock.shutdown(socket.SHUT_WR)
        until = time.monotonic() + DEADLINE
        while sock.recv(65536):
            if time.monotonic() > until:
                return False
        return True
    except socket.timeout:
        return False
    except OSError:  # reset, or closed before all was sent
        return True
    finally:
        sock.close()


rng = random.Random(series)
hangs, ended = [], 0
for _ in range(cases):
    data = mutate_h1(rng.choice(H1), rng) if mode == "h1" else h2_flow(rng)
    if one(data, rng):
        ended += 1
    elif len(hangs) < 5:
        hangs.append(repr(data[:300]))
print("cases=%d ended=%d" % (cases, ended))
for hang in hangs:
    print("hung:", hang)
