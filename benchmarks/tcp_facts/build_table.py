"""Build a large TCP socket table in the CURRENT network namespace and hold it (benchmark helper).

Run inside a namespace made by run.py; talks to loopback only; bounded by its arguments and by --hold.

- ``--holders`` processes each own a listener and ``--pairs / holders`` connected pairs (both ends), i.e.
  2 ESTABLISHED sockets per pair; every third holder listens on a dual-stack IPv6 socket and its clients are
  IPv4, so ~1/3 of the server sockets are IPv4-mapped IPv6;
- ``--time-wait`` client-side TIME_WAIT sockets (short connections, the client closes first);
- ``--storm`` more of them, made by ``--storm-workers`` processes at once, each towards its own listener:
  a TIME_WAIT storm. The kernel keeps a TIME_WAIT socket for 60 s (TCP_TIMEWAIT_LEN), so the table stays
  as built for 60 s after the start; the caller measures within that window;
- one "leaky" process holding ``--close-wait`` CLOSE_WAIT sockets (their peers sit in orphaned FIN_WAIT2).
Prints one JSON line when everything is built, then waits for stdin to close (or --hold seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import select
import signal
import socket
import sys
import time
import traceback


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if need + 64 > hard:
        raise SystemExit("need %d descriptors per process, hard limit is %d: use more --holders" % (need, hard))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, need + 1024)), hard))


def wait(hold, ready_w):
    os.write(ready_w, b"x")
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:
        ready, _w, _x = select.select([sys.stdin], [], [], 1.0)
        if ready and not os.read(sys.stdin.fileno(), 1):
            return


def holder(index, pairs, hold, ready_w):
    raise_fd_limit(2 * pairs + 16)
    port = 900 + index  # below the ephemeral range (1024-65535 here), so no client can take it first
    dual = index % 3 == 2
    if dual:
        lst = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        lst.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        lst.bind(("::", port))
    else:
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.bind(("127.0.0.1", port))
    lst.listen(4096)
    keep = []
    # Spread clients over source addresses so no (src, dst, dport) pool runs out of ports.
    for i in range(pairs):
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.bind(("127.0.%d.%d" % (1 + index, 1 + i // 30000), 0))
        cli.connect(("127.0.0.1", port))
        keep.append(cli)
        keep.append(lst.accept()[0])
    wait(hold, ready_w)


def short_connections(lst, port, count, source):
    """``count`` connections to ``port`` from 127.0.<source>.x, closed by the client first: TIME_WAIT on the
    client side. 30000 per source address, well inside the 1024-65535 range bind() picks from."""
    for i in range(count):
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.bind(("127.0.%d.%d" % (source, 1 + i // 30000), 0))
        cli.connect(("127.0.0.1", port))
        srv = lst.accept()[0]
        cli.close()
        srv.close()


def storm(index, count, hold, ready_w):
    port = 320 + index  # below the ephemeral range, like the holders
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", port))
    lst.listen(4096)
    short_connections(lst, port, count, 210 + index)
    wait(hold, ready_w)


def leaky(count, time_wait, hold, ready_w):
    raise_fd_limit(count + 16)
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 306))  # below the ephemeral range, like the holders
    lst.listen(4096)
    short_connections(lst, 306, time_wait, 200)
    keep = []
    for _n in range(count):
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.connect(("127.0.0.1", 306))
        lst.accept()[0].close()
        keep.append(cli)
    wait(hold, ready_w)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, required=True)
    parser.add_argument("--holders", type=int, default=0, help="default: enough for 9000 pairs each")
    parser.add_argument("--time-wait", type=int, default=15000)
    parser.add_argument("--close-wait", type=int, default=1000)
    parser.add_argument("--storm", type=int, default=0, help="client-side TIME_WAIT sockets made in parallel")
    parser.add_argument("--storm-workers", type=int, default=2)
    parser.add_argument("--hold", type=float, default=900)
    args = parser.parse_args()
    if args.pairs > 200000 or args.time_wait > 60000 or args.storm > 200000 or not 1 <= args.storm_workers <= 8:
        parser.error("bounded: at most 200000 pairs, 60000 TIME_WAIT sockets, a storm of 200000 by 1 to 8 workers")
    if not args.holders:
        args.holders = max(3, -(-args.pairs // 9000)) if args.pairs else 0
    started = time.monotonic()
    ready_r, ready_w = os.pipe()
    children = []
    jobs = [(holder, (i, args.pairs // args.holders, args.hold, ready_w)) for i in range(args.holders)]
    jobs.append((leaky, (args.close_wait, args.time_wait, args.hold, ready_w)))
    if args.storm:
        jobs += [(storm, (w, args.storm // args.storm_workers + (w < args.storm % args.storm_workers), args.hold, ready_w))
                 for w in range(args.storm_workers)]
    for func, fargs in jobs:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                func(*fargs)
            except BaseException:  # pylint: disable=broad-exception-caught
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)  # pylint: disable=protected-access
        children.append(pid)
    os.close(ready_w)
    pending = len(jobs)
    while pending:
        ready, _w, _x = select.select([ready_r], [], [], 1.0)
        if ready:
            pending -= len(os.read(ready_r, pending))
        for pid in children:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done and status:
                # Stop the other holders too: they keep our stdout open and run.py waits on it.
                for other in children:
                    if other != pid:
                        os.kill(other, signal.SIGTERM)
                sys.exit("a table holder failed (see its traceback above)")
    print(json.dumps({"ready": True, "pids": children, "build_seconds": round(time.monotonic() - started, 1)}),
          flush=True)
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # already reaped above


if __name__ == "__main__":
    main()
