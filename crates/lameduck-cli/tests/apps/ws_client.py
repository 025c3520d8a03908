"""WebSocket client for the proxy's end-to-end tests (`websockets` package).

Flags:
  --url URL          e.g. ws://127.0.0.1:P/
  --interval-ms M    pause between messages (default 100)
  --out FILE         result JSON, written atomically when the client is done
  --ready FILE       written (holding our pid) once the opening handshake is done

Sends "msg i" every M ms and checks each echo, until the connection closes
(or SIGTERM/SIGINT, which makes the client close with 1000 itself). Then writes
  {"sent": n, "echoed": n, "close_code": int|null, "close_reason": str, "error": str|null}
close_code/close_reason come from the close frame the server sent (e.g. 1001);
close_code is null when the TCP connection ended without one, and then `error`
says why. A message that crossed the server's close frame (sent, and the close
came back instead of its echo) is not counted as sent: after its close frame a
server takes no more messages (RFC 6455, section 5.5.1). `error` is also set for a failed handshake or a wrong echo. Exits 0.
"""

import argparse
import asyncio
import inspect
import json
import os
import signal

try:
    from websockets.asyncio.client import connect
except ImportError:  # websockets < 13
    from websockets import connect
from websockets.exceptions import ConnectionClosed

parser = argparse.ArgumentParser()
parser.add_argument("--url", required=True)
parser.add_argument("--interval-ms", type=int, default=100)
parser.add_argument("--out", required=True)
parser.add_argument("--ready")
args = parser.parse_args()

# websockets >= 15 honours HTTP(S)_PROXY by default; the tests talk to loopback directly.
KW = {"proxy": None} if "proxy" in inspect.signature(connect).parameters else {}


async def run(res):
    pending = False  # a message sent whose echo has not come yet
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    try:
        async with connect(args.url, **KW) as ws:
            if args.ready:
                with open(args.ready + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.rename(args.ready + ".tmp", args.ready)
            i = 0
            while not stop.done():
                msg = f"msg {i}"
                await ws.send(msg)
                res["sent"] += 1
                pending = True
                reply = await ws.recv()
                pending = False
                if reply == msg:
                    res["echoed"] += 1
                elif res["error"] is None:
                    res["error"] = f"echo mismatch: sent {msg!r}, got {reply!r}"
                i += 1
                await asyncio.wait([stop], timeout=args.interval_ms / 1000)
            await ws.close()  # stopped by a signal: our own close handshake
            if ws.close_code not in (None, 1006):  # 1006: no close frame came back
                res["close_code"], res["close_reason"] = int(ws.close_code), ws.close_reason
    except ConnectionClosed as e:
        rcvd = getattr(e, "rcvd", None)
        if rcvd is not None:
            res["close_code"], res["close_reason"] = int(rcvd.code), rcvd.reason
            if pending:  # crossed the server's goodbye: never taken
                res["sent"] -= 1
        elif not hasattr(e, "rcvd") and e.code != 1006:  # very old websockets
            res["close_code"], res["close_reason"] = e.code, e.reason
        else:
            res["error"] = res["error"] or f"{type(e).__name__}: {e}"
    except Exception as e:  # handshake refused, connection reset, ...
        res["error"] = res["error"] or f"{type(e).__name__}: {e}"


result = {"sent": 0, "echoed": 0, "close_code": None, "close_reason": "", "error": None}
try:
    asyncio.run(run(result))
finally:
    with open(args.out + ".tmp", "w") as f:
        json.dump(result, f)
    os.rename(args.out + ".tmp", args.out)
