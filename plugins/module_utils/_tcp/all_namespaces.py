# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TCP facts of every network namespace on a host: which container or pod holds the trouble.

Each namespace found by ``_host.namespaces.enumerate_netns()`` is entered once for its own dumps, counters and
sysctls (the same ``gather()`` as ``tcp_facts netns=PATH``, in summary form: the kernel's counters, sockstat and
the socket table are per network namespace), attributed to its owner, and reduced to a compact document.

What a scan costs, and why it is built this way (docs/tcp_facts.md has the measurements):

- /proc is walked once for the whole host (``_host.processes.ProcessTable``): the namespaces are found from it and each
  namespace's owner lookup is ordered from it, instead of a walk of every process per namespace;
- the established hash that a sock_diag dump walks is shared by every namespace, so each dump of a namespace
  visits the sockets of all of them (0.05 to 0.12 us each in the benchmark's runs): with a few TIME_WAIT storms on the host this walk is
  most of the cost. Each namespace gets one walk (``parts=1``). One thread reads the first namespaces; when the
  kernel's walks take a good share of their time (WALK_SHARE), a second thread joins (one per CPU, two at most),
  since the kernel walks inside send()/recv(), which release the GIL. Where the walks are short (namespaces
  with a hash of their own, or few sockets on the host) a second thread only fights the first for the GIL:
  the scan measured 0.43 s with one thread and 0.62 s with two over 250 namespaces with their own hash;
- each thread enters its namespace with setns(2), which moves only that thread, reads what follows the
  thread's namespace (/proc/thread-self/net, /proc/sys/net, new netlink sockets) and always comes back
  (``_host.netns.entered()``); a thread that cannot come back stops the scan.

Work is bounded by a number of namespaces and a time budget; what was left out is counted, and a namespace that
disappears during the scan is skipped and counted.
"""

import errno
import os
import threading
import time

from ansible_collections.linuxnet.tcp.plugins.module_utils._host import namespaces
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.counters import KstatsError
from ansible_collections.linuxnet.tcp.plugins.module_utils._host.netns import NetnsError, NetnsReturnError
from ansible_collections.linuxnet.tcp.plugins.module_utils._host.processes import ProcessTable
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.sockets import CollectError, default_parts
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.collect import gather

# Per-namespace sysctls the rules use to explain a finding (tcp_tw_reuse, tcp_timestamps are per namespace).
SYSCTLS = ("net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_timestamps", "net.ipv4.tcp_max_tw_buckets", "net.ipv4.tcp_fin_timeout",
           "net.ipv4.ip_local_port_range", "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies")
TOP = 3
# One thread reads at least this many namespaces before the scan decides whether a second one pays, and decides
# again after each one it reads alone: it does once the kernel's walks (send()/recv() of the dumps) took at least
# WALK_SHARE of the time spent in them. The first namespace read is not counted: it pays what a process pays once
# (imports, ctypes for setns before Python 3.12, the probe of the legacy request), 10 to 20 ms, which would hide
# the walks' share for several namespaces more. Measured on 2 CPUs: 0.1 to 0.15 of the time where each namespace
# has a hash of its own (two threads took 30-40% longer), 0.5 to 0.6 with 50 namespaces sharing the host's hash
# and 22,000 sockets in it (two threads took 25-30% less), 0.7 and more with 250 namespaces and 106,000 sockets.
DECIDE_AFTER = 2
WALK_SHARE = 0.3


def trouble(doc):
    """A sort key, larger first: ephemeral ports half used or more towards one destination (in tenths), full accept
    queues, CLOSE_WAIT sockets (a leak), TIME_WAIT sockets, then the port use below that."""
    busiest = (doc.get("ephemeral_ports") or {}).get("busiest") or {}
    used = busiest.get("utilisation") or 0.0
    full = sum(1 for item in doc.get("listeners") or [] if item.get("backlog") and item.get("queue", 0) >= item["backlog"])
    return (round(used, 1) if used >= 0.5 else 0.0, full, doc["close_wait"]["total"], doc["time_wait"]["total"], round(used, 3))


def compact(facts, entry, owner, values):
    """The per-namespace document: what the rules and the reports read, nothing more."""
    listeners = [item for item in facts["listeners"] if item.get("queue")]
    doc = {
        "inode": entry["inode"],
        "path": entry["path"],
        "netns_name": entry["netns_name"],
        "owner": owner,
        "label": namespaces.label(owner),
        "states": facts["states"],
        "time_wait": dict(facts["time_wait"], by_remote=facts["time_wait"]["by_remote"][:TOP],
                          by_local_port=facts["time_wait"]["by_local_port"][:TOP]),
        "close_wait": dict(facts["close_wait"], by_process=facts["close_wait"]["by_process"][:TOP]),
        "listeners": listeners[:TOP],
        "ephemeral_ports": facts["ephemeral_ports"],
        # All of them (a few dozen numbers): a per-namespace rule reads whichever counter the host's rule reads.
        "counters": dict(facts.get("counters") or {}),
        "sysctl": {"runtime": values},
        "collection": {"backend": facts["collection"]["backend"], "owners": facts["collection"]["owners"]},
    }
    doc["trouble"] = list(trouble(doc))
    return doc


def gather_all(backend="auto", processes=True, limit=200, budget=30.0, root="/", clock=time.monotonic, threads=None):
    """``(namespaces, scan)``: a compact document per network namespace other than the caller's, sorted by trouble.

    ``threads``: namespaces read at once from the start; default (None): one, and one per CPU (two at most) once
    the kernel's walks turn out to be most of the time (see the module docstring)."""
    started = clock()
    table = ProcessTable(root)
    found, _own, scan = namespaces.enumerate_netns(root, limit=limit, budget=budget, clock=clock, table=table)
    scan["found"] = len(found) + scan["left_out"]
    names, users = namespaces.Names(root), {}
    docs = []
    lock = threading.Lock()  # guards the queue, scan, docs and the lazy caches of Names
    pending = list(reversed(found))
    stop = []  # a NetnsReturnError (or a bug): no thread takes another namespace, and the caller raises it

    def take():
        with lock:
            if stop or not pending:
                return None
            if budget is not None and clock() - started > budget:
                scan["timed_out"] = True
                scan["left_out"] += len(pending)
                del pending[:]
                return None
            entry = pending.pop()
            return entry, namespaces.owner(root, entry, names, users)

    def failed(entry, exc):
        cause = exc.__cause__ if isinstance(exc, (NetnsError, KstatsError)) else exc
        with lock:
            if getattr(cause, "errno", None) in (errno.EPERM, errno.EACCES):
                namespaces.not_permitted(scan, entry["path"])
            else:
                # The container stopped between the scan and the dump: skipped and counted, never a failure.
                scan["vanished"] += 1
                scan.setdefault("errors", []).append("%s: %s" % (entry["path"], exc))

    count = threads or default_parts()
    helpers = []
    measured = {"seen": 0, "walk": 0.0, "total": 0.0}

    def spread(walk, total):
        """After a namespace read by the first thread alone: start the others if the walks dominate."""
        with lock:
            measured["seen"] += 1
            if measured["seen"] == 1:
                return  # the first one pays the process's one-off costs
            measured["walk"] += walk
            measured["total"] += total
            if count < 2 or measured["seen"] - 1 < DECIDE_AFTER or not pending:
                return
            if measured["walk"] < WALK_SHARE * measured["total"]:
                return
            start(count)

    def start(number):
        for index in range(1, min(number, len(found))):
            helper = threading.Thread(target=work, name="netns-%d" % index)
            helper.daemon = True
            helper.start()
            helpers.append(helper)

    def work():
        while True:
            job = take()
            if job is None:
                return
            entry, owner = job
            timing = {}
            began = time.monotonic()
            try:
                facts = gather(backend=backend, top=TOP, processes=processes, netns=entry["path"], summary=True,
                               root=root, idle_owners=False,  # compact() keeps the listeners with a queue only
                               parts=1, table=table, sysctls=SYSCTLS, conntrack=False, timing=timing)
            except NetnsReturnError as exc:
                stop.append(exc)
                return
            except (NetnsError, CollectError, KstatsError, OSError) as exc:
                failed(entry, exc)
                continue
            except Exception as exc:  # pylint: disable=broad-exception-caught
                stop.append(exc)  # a bug: raised by the caller's thread, as without threads
                return
            doc = compact(facts, entry, owner, facts.pop("sysctl_values"))
            with lock:
                docs.append(doc)
            if threads is None and not helpers:
                spread(timing.get("walk", 0.0), time.monotonic() - began)

    if threads:
        start(threads)
    try:
        work()
    finally:
        # Helpers are started by this thread only, before its work() returns: the list is complete here.
        for helper in helpers:
            helper.join()
    if stop:
        raise stop[0]
    docs.sort(key=lambda d: (tuple(-x for x in d["trouble"]), d["label"], d["inode"]))
    scan["reported"] = len(docs)
    scan["privileged"] = os.geteuid() == 0
    scan["visibility"] = ("every namespace" if scan["privileged"] else
                          "only namespaces this user may enter (entering needs CAP_SYS_ADMIN: run as root to see every "
                          "container)")
    scan["duration_ms"] = round((clock() - started) * 1000.0, 1)
    if "errors" in scan:
        scan["errors"] = scan["errors"][:10]
    return docs, scan
