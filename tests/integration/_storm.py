"""Build a known TCP socket table inside the current network namespace, then hold it (test helper).

Run it INSIDE a namespace the test created (``ip netns exec lntcp-...``); it only talks to loopback.
It is bounded: a fixed number of connections, and it exits when stdin closes or after ``--hold`` seconds.

    python _storm.py --time-wait 30000 --close-wait 40 --established 100 --backlog 8 --queued 20

Table built (IPv4 unless noted):
- TIME_WAIT on the client side: ``--time-wait`` short connections, two thirds to port 3306, one third to 5432
  (the client closes first), plus 100 over IPv6 to [::1]:3306;
- CLOSE_WAIT held by this process: ``--close-wait`` client sockets whose server side was closed (the
  server side then sits in FIN_WAIT2), and ``--close-wait-inbound`` accepted sockets on port 7000 whose
  clients closed (inbound CLOSE_WAIT; the clients sit in FIN_WAIT2);
- ESTABLISHED: ``--established`` pairs to port 6000 (half of them IPv4 clients of a dual-stack IPv6
  listener, i.e. IPv4-mapped server sockets);
- a listener on 8080 with ``listen(--backlog)`` that never accepts, and ``--queued`` clients: the accept
  queue fills (backlog + 1 entries) and the rest stay in SYN_SENT.
When ready it prints one JSON line: {"pid": N, "ready": true, ...}. A line ``again`` on stdin makes the TIME_WAIT
storm once more (TIME_WAIT lasts 60 s: a benchmark renews it before each round) and prints the ready line again.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import time


def listener(family, addr, backlog, dual=False):
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual else 1)
    sock.bind(addr)
    sock.listen(backlog)
    return sock


def time_wait(server, family, addr, count):
    for _n in range(count):
        cli = socket.socket(family, socket.SOCK_STREAM)
        cli.connect(addr)
        srv = server.accept()[0]
        cli.close()  # the active closer keeps TIME_WAIT
        srv.close()


def storm(args, mysql, pg):
    """The client-side TIME_WAIT storm of ``--time-wait`` connections; returns its duration in seconds."""
    started = time.monotonic()
    two_thirds = args.time_wait * 2 // 3
    time_wait(mysql, socket.AF_INET, ("127.0.0.1", 3306), two_thirds)
    time_wait(pg, socket.AF_INET, ("127.0.0.1", 5432), args.time_wait - two_thirds)
    time_wait(mysql, socket.AF_INET6, ("::1", 3306), 100 if args.time_wait else 0)
    return time.monotonic() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time-wait", type=int, default=0)
    parser.add_argument("--close-wait", type=int, default=0)
    parser.add_argument("--close-wait-inbound", type=int, default=0)
    parser.add_argument("--established", type=int, default=0)
    parser.add_argument("--backlog", type=int, default=8)
    parser.add_argument("--queued", type=int, default=0)
    parser.add_argument("--hold", type=float, default=300.0)
    args = parser.parse_args(argv)
    if args.time_wait > 60000:
        parser.error("--time-wait is bounded to 60000")
    keep = []
    mysql = listener(socket.AF_INET6, ("::", 3306), 4096, dual=True)
    pg = listener(socket.AF_INET, ("127.0.0.1", 5432), 4096)
    app = listener(socket.AF_INET6, ("::", 6000), 4096, dual=True)
    full = listener(socket.AF_INET, ("127.0.0.1", 8080), args.backlog)
    leaky = listener(socket.AF_INET, ("127.0.0.1", 7000), 4096)
    keep += [mysql, pg, app, full, leaky]
    storm_seconds = storm(args, mysql, pg)
    for _n in range(args.close_wait):
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.connect(("127.0.0.1", 5432))
        pg.accept()[0].close()  # server closes first; this process never closes cli: a leak
        keep.append(cli)
    for _n in range(args.close_wait_inbound):
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.connect(("127.0.0.1", 7000))
        keep.append(leaky.accept()[0])  # the client closes first; this process never closes its side
        cli.close()
    for i in range(args.established):
        family, addr = (socket.AF_INET, ("127.0.0.1", 6000)) if i % 2 else (socket.AF_INET6, ("::1", 6000))
        cli = socket.socket(family, socket.SOCK_STREAM)
        cli.connect(addr)
        keep += [cli, app.accept()[0]]
    for _n in range(args.queued):
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.setblocking(False)
        cli.connect_ex(("127.0.0.1", 8080))
        keep.append(cli)
    time.sleep(0.2)  # let the last handshakes settle
    print(json.dumps({"pid": os.getpid(), "ready": True, "storm_seconds": round(storm_seconds, 2)}), flush=True)
    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline:
        ready, _w, _x = select.select([sys.stdin], [], [], max(0.0, min(1.0, deadline - time.monotonic())))
        if ready:
            line = sys.stdin.readline()
            if not line:
                break
            if line.strip() == "again":
                print(json.dumps({"pid": os.getpid(), "ready": True, "storm_seconds": round(storm(args, mysql, pg), 2)}),
                      flush=True)
    for sock in keep:
        sock.close()


if __name__ == "__main__":
    main()
