"""A test app that records every signal it receives.

Each signal appends a line "<tag> <SIGNAME>" to --log. Handlers are installed
for every catchable signal before --ready is written, so a test waits for the
ready file and then knows no signal is lost to a default disposition.
"""

import argparse
import os
import signal
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--log", required=True)
parser.add_argument("--ready", required=True)
parser.add_argument("--tag", default="app")
parser.add_argument("--exit-on", action="append", default=[], help="signal name that ends the app")
parser.add_argument("--exit-code", type=int, default=0)
parser.add_argument("--exit-after", type=int, default=0, help="exit 0 after this many signals")
parser.add_argument("--fork-child", action="store_true", help="also fork a child in the same process group")
parser.add_argument("--ignore", action="append", default=[], help="signal name to ignore")
args = parser.parse_args()

tag = args.tag
received = 0
exit_on = {getattr(signal, "SIG" + name) for name in args.exit_on}
ignored = {getattr(signal, "SIG" + name) for name in args.ignore}


def name_of(signum):
    try:
        return signal.Signals(signum).name[3:]
    except ValueError:
        return str(signum)


def on_signal(signum, _frame):
    global received
    line = f"{tag} {name_of(signum)}\n"
    fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, line.encode())
    os.close(fd)
    received += 1
    if signum in exit_on or (args.exit_after and received >= args.exit_after):
        os._exit(args.exit_code)


for signum in signal.valid_signals():
    if signum in (signal.SIGKILL, signal.SIGSTOP):
        continue
    if signum in ignored:
        signal.signal(signum, signal.SIG_IGN)
    elif signum == signal.SIGCHLD and args.fork_child:
        continue  # the forked child's death is not a signal anybody sent
    else:
        signal.signal(signum, on_signal)

ready = args.ready
if args.fork_child and os.fork() == 0:
    tag = tag + "-child"
    ready = args.ready + ".child"

with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)

# Short sleeps, not one long one: CPython runs a Python-level handler only
# between bytecodes, so a signal that lands just before a long sleep begins
# would wait for the whole sleep.
while True:
    time.sleep(0.02)
