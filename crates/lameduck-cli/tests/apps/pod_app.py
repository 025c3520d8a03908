"""The app of `lameduck check`'s tests: runs as PID 1 of a rehearsal's pod.

Flags:
  --port N         listen on 0.0.0.0:N (default $PORT)
  --tcp            a line echo server instead of HTTP
  --delay S        HTTP: answer after S seconds of "work" (default 0.01)
  --on-term WHAT   what SIGTERM does:
                     exit        exit at once, whatever is in flight
                     close-wait  close the listener, finish what is in flight
                                 (TCP: keep sessions --linger seconds, then
                                 close each with FIN), then exit
                     ignore      SIG_IGN: as PID 1 the kernel drops SIGTERM
  --linger S       see close-wait (default 1)
"""

import argparse
import os
import signal
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
parser.add_argument("--tcp", action="store_true")
parser.add_argument("--delay", type=float, default=0.01)
parser.add_argument("--on-term", choices=["exit", "close-wait", "ignore"], default="exit")
parser.add_argument("--linger", type=float, default=1.0)
args = parser.parse_args()

lock = threading.Lock()
busy = 0
sessions = set()
goodbye = threading.Event()


class Http(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        global busy
        with lock:
            busy += 1
        try:
            time.sleep(args.delay)
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with lock:
                busy -= 1

    def log_message(self, *a):
        pass


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        with lock:
            sessions.add(self.connection)
        try:
            for line in self.rfile:
                self.wfile.write(line)
                if goodbye.is_set():
                    # FIN right after an answer: nothing is left unanswered.
                    self.connection.shutdown(socket.SHUT_WR)
                    return
        except OSError:
            pass
        finally:
            with lock:
                sessions.discard(self.connection)


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


server = (TcpServer if args.tcp else Server)(("0.0.0.0", args.port), Echo if args.tcp else Http)


def close_wait():
    server.shutdown()
    server.server_close()
    deadline = time.monotonic() + args.linger
    while time.monotonic() < deadline:
        with lock:
            if busy == 0 and (not args.tcp or not sessions):
                break
        time.sleep(0.01)
    if args.tcp:
        time.sleep(max(0.0, deadline - time.monotonic()))
        goodbye.set()
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            with lock:
                if not sessions:
                    break
            time.sleep(0.01)
    os._exit(0)


if args.on_term == "exit":
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
elif args.on_term == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=close_wait).start())
server.serve_forever()
# serve_forever returns after shutdown(); close_wait exits the process.
while True:
    time.sleep(1)
