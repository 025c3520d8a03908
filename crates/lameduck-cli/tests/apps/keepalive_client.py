"""A keep-alive HTTP/1.1 client (http.client) for the proxy's
--max-connection-age tests: one connection reused for request after request,
as a pooled client does, and a new one only when the server asks.

Usage: keepalive_client.py HOST:PORT SECONDS PAUSE_MS OUT
For SECONDS: GET / on the current connection, read the whole answer, pause
PAUSE_MS. An answer with `Connection: close` ends the connection and the next
request opens a new one. Before reusing a connection, checks whether the
server closed it meanwhile, as urllib3 does (`wait_for_read` with no wait);
such a connection counts as "dropped" and is replaced. A request that gets
no whole 200 counts as failed; nothing is retried.
Writes {"ok", "failed", "connections", "told_to_close", "dropped",
"errors"} to OUT (atomically) at the end.
"""

import http.client
import json
import os
import select
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
seconds, pause = float(sys.argv[2]), int(sys.argv[3]) / 1000
out = sys.argv[4]
stats = {"ok": 0, "failed": 0, "connections": 0, "told_to_close": 0, "dropped": 0, "errors": []}
conn = None
end = time.monotonic() + seconds
while time.monotonic() < end:
    if conn is not None and select.select([conn.sock], [], [], 0)[0]:
        # Readable while no request is out: the server closed it.
        stats["dropped"] += 1
        conn.close()
        conn = None
    if conn is None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.connect()
        stats["connections"] += 1
    try:
        conn.request("GET", "/")
        res = conn.getresponse()
        body = res.read()
        if res.status == 200 and len(body) == 100:
            stats["ok"] += 1
        else:
            stats["failed"] += 1
            stats["errors"].append(f"status {res.status}, {len(body)} bytes")
        if (res.getheader("Connection") or "").lower() == "close":
            stats["told_to_close"] += 1
            conn.close()
            conn = None
    except (OSError, http.client.HTTPException) as e:
        stats["failed"] += 1
        stats["errors"].append(f"{type(e).__name__}: {e}")
        conn.close()
        conn = None
    time.sleep(pause)
if conn is not None:
    conn.close()
with open(out + ".tmp", "w") as f:
    json.dump(stats, f)
os.rename(out + ".tmp", out)
