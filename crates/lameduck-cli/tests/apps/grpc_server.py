"""gRPC echo server (grpcio, cleartext h2) for the proxy's end-to-end tests.

Flags:
  --port N       listen on 127.0.0.1:N
  --ready FILE   written (atomically, holding our pid) once the server is started

Service test.Echo, no protobuf: a generic handler with raw-bytes (identity)
serializers, so clients send and receive plain bytes.
  Unary         returns the request bytes
  ServerStream  request is ASCII "count,interval_ms"; streams b"msg i" count
                times, interval_ms apart
  Bidi          echoes each request message
On SIGTERM/SIGINT: server.stop(grace=5) (GOAWAY, in-flight calls get up to 5 s)
and exit 0.
"""

import argparse
import os
import signal
import threading
from concurrent import futures

import grpc

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--ready")
args = parser.parse_args()


def unary(request, _context):
    return request


def server_stream(request, context):
    count, interval_ms = (int(x) for x in request.decode().split(","))
    cancelled = threading.Event()  # ends the wait early when the call is cancelled
    context.add_callback(cancelled.set)
    for i in range(count):
        if i and cancelled.wait(interval_ms / 1000):
            return
        yield b"msg %d" % i


def bidi(request_iterator, _context):
    for message in request_iterator:
        yield message


handler = grpc.method_handlers_generic_handler("test.Echo", {
    # No request_deserializer/response_serializer: bytes pass through as-is.
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
    "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
})

# Block the signals before grpc starts its threads (they inherit the mask), so
# only the sigwait below ever sees them; no Python handler races with grpc.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
# so_reuseport off: otherwise binding a port another server holds "succeeds".
server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=[("grpc.so_reuseport", 0)])
server.add_generic_rpc_handlers((handler,))
try:
    bound = server.add_insecure_port(f"127.0.0.1:{args.port}")
except RuntimeError:  # newer grpcio raises, older ones return 0
    bound = 0
if bound != args.port:
    raise SystemExit(f"cannot listen on 127.0.0.1:{args.port}")
server.start()
if args.ready:
    with open(args.ready + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(args.ready + ".tmp", args.ready)

signal.sigwait({signal.SIGTERM, signal.SIGINT})
server.stop(grace=5).wait()
# os._exit: a handler thread still blocked somewhere must not hold up the exit.
os._exit(0)
