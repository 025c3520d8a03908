"""gRPC unary calls one after another on one channel (grpcio, cleartext h2)
for the proxy's --max-connection-age tests: a channel follows GOAWAY to a new
connection by itself, as every gRPC client does.

Usage: grpc_calls.py HOST:PORT SECONDS OUT
Calls grpc_server.py's /test.Echo/Unary for SECONDS and writes
{"ok": n, "failed": n, "errors": [...]} to OUT (atomically).
"""

import json
import os
import sys
import time

import grpc

target, seconds, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
stats = {"ok": 0, "failed": 0, "errors": []}
# Without serializers the stubs send and return bytes. No HTTP proxy from env.
channel = grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)])
unary = channel.unary_unary("/test.Echo/Unary")
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        unary(b"hello", timeout=10)
        stats["ok"] += 1
    except grpc.RpcError as e:
        stats["failed"] += 1
        stats["errors"].append(f"{e.code().name}: {e.details()}")
channel.close()
with open(out + ".tmp", "w") as f:
    json.dump(stats, f)
os.rename(out + ".tmp", out)
