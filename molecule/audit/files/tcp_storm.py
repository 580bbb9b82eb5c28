# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make one known TCP problem in the current network namespace, then stop by itself (test helper).

Everything talks to loopback only, is bounded in count and in time, and exits after --duration seconds.
The process renames itself (prctl PR_SET_NAME, what /proc/PID/comm shows) so a diagnosis can name it.

  time-wait       a listener on --port, and short client connections to it that the client closes first,
                  so that about --target sockets are in TIME_WAIT at any time: a TIME_WAIT socket lives 60 s,
                  so a connection is made whenever fewer than --target were closed in the last 60 s (at
                  most --max in all). The TIME_WAIT sockets are client side (outbound), or server side
                  (inbound, on the listening port) with --server-closes.
  close-wait      --count clients to a listener on --port whose server side closes at once; this process
                  never closes its client sockets, so they sit in CLOSE_WAIT: a leak.
  accept-overflow a listener on --port with listen(--backlog) that never calls accept(), and --count
                  non-blocking clients: the accept queue fills and the kernel counts ListenOverflows.
  established     healthy traffic: a listener on --port that accepts, and --count connections held open.

Prints one JSON line when the problem is in place, e.g. {"mode": "close-wait", "pid": 42, "ready": true}.
"""
from __future__ import annotations

import argparse
import collections
import ctypes
import errno
import json
import os
import socket
import sys
import time

PR_SET_NAME = 15
TIME_WAIT_SECONDS = 60  # TCP_TIMEWAIT_LEN in include/net/tcp.h, not tunable


def set_name(name):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


def listener(port, backlog):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(backlog)
    return sock


def ready(args, **extra):
    print(json.dumps(dict({"mode": args.mode, "pid": os.getpid(), "ready": True}, **extra)), flush=True)


def one_short_connection(server, port, server_closes=False):
    cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        cli.connect(("127.0.0.1", port))
    except OSError as exc:
        cli.close()
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAGAIN):
            return False  # the port range is used up: that is the point, wait for TIME_WAIT to expire
        raise
    srv = server.accept()[0]
    first, second = (srv, cli) if server_closes else (cli, srv)
    first.close()  # the active closer keeps the TIME_WAIT socket
    second.close()
    return True


def time_wait(args, deadline):
    server = listener(args.port, 4096)
    recent = collections.deque()  # close times of the connections whose TIME_WAIT is still alive
    made = 0
    announced = False
    while time.monotonic() < deadline and made < args.max:
        now = time.monotonic()
        while recent and now - recent[0] > TIME_WAIT_SECONDS:
            recent.popleft()
        if len(recent) >= args.target:
            if not announced:
                ready(args, made=made)
                announced = True
            time.sleep(0.05)
            continue
        if one_short_connection(server, args.port, args.server_closes):
            made += 1
            recent.append(time.monotonic())
        else:
            time.sleep(0.5)
    if not announced:
        ready(args, made=made)
    while time.monotonic() < deadline:
        time.sleep(1)


def close_wait(args, deadline):
    server = listener(args.port, 4096)
    keep = [server]
    for _index in range(args.count):
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.connect(("127.0.0.1", args.port))
        server.accept()[0].close()  # the peer closes first; this process never closes cli: the leak
        keep.append(cli)
    ready(args, leaked=args.count)
    while time.monotonic() < deadline:
        time.sleep(1)


def accept_overflow(args, deadline):
    server = listener(args.port, args.backlog)
    keep = [server]
    for _index in range(args.count):
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.setblocking(False)
        cli.connect_ex(("127.0.0.1", args.port))
        keep.append(cli)
    time.sleep(1.5)  # the first SYN retransmissions hit the full queue and are counted as overflows
    ready(args, clients=args.count)
    while time.monotonic() < deadline:
        time.sleep(1)


def established(args, deadline):
    server = listener(args.port, 128)
    keep = [server]
    for _index in range(args.count):
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.connect(("127.0.0.1", args.port))
        keep += [cli, server.accept()[0]]
    ready(args, connections=args.count)
    while time.monotonic() < deadline:
        time.sleep(1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["time-wait", "close-wait", "accept-overflow", "established"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", help="process name shown in /proc/PID/comm (15 characters at most)")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds before exiting (at most 900)")
    parser.add_argument("--target", type=int, default=1000, help="time-wait: TIME_WAIT sockets to keep")
    parser.add_argument("--max", type=int, default=60000)
    parser.add_argument("--server-closes", action="store_true", help="time-wait: the server side closes first")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--backlog", type=int, default=4)
    args = parser.parse_args(argv)
    if args.duration > 900 or args.max > 200000 or args.count > 2000 or args.target > 60000:
        parser.error("bounded helper: --duration <= 900, --max <= 200000, --count <= 2000, --target <= 60000")
    if args.name:
        set_name(args.name)
    deadline = time.monotonic() + args.duration
    modes = {"time-wait": time_wait, "close-wait": close_wait, "accept-overflow": accept_overflow,
             "established": established}
    modes[args.mode](args, deadline)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
