"""An independent client for `lameduck check`'s tests: one request per
connection through the rehearsal's balancer, counted by this script alone.

Usage: count_client.py HOST:PORT STOP_FILE
Until STOP_FILE exists: connect (a refused connect means the balancer is not
listening, and is not counted), send GET / with Connection: close, read the
answer. Prints {"ok": N, "failed": M} at the end.
"""

import json
import os
import socket
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
stop = sys.argv[2]
ok = failed = 0
while not os.path.exists(stop):
    try:
        s = socket.create_connection((host, int(port)), timeout=5)
    except ConnectionRefusedError:
        time.sleep(0.01)
        continue
    except OSError:
        failed += 1  # reset before connect returned: the balancer took it
        continue
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: count\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        if data.startswith(b"HTTP/1.1 200") and data.endswith(b"ok\n"):
            ok += 1
        else:
            failed += 1
    except OSError:
        failed += 1
    finally:
        s.close()
    time.sleep(0.005)
print(json.dumps({"ok": ok, "failed": failed}))
