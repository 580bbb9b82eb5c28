# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Load generators of the diagnosis scenarios, bounded in count and time (test helper).

Run INSIDE a namespace the test created (``ip netns exec ...``); they talk only to the addresses given (the test's
own veth addresses or loopback). Each prints one JSON line with what it saw.

    python _clients.py http --target 10.21.0.1:80 --rate 650 --seconds 8
        one HTTP/1.1 request per connection, the client closing first (so the TIME_WAIT is on this side), at a fixed
        rate; counts the connect() failures, EADDRNOTAVAIL apart
    python _clients.py prefork-leak --target 10.21.0.1:80 --workers 8 --each 6
        a prefork program: a master and 8 forked workers, each opening 6 keep-alive connections that it never
        closes; once the server closes them idle they sit in CLOSE_WAIT. Prints when ready, holds until stdin closes
    python _clients.py mysql --target 10.21.0.2:3306 --count 600 --procs 4
        an application without a pool: PyMySQL connect, SELECT 1, close, once per query (in 4 processes)
    python _clients.py hold --target 10.21.0.1:80 --count 60
        connections opened and kept (to fill an accept queue), until stdin closes
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import select
import socket
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: keep-alive\r\n\r\n"


def target(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def wait_stdin(limit):
    """Block until stdin closes or ``limit`` seconds pass."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        ready, _w, _x = select.select([sys.stdin], [], [], max(0.0, min(1.0, deadline - time.monotonic())))
        if ready and not sys.stdin.readline():
            return


def http(args):
    ok = failed = unavailable = 0
    started = time.monotonic()
    sent = 0
    while sent < args.max and time.monotonic() - started < args.seconds:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(5)
            sock.connect(target(args.target))
            sock.sendall(REQUEST)
            sock.recv(4096)
            ok += 1
        except OSError as exc:
            failed += 1
            unavailable += exc.errno == errno.EADDRNOTAVAIL
        finally:
            sock.close()  # the client closes first: its side keeps the TIME_WAIT
        sent += 1
        if args.rate:
            delay = started + sent / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    seconds = time.monotonic() - started
    print(json.dumps({"ok": ok, "failed": failed, "eaddrnotavail": unavailable, "seconds": round(seconds, 2),
                      "rate": round(sent / seconds, 1)}), flush=True)


def prefork_leak(args):
    workers = []
    for _index in range(args.workers):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            held = []
            for _n in range(args.each):
                sock = socket.create_connection(target(args.target))
                sock.sendall(REQUEST)
                sock.recv(4096)
                held.append(sock)  # never closed: the leak
            os.write(write_end, b"x")
            wait_stdin(args.hold)
            os._exit(0)
        os.close(write_end)
        workers.append((pid, read_end))
    for _pid, read_end in workers:
        os.read(read_end, 1)
        os.close(read_end)
    print(json.dumps({"master": os.getpid(), "workers": [pid for pid, _r in workers]}), flush=True)
    wait_stdin(args.hold)
    for pid, _r in workers:
        try:
            os.kill(pid, 15)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass  # that worker has already exited and been reaped: nothing left to stop


def mysql(args):
    """``--procs`` processes share ``--count`` queries, each on a connection of its own (connect, SELECT 1, close)."""
    import pymysql  # pylint: disable=import-outside-toplevel

    host, port = target(args.target)
    started = time.monotonic()
    children = []
    for index in range(args.procs):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            ok = 0
            for _n in range(args.count // args.procs + (index < args.count % args.procs)):
                if time.monotonic() - started > args.seconds:
                    break
                conn = pymysql.connect(host=host, port=port, user="app", connect_timeout=5)
                with conn.cursor() as cursor:
                    cursor.execute("SELECT 1")
                    cursor.fetchall()
                conn.close()  # no pool: a new connection for the next query
                ok += 1
            os.write(write_end, str(ok).encode())
            os._exit(0)
        os.close(write_end)
        children.append((pid, read_end))
    ok = 0
    for pid, read_end in children:
        with os.fdopen(read_end, "rb") as handle:
            ok += int(handle.read() or 0)
        os.waitpid(pid, 0)
    print(json.dumps({"ok": ok, "seconds": round(time.monotonic() - started, 2)}), flush=True)


def hold(args):
    held = []
    for _n in range(args.count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(target(args.target))
        held.append(sock)
    time.sleep(0.5)
    print(json.dumps({"opened": len(held)}), flush=True)
    wait_stdin(args.hold)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["http", "prefork-leak", "mysql", "hold"])
    parser.add_argument("--target", required=True)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--each", type=int, default=6)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--hold", type=float, default=120.0)
    parser.add_argument("--procs", type=int, default=1)
    args = parser.parse_args(argv)
    if args.max > 50000 or args.count > 20000 or args.seconds > 60 or args.workers > 32 or not 1 <= args.procs <= 16:
        parser.error("bounded: --max 50000, --count 20000, --seconds 60, --workers 32, --procs 1-16 at most")
    {"http": http, "prefork-leak": prefork_leak, "mysql": mysql, "hold": hold}[args.mode](args)


if __name__ == "__main__":
    main()
