"""TCP clients of the line pods (tests/balance/pod.py), through the balancer.

  client.py short --addr H:P --count N --out FILE
      N connections one after the other; each sends "hi", expects "NAME hi"
      and closes. Writes {"by_pod": {NAME: n}, "failures": [why, ...]}.

  client.py session --addr H:P --out FILE --ready FILE --progress FILE [--interval-ms M]
      One long connection: sends "n I" every M ms (default 50) and checks
      each answer. --ready gets the pod's name after the first answer;
      --progress the count of answers, after each. Ends when the pod says
      "bye NAME" and closes, or on SIGTERM. Writes {"pod", "sent",
      "answered", "goodbye", "error"}.

Every file is written atomically (a .tmp renamed over it).
"""

import argparse
import json
import os
import signal
import socket
import time


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def connect(addr):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    return s, s.makefile("rb")


def short(a):
    by_pod, failures = {}, []
    for i in range(a.count):
        try:
            s, f = connect(a.addr)
            s.sendall(b"hi\n")
            line = f.readline().decode().rstrip("\n")
            s.close()
            pod, _, said = line.partition(" ")
            if said != "hi":
                failures.append(f"connection {i}: answer {line!r}")
            else:
                by_pod[pod] = by_pod.get(pod, 0) + 1
        except OSError as e:
            failures.append(f"connection {i}: {e}")
    write(a.out, json.dumps({"by_pod": by_pod, "failures": failures}))


def session(a):
    res = {"pod": None, "sent": 0, "answered": 0, "goodbye": False, "error": None}
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        s, f = connect(a.addr)
        s.settimeout(None)
        i = 0
        while not stopping:
            s.sendall(f"n {i}\n".encode())
            res["sent"] += 1
            line = f.readline().decode().rstrip("\n")
            if not line:
                res["error"] = "closed without a goodbye"
                break
            if res["pod"] and line == f"bye {res['pod']}":
                # The pod's goodbye, in place of the last answer.
                res["goodbye"] = True
                res["sent"] -= 1
                rest = f.readline()
                if rest:
                    res["error"] = f"data after the goodbye: {rest!r}"
                break
            pod, _, said = line.partition(" ")
            if said != f"n {i}" or (res["pod"] and pod != res["pod"]):
                res["error"] = f"answer {line!r} to 'n {i}'"
                break
            if res["pod"] is None:
                res["pod"] = pod
                write(a.ready, pod)
            res["answered"] += 1
            write(a.progress, str(res["answered"]))
            i += 1
            time.sleep(a.interval_ms / 1000)
        s.close()
    except OSError as e:
        res["error"] = str(e)
    write(a.out, json.dumps(res))


p = argparse.ArgumentParser()
sub = p.add_subparsers(dest="mode", required=True)
sp = sub.add_parser("short")
sp.add_argument("--addr", required=True)
sp.add_argument("--count", type=int, required=True)
sp.add_argument("--out", required=True)
ss = sub.add_parser("session")
ss.add_argument("--addr", required=True)
ss.add_argument("--out", required=True)
ss.add_argument("--ready", required=True)
ss.add_argument("--progress", required=True)
ss.add_argument("--interval-ms", type=int, default=50)
a = p.parse_args()
{"short": short, "session": session}[a.mode](a)
