"""An HTTP/1.1 client that upgrades its connection to h2c after a first
exchange, then waits for the server's GOAWAY (the `h2` library answers the
server's PINGs as any live client does).

Usage: h2c_upgrade_client.py HOST:PORT FIRST_PATH

Prints one JSON object: "first_close" (whether the first answer said
`Connection: close`), "upgraded" (whether the server answered 101),
"answer" (the status of the upgrade request's answer, on stream 1),
"goaway_after" (seconds from connect to the GOAWAY, or null if the
connection ended without one).
"""

import json
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

host, port = sys.argv[1].rsplit(":", 1)
first_path = sys.argv[2]


def read_head(sock, buf):
    """Reads until the end of an HTTP/1.1 head: (head, bytes after it)."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise SystemExit("the server closed the connection: %r" % buf)
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1").lower(), rest


started = time.monotonic()
sock = socket.create_connection((host, int(port)))
sock.settimeout(30)
sock.sendall(b"GET %s HTTP/1.1\r\nHost: age\r\n\r\n" % first_path.encode())
head, rest = read_head(sock, b"")
length = int(head.split("content-length: ", 1)[1].split("\r\n", 1)[0])
while len(rest) < length:
    rest += sock.recv(65536)
first_close = "connection: close" in head
rest = rest[length:]

conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
settings = conn.initiate_upgrade_connection()
sock.sendall(
    b"GET / HTTP/1.1\r\nHost: age\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
)
head, rest = read_head(sock, rest)
upgraded = head.startswith("http/1.1 101 ")
answer = None
goaway_after = None
if upgraded:
    sock.sendall(conn.data_to_send())
    data = rest
    while goaway_after is None:
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            # The GOAWAY closed the connection's state, and a frame read
            # with it (the PING that comes with the first GOAWAY) is refused.
            if conn.state_machine.state != h2.connection.ConnectionState.CLOSED:
                raise
            goaway_after = time.monotonic() - started
            break
        for event in events:
            if isinstance(event, h2.events.ResponseReceived):
                answer = dict(event.headers).get(b":status", b"?").decode()
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
            elif isinstance(event, h2.events.ConnectionTerminated):
                goaway_after = time.monotonic() - started
        sock.sendall(conn.data_to_send())
        if goaway_after is None:
            data = sock.recv(65536)
            if not data:
                break

print(
    json.dumps(
        {
            "first_close": first_close,
            "upgraded": upgraded,
            "answer": answer,
            "goaway_after": goaway_after,
        }
    )
)
