"""A small HTTP server standing in for "myapp".

It answers every GET with a line, and on SIGTERM stops accepting, finishes
and exits 0: the well-behaved app. Run with --ignore-sigterm to play the app
that never stops by itself.
"""

import argparse
import http.server
import signal
import sys
import threading

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8080)
parser.add_argument("--ignore-sigterm", action="store_true")
args = parser.parse_args()


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from the app\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *fmt_args):
        print("server: " + fmt % fmt_args, file=sys.stderr, flush=True)


server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Hello)


def on_sigterm(_signum, _frame):
    print("server: SIGTERM received, finishing and exiting", file=sys.stderr, flush=True)
    threading.Thread(target=server.shutdown).start()


signal.signal(signal.SIGTERM, signal.SIG_IGN if args.ignore_sigterm else on_sigterm)
print(f"server: listening on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
server.serve_forever()
