"""HTTP/1.1 keep-alive upstream for the proxy's end-to-end tests.

Flags:
  --port N        listen on 127.0.0.1:N
  --ready FILE    written (atomically, holding our pid) once the socket listens
  --exit-code N   exit code on SIGTERM/SIGINT (default 0); exit is immediate,
                  idle keep-alive connections do not hold it up

Endpoints (every response carries X-Upstream-Pid):
  GET  /                      200, 100-byte body b"x"*99 + b"\\n"
  GET  /slow?ms=N             sleeps N ms, then 200 "slow done\\n"
  POST /echo                  answers the request body back (Content-Length or
                              chunked request; "Expect: 100-continue" gets a
                              "100 Continue" from BaseHTTPRequestHandler itself)
  GET  /stream?chunks=N&ms=M  chunked response: N chunks "chunk i\\n", M ms apart
  GET  /crash?code=N          200 "bye\\n" (Connection: close), then os._exit(N)
  GET  /headers               the request headers, one "name: value" line each
Any request body is read before answering, so keep-alive framing stays intact.
"""

import argparse
import os
import signal
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--ready")
parser.add_argument("--exit-code", type=int, default=0)
args = parser.parse_args()
PID = str(os.getpid())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):  # keep test output quiet
        pass

    def send_response(self, code, message=None):
        # Not end_headers: that one also ends the "100 Continue" interim response.
        super().send_response(code, message)
        self.send_header("X-Upstream-Pid", PID)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()  # CRLF after the chunk data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, body, code=200, close=False):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self.read_body()
        if url.path == "/":
            self.reply(b"x" * 99 + b"\n")
        elif url.path == "/slow":
            time.sleep(int(q.get("ms", "0")) / 1000)
            self.reply(b"slow done\n")
        elif url.path == "/echo":
            self.reply(body)
        elif url.path == "/headers":
            self.reply("".join(f"{k}: {v}\n" for k, v in self.headers.items()).encode())
        elif url.path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(int(q.get("chunks", "3"))):
                if i:
                    time.sleep(int(q.get("ms", "0")) / 1000)
                data = f"chunk {i}\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")
        elif url.path == "/crash":
            self.reply(b"bye\n", close=True)
            # FIN after the response, then wait (at most 1 s) for the peer to
            # close, so exiting cannot turn into a RST that eats the response.
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(1)
            try:
                while self.connection.recv(65536):
                    pass
            except OSError:
                pass
            os._exit(int(q.get("code", "1")))
        else:
            self.reply(b"not found\n", code=404)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default listen backlog of 5 drops SYNs under load

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (OSError, ValueError)):
            super().handle_error(request, client_address)  # real bugs stay visible


def on_term(_signum, _frame):
    os._exit(args.exit_code)


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)
server = Server(("127.0.0.1", args.port), Handler)
if args.ready:
    with open(args.ready + ".tmp", "w") as f:
        f.write(PID)
    os.rename(args.ready + ".tmp", args.ready)
server.serve_forever()
