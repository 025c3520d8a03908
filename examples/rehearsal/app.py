#!/usr/bin/env python3
"""A small web app that stops the way most do: on SIGTERM it closes its
listener and exits at once, whatever is in flight.

It answers GET / after 20 ms of "work", on --port (or $PORT).
"""
import argparse
import os
import signal
import socketserver
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        time.sleep(0.02)
        body = f"hello from {os.environ.get('POD_NAME', 'app')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args()
    server = Server(("0.0.0.0", args.port), Handler)
    # What most frameworks do on SIGTERM: stop now.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server.serve_forever()


if __name__ == "__main__":
    main()
