"""HTTP/1.1 keep-alive clients of the HTTP pods (tests/balance/http_pod.py),
through `lameduck balance --mode http`.

  http_client.py spread --addr H:P --count N --connections K --out FILE
      N requests `GET /spread` over K keep-alive connections at once; each
      answer must be 200 with a pod's name. Writes {"by_pod": {NAME: n},
      "failures": [why, ...]}.

  http_client.py sequence [--h2] --addr H:P --out FILE "METHOD PATH [BODY]"...
      The requests one after the other on one keep-alive connection (a new
      one when the balancer closed it); with --h2, as streams one after the
      other on one HTTP/2 connection with prior knowledge (the `h2`
      package). Writes [[status, body], ...].

Every file is written atomically (a .tmp renamed over it).
"""

import argparse
import http.client
import json
import os
import threading


def write(path, value):
    with open(path + ".tmp", "w") as f:
        json.dump(value, f)
    os.replace(path + ".tmp", path)


def connection(addr):
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=20)


def spread(a):
    by_pod, failures, lock = {}, [], threading.Lock()

    def worker(k, n):
        conn = connection(a.addr)
        for i in range(n):
            try:
                conn.request("GET", "/spread")
                res = conn.getresponse()
                body = res.read().decode().strip()
                with lock:
                    if res.status == 200 and body.startswith("web-"):
                        by_pod[body] = by_pod.get(body, 0) + 1
                    else:
                        failures.append(f"connection {k} request {i}: {res.status} {body!r}")
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    failures.append(f"connection {k} request {i}: {e!r}")
                conn.close()
        conn.close()

    per = [a.count // a.connections + (k < a.count % a.connections) for k in range(a.connections)]
    threads = [threading.Thread(target=worker, args=(k, n)) for k, n in enumerate(per)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    write(a.out, {"by_pod": by_pod, "failures": failures})


def h2_sequence(a):
    import socket

    import h2.config
    import h2.connection
    import h2.events

    host, port = a.addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=20)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    results = []
    for spec in a.requests:
        method, path, *body = spec.split(" ", 2)
        stream = conn.get_next_available_stream_id()
        headers = [(":method", method), (":path", path), (":scheme", "http"), (":authority", a.addr)]
        conn.send_headers(stream, headers, end_stream=not body)
        if body:
            conn.send_data(stream, body[0].encode(), end_stream=True)
        sock.sendall(conn.data_to_send())
        status, data, done = 0, b"", False
        while not done:
            chunk = sock.recv(65536)
            if not chunk:
                break
            for ev in conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == stream:
                    status = int(dict(ev.headers)[b":status"])
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == stream:
                    data += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, stream)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)) and ev.stream_id == stream:
                    done = True
            sock.sendall(conn.data_to_send())
        results.append([status, data.decode().strip()])
    sock.close()
    write(a.out, results)


def sequence(a):
    if a.h2:
        return h2_sequence(a)
    conn, results = connection(a.addr), []
    for spec in a.requests:
        method, path, *body = spec.split(" ", 2)
        try:
            conn.request(method, path, body=body[0].encode() if body else None)
            res = conn.getresponse()
            results.append([res.status, res.read().decode().strip()])
            if res.will_close:
                conn.close()
        except (OSError, http.client.HTTPException) as e:
            results.append([0, repr(e)])
            conn.close()
    write(a.out, results)


parser = argparse.ArgumentParser()
sub = parser.add_subparsers(dest="command", required=True)
p = sub.add_parser("spread")
p.add_argument("--addr", required=True)
p.add_argument("--count", type=int, required=True)
p.add_argument("--connections", type=int, default=1)
p.add_argument("--out", required=True)
p = sub.add_parser("sequence")
p.add_argument("--h2", action="store_true")
p.add_argument("--addr", required=True)
p.add_argument("--out", required=True)
p.add_argument("requests", nargs="+")
args = parser.parse_args()
{"spread": spread, "sequence": sequence}[args.command](args)
