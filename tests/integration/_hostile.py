"""Processes with hostile names holding real sockets, in the current network namespace (test helper).

Run it INSIDE a namespace the test created (``ip netns exec lntcp-...``); it only talks to loopback. Each name of
the JSON list given as argv[1] gets a child process that renames itself (prctl PR_SET_NAME, what /proc/PID/comm
shows, 15 bytes at most) and then makes its problem:

- ``out``: --count client connections to its own listener whose server side closes at once: the child's client
  sockets sit in CLOSE_WAIT towards the listener's port (outbound);
- ``in``: a listener that accepts --count connections and never closes them, while the clients (this parent)
  close first: the child's accepted sockets sit in CLOSE_WAIT, their peer is a client port (inbound);
- ``queue``: a listener with listen(1) that never accepts, and --count clients: a full accept queue.

    python _hostile.py '[["<b>x</b>|y", "out", 20001], ["in|side", "in", 20002]]' --count 12 --hold 120

Prints one JSON line {"ready": true, "pids": {name: pid}} when every socket is in place. Everything exits when
stdin closes or after --hold seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import time

# The renaming and listener helpers of the audit scenario's storm helper (molecule/audit/files/tcp_storm.py), through
# the collection namespace: the test runs this file with PYTHONPATH at .build/collections.
from ansible_collections.linuxnet.tcp.molecule.audit.files.tcp_storm import listener, set_name


def child(name, mode, port, count, ready_w, go_r):
    """The process that holds the sockets under ``name``; returns what must stay open."""
    set_name(name)
    keep = []
    if mode == "out":
        server = listener(port, 128)
        keep.append(server)
        for _n in range(count):
            cli = socket.create_connection(("127.0.0.1", port))
            server.accept()[0].close()  # the peer closes first; this process never closes cli
            keep.append(cli)
    elif mode == "in":
        server = listener(port, 128)
        keep.append(server)
        os.write(ready_w, b"l")  # listening: the parent connects now
        for _n in range(count):
            keep.append(server.accept()[0])  # accepted and never closed; the client closes first
    elif mode == "queue":
        keep.append(listener(port, 1))
    else:
        raise ValueError(mode)
    os.write(ready_w, b"r")
    select.select([go_r], [], [])
    return keep


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="JSON list of [name, mode, port]")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--hold", type=float, default=120.0)
    args = parser.parse_args(argv)
    if args.count > 200 or args.hold > 600:
        parser.error("bounded helper: --count <= 200, --hold <= 600")
    go_r, go_w = os.pipe()
    pids, clients = {}, []
    for name, mode, port in json.loads(args.spec):
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            try:
                child(name, mode, port, args.count, ready_w, go_r)
            finally:
                os._exit(0)
        os.close(ready_w)
        if mode == "in":
            assert os.read(ready_r, 1) == b"l"
            for _n in range(args.count):
                cli = socket.create_connection(("127.0.0.1", port))
                cli.close()  # the client closes first: the child's side goes to CLOSE_WAIT
        elif mode == "queue":
            time.sleep(0.05)
        assert os.read(ready_r, 1) == b"r", name
        if mode == "queue":
            for _n in range(args.count):
                cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                cli.setblocking(False)
                cli.connect_ex(("127.0.0.1", port))
                clients.append(cli)
        pids[name] = pid
    time.sleep(1.0)  # the last FINs and the queued handshakes settle
    print(json.dumps({"ready": True, "pids": pids}), flush=True)
    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline:
        if select.select([sys.stdin], [], [], 1.0)[0] and not sys.stdin.readline():
            break
    os.close(go_w)  # the children wake up and exit
    for pid in pids.values():
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
