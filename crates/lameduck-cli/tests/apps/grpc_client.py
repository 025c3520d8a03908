"""gRPC client (grpcio, cleartext h2) for the proxy's end-to-end tests.

Talks to grpc_server.py's test.Echo with raw-bytes messages (no protobuf).
Flags:
  --target HOST:PORT   e.g. 127.0.0.1:P
  --method M           unary | server-stream | bidi
  --count N            server-stream: messages asked for; bidi: messages sent
                       (default 10; unused by unary, which is one call)
  --interval-ms M      gap between those messages (default 100)
  --out FILE           result JSON, written atomically when the call is over
  --ready FILE         written (holding our pid) once the first response
                       message has arrived
Runs one call and writes {"received": n, "status": "OK" or the grpc StatusCode
name (e.g. "UNAVAILABLE"), "details": str}. Exits 0 after writing.
"""

import argparse
import json
import os
import threading

import grpc

parser = argparse.ArgumentParser()
parser.add_argument("--target", required=True)
parser.add_argument("--method", choices=["unary", "server-stream", "bidi"], required=True)
parser.add_argument("--count", type=int, default=10)
parser.add_argument("--interval-ms", type=int, default=100)
parser.add_argument("--out", required=True)
parser.add_argument("--ready")
args = parser.parse_args()

result = {"received": 0, "status": "OK", "details": ""}
finished = threading.Event()  # stops the bidi request generator early


def got_message():
    result["received"] += 1
    if result["received"] == 1 and args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(args.ready + ".tmp", args.ready)


def bidi_requests():
    for i in range(args.count):
        if i and finished.wait(args.interval_ms / 1000):
            return
        yield b"msg %d" % i


# Without serializers the stubs send and return bytes. No HTTP proxy from env.
channel = grpc.insecure_channel(args.target, options=[("grpc.enable_http_proxy", 0)])
try:
    if args.method == "unary":
        channel.unary_unary("/test.Echo/Unary")(b"hello")
        got_message()
    elif args.method == "server-stream":
        request = f"{args.count},{args.interval_ms}".encode()
        for _ in channel.unary_stream("/test.Echo/ServerStream")(request):
            got_message()
    else:
        for _ in channel.stream_stream("/test.Echo/Bidi")(bidi_requests()):
            got_message()
except grpc.RpcError as e:
    result["status"], result["details"] = e.code().name, e.details() or ""
except Exception as e:  # not expected; still leave a result behind
    result["status"], result["details"] = "CLIENT_ERROR", f"{type(e).__name__}: {e}"
finally:
    finished.set()
    channel.close()
    with open(args.out + ".tmp", "w") as f:
        json.dump(result, f)
    os.rename(args.out + ".tmp", args.out)
