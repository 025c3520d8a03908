"""HTTP/2 fan-out client for the drain proxy's tests (issue 11): opens as
many streams as the server allows on each of N connections, each a POST that
announces a body (content-length: 100) and sends none, so each holds an
upstream connection in an HTTP/1.1 proxy.

Flags:
  --addr HOST:PORT   the proxy
  --connections N    client connections (default 1)
  --streams M        streams to open on each, at most what SETTINGS allows
  --path P           request path (default /echo)
  --report FILE      rewritten (atomically) at each answer: one JSON object
                     {"max_concurrent_streams": advertised, "opened": total,
                      "statuses": {"503": n, ...}, "waiting": n}
Once FILE.go exists, sends the missing bodies, waits for the rest of the
answers and rewrites FILE with the final tally (and "done": true).
"""

import argparse
import json
import os
import socket

import h2.config
import h2.connection
import h2.events
import h2.settings

parser = argparse.ArgumentParser()
parser.add_argument("--addr", required=True)
parser.add_argument("--connections", type=int, default=1)
parser.add_argument("--streams", type=int, required=True)
parser.add_argument("--path", default="/echo")
parser.add_argument("--report", required=True)
args = parser.parse_args()
host, port = args.addr.rsplit(":", 1)


class Client:
    def __init__(self):
        self.sock = socket.create_connection((host, int(port)))
        self.sock.settimeout(0.05)
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True)
        )
        self.conn.initiate_connection()
        self.flush()
        self.settings = None
        self.statuses = {}  # stream id -> status
        self.ended = set()
        while self.settings is None:
            self.pump(block=True)

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, block=False):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return
        if not data:
            raise SystemExit("the proxy closed a connection")
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                changed = event.changed_settings.get(
                    h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
                )
                self.settings = changed.new_value if changed else 2**31 - 1
            elif isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers).get(b":status", b"?").decode()
                self.statuses[event.stream_id] = status
            elif isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                self.ended.add(event.stream_id)
        self.flush()

    def open(self, n):
        ids = []
        for _ in range(min(n, self.settings)):
            sid = self.conn.get_next_available_stream_id()
            self.conn.send_headers(
                sid,
                [
                    (":method", "POST"),
                    (":scheme", "http"),
                    (":authority", "test"),
                    (":path", args.path),
                    ("content-length", "100"),
                ],
            )
            ids.append(sid)
        self.flush()
        return ids


def report(clients, opened, **extra):
    statuses = {}
    for c in clients:
        for s in c.statuses.values():
            statuses[s] = statuses.get(s, 0) + 1
    answered = sum(len(c.ended) for c in clients)
    tally = {
        "max_concurrent_streams": clients[0].settings,
        "opened": opened,
        "statuses": statuses,
        "waiting": opened - answered,
    }
    tally.update(extra)
    with open(args.report + ".tmp", "w") as f:
        json.dump(tally, f)
    os.rename(args.report + ".tmp", args.report)
    return tally


clients = [Client() for _ in range(args.connections)]
streams = [(c, c.open(args.streams)) for c in clients]
opened = sum(len(ids) for _, ids in streams)


def pump_until(condition):
    while not condition():
        for c in clients:
            c.pump()


# Report every change, so the test waits on the tally it expects.
last = None
report(clients, opened)
while not os.path.exists(args.report + ".go"):
    for c in clients:
        c.pump()
    answered = sum(len(c.ended) for c in clients)
    if answered != last:
        last = answered
        report(clients, opened)
for c, ids in streams:
    for sid in ids:
        if sid not in c.ended:
            c.conn.send_data(sid, b"x" * 100, end_stream=True)
    c.flush()
pump_until(lambda: all(set(ids) <= c.ended for c, ids in streams))
report(clients, opened, done=True)
