# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TCP facts of every network namespace on a host: which container or pod holds the trouble.

Each namespace found by ``_namespaces.enumerate_netns()`` is entered for its own dumps and counters (the same
``gather()`` as ``tcp_facts netns=PATH``, in summary form: the kernel's counters, sockstat and the socket table
are per network namespace), attributed to its owner, and reduced to a compact document. The caller always comes
back to its own namespace (``_netns.entered()``). Work is bounded by a number of namespaces and a time budget;
what was left out is counted, and a namespace that disappears during the scan is skipped and counted.
"""

import errno
import os
import time

from ansible_collections.linuxnet.tcp.plugins.module_utils import _namespaces as namespaces
from ansible_collections.linuxnet.tcp.plugins.module_utils._kstats import KstatsError
from ansible_collections.linuxnet.tcp.plugins.module_utils._netns import NetnsError, NetnsReturnError, entered
from ansible_collections.linuxnet.tcp.plugins.module_utils._sockets import CollectError
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp_report import gather

# Per-namespace sysctls the rules use to explain a finding (tcp_tw_reuse, tcp_timestamps are per namespace).
SYSCTLS = ("net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_timestamps", "net.ipv4.tcp_max_tw_buckets", "net.ipv4.tcp_fin_timeout",
           "net.ipv4.ip_local_port_range", "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies")
TOP = 3


def _sysctl_values(root):
    """The SYSCTLS of the namespace the caller is in (it reads /proc/sys/net, which follows the thread's netns)."""
    out = {}
    for key in SYSCTLS:
        try:
            with open(os.path.join(root, "proc", "sys", *key.split("."))) as handle:
                out[key] = " ".join(handle.read().split())
        except OSError:
            continue
    return out


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


def gather_all(backend="auto", processes=True, limit=200, budget=30.0, root="/", clock=time.monotonic):
    """``(namespaces, scan)``: a compact document per network namespace other than the caller's, sorted by trouble."""
    started = clock()
    found, _own, scan = namespaces.enumerate_netns(root, limit=limit, budget=budget, clock=clock)
    scan["found"] = len(found) + scan["left_out"]
    names, users = namespaces.Names(root), {}
    docs = []
    for index, entry in enumerate(found):
        if budget is not None and clock() - started > budget:
            scan["timed_out"] = True
            scan["left_out"] += len(found) - index
            break
        owner = namespaces.owner(root, entry, names, users)
        try:
            facts = gather(backend=backend, top=TOP, processes=processes, netns=entry["path"], summary=True, root=root,
                           idle_owners=False)  # compact() keeps the listeners with a queue only
            with entered(entry["path"], root):
                values = _sysctl_values(root)
        except NetnsReturnError:
            raise
        except (NetnsError, CollectError, KstatsError, OSError) as exc:
            cause = exc.__cause__ if isinstance(exc, (NetnsError, KstatsError)) else exc
            if getattr(cause, "errno", None) in (errno.EPERM, errno.EACCES):
                namespaces.not_permitted(scan, entry["path"])
            else:
                # The container stopped between the scan and the dump: skipped and counted, never a failure.
                scan["vanished"] += 1
                scan.setdefault("errors", []).append("%s: %s" % (entry["path"], exc))
            continue
        docs.append(compact(facts, entry, owner, values))
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
