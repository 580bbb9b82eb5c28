# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""N throwaway network namespaces, each with a process holding a realistic socket table (benchmark helper).

Every namespace is ``ip netns add PREFIX<tag>-NNN`` with loopback up and one holder process
(tests/integration/_storm.py run inside it), like a pod with its one application:

- one in five: a client-side TIME_WAIT storm of ``storm`` sockets (renewed by ``refresh()``, since TIME_WAIT lasts
  60 s, and capped at that size by the namespace's ``net.ipv4.tcp_max_tw_buckets``);
- one in five: 20 ESTABLISHED pairs, a CLOSE_WAIT leak of 5 sockets and 3 connections waiting in an accept queue
  (owners to find);
- the others: 20 ESTABLISHED pairs.

Each holder has five listeners. Everything talks to the namespace's own loopback, is bounded in count and time
(the holders exit when their stdin closes or after ``hold`` seconds), and ``close()`` deletes exactly the
namespaces made here, also after a failure or SIGTERM.

As on a Kubernetes node, the namespaces share the kernel's one established hash table, which every sock_diag dump
and /proc/net/tcp read walks whole, other namespaces' sockets included. With ``own_hash=N`` they are made from a
parent namespace of the lab whose ``net.ipv4.tcp_child_ehash_entries`` is N (Linux 6.1+): each then has a table of
its own, and a walk visits only its own sockets.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STORM = os.path.join(ROOT, "tests", "integration", "_storm.py")
MAX_NAMESPACES = 300


def _sh(*argv):
    proc = subprocess.run(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    if proc.returncode:
        raise SystemExit("%s failed: %s" % (" ".join(argv), proc.stderr.strip()))


def _add(argv, attempts=3):
    """`ip netns add`, tried again after a short pause: on a shared host, another user's `ip netns` may hold the
    /run/netns mount at that moment."""
    for attempt in range(attempts):
        try:
            _sh(*argv)
            return
        except SystemExit:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def _terminated(_signum, _frame):
    raise SystemExit("terminated")


class Lab:
    """``with Lab(count, prefix) as lab:`` ``lab.names`` the namespaces, ``lab.kinds`` what each holds."""

    def __init__(self, count, prefix="lntcp-bench-ns-", storm=2000, hold=1800, own_hash=0):
        if not 1 <= count <= MAX_NAMESPACES:
            raise SystemExit("the lab is bounded to 1..%d namespaces" % MAX_NAMESPACES)
        tag = uuid.uuid4().hex[:6]
        self.names = ["%s%s-%03d" % (prefix, tag, i) for i in range(count)]
        self.kinds = ["storm" if i % 5 == 0 else "leak" if i % 5 == 1 else "quiet" for i in range(count)]
        self.storm, self.hold, self.own_hash = storm, hold, own_hash
        self.parent = "%s%s-parent" % (prefix, tag) if own_hash else None
        self.holders = []
        self._made = []

    def __enter__(self):
        signal.signal(signal.SIGTERM, _terminated)
        try:
            add = ["ip", "netns", "add"]
            if self.parent:
                _sh("ip", "netns", "add", self.parent)
                self._made.append(self.parent)
                _sh("ip", "netns", "exec", self.parent, "sysctl", "-q", "-w",
                    "net.ipv4.tcp_child_ehash_entries=%d" % self.own_hash)
                # nsenter enters the network namespace only: the bind mount of `ip netns add` stays on the host.
                add = ["nsenter", "--net=/run/netns/" + self.parent] + add
            for name, kind in zip(self.names, self.kinds):
                _add(add + [name])
                self._made.append(name)
                _sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
                if kind == "storm":
                    # A per-namespace limit: the storm stays at its size however often it is renewed.
                    _sh("ip", "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv4.tcp_max_tw_buckets=%d" % self.storm)
                table = {"storm": ["--time-wait", str(self.storm)],
                         "leak": ["--established", "20", "--close-wait", "5", "--queued", "3"],
                         "quiet": ["--established", "20"]}[kind]
                holder = subprocess.Popen(  # pylint: disable=consider-using-with
                    ["ip", "netns", "exec", name, sys.executable, STORM, "--hold", str(self.hold)] + table,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                self.holders.append(holder)
                json.loads(holder.stdout.readline())
        except BaseException:
            self.close()
            raise
        return self

    def refresh(self):
        """Make every TIME_WAIT storm again and wait until all are done."""
        storms = [h for h, kind in zip(self.holders, self.kinds) if kind == "storm"]
        for holder in storms:
            holder.stdin.write("again\n")
            holder.stdin.flush()
        for holder in storms:
            json.loads(holder.stdout.readline())

    def close(self):
        for holder in self.holders:
            try:
                holder.stdin.close()
            except OSError:
                pass
        for holder in self.holders:
            try:
                holder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                holder.kill()
                holder.wait(timeout=30)
        self.holders = []
        for name in self._made:
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
        self._made = []

    def __exit__(self, *_exc):
        self.close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
