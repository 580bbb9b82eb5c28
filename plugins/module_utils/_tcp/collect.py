# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One collection of the ``tcp`` facts (``gather()``): enter the namespace, read the counters and the sysctls,
dump the socket table into a ``tally.Tally`` (netlink, falling back to /proc), find the owners of the sockets that
need one, and build the document (``report.document()``) with the collection's own notes and the counter rates.
"""

import os
import time

from ansible_collections.linuxnet.tcp.plugins.module_utils._host.netns import entered, is_initial
from ansible_collections.linuxnet.tcp.plugins.module_utils._host.processes import netns_link
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.acceptors import rank as rank_holders
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.counters import (
    SOCKET_SYSCTLS,
    read_conntrack,
    read_counters,
    read_port_range,
    read_socket_sysctls,
    read_sysctls,
)
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.owners import find_owners
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.report import STATE_ORDER, document
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.sockets import (
    AF_INET,
    AF_INET6,
    ALL_STATES,
    LISTEN_BIT,
    SYN_RECV,
    NetlinkBackend,
    NetlinkRefused,
    ProcBackend,
    dump_plan,
    states_mask,
)
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.tally import Tally


def _dump(backend, detail, port_range, sockstat=None, settings=None):
    """Read the socket table with ``backend`` into a new Tally."""
    tally = Tally(port_range, detail & ~LISTEN_BIT, settings)
    # LISTEN sockets are always read in detail: they are few, and they tell inbound from outbound.
    for family in (AF_INET, AF_INET6):
        tally.add_listeners(family, backend.listeners(family, tally.counts))
    rest = ALL_STATES & ~LISTEN_BIT
    if isinstance(backend, NetlinkBackend):
        # sockstat counts the full sockets (inuse) and the minisockets (tw) without a dump; it decides how
        # the table is cut, never what is counted.
        # Each walk visits the sockets of every namespace: ``alloc`` counts the full ones of the whole host.
        sockstat = sockstat or {}
        plan = dump_plan(rest, sockstat.get("inuse") or 0, sockstat.get("tw") or 0, backend.parts,
                         walked=(sockstat.get("alloc") or 0) + (sockstat.get("tw") or 0))
        backend.dump(plan, tally.block, port_range)
    else:
        for family in (AF_INET, AF_INET6):
            for batch in backend.scan(family, rest, detail, tally.counts):
                tally.add(family, batch)
    return tally


def gather(backend="auto", states=None, top=10, processes=True, netns=None, summary=False, root="/", idle_owners=True,
           parts=None, table=None, sysctls=(), conntrack=True, timing=None):
    """Collect the ``tcp`` facts. Raises CollectError, KstatsError or NetnsError with a clear message.

    ``idle_owners``: also attribute listeners with an empty accept queue, while the scan stays cheap (False
    where only the listeners with a queue are kept, as in the per-namespace documents). For a scan of every
    namespace (``all_namespaces``): ``parts`` concurrent dumps of the table (default by CPUs; 1 there, where
    namespaces are read side by side), ``table`` the scan's one walk of /proc (``_host.processes.ProcessTable``) and
    ``sysctls`` names of sysctls to read while inside, returned as ``sysctl_values``; ``conntrack`` False leaves
    the conntrack counters unread (None), which the per-namespace documents do not carry; ``timing``, a dict,
    gets ``walk``: the seconds the kernel took to build the netlink dumps (0.0 with /proc).
    Safe to call from several threads: the namespace is entered by the calling thread only."""
    started = time.monotonic()
    wanted = ALL_STATES if states is None else states_mask(STATE_ORDER.index(s) + 1 for s in states)
    fallback = None
    initial = is_initial(root, netns)
    # /proc/net follows the main thread's namespace, /proc/thread-self/net the caller's (see counters.py).
    net = "proc/thread-self/net" if netns else "proc/net"
    with entered(netns, root):
        port_range = read_port_range(root)
        settings = read_socket_sysctls(root)
        counters = read_counters(root, net)
        counted = time.monotonic()
        conntrack = read_conntrack(root) if conntrack else None
        values = _sysctl_values(root, sysctls, settings, port_range) if sysctls else None
        if backend == "proc":
            used = ProcBackend(root, net)
            tally = _dump(used, wanted, port_range, counters.get("sockstat"), settings)
        else:
            used = NetlinkBackend(parts=parts)
            try:
                tally = _dump(used, wanted, port_range, counters.get("sockstat"), settings)
            except NetlinkRefused as exc:
                if backend == "netlink":
                    raise
                fallback = str(exc)
                used = ProcBackend(root, net)
                tally = _dump(used, wanted, port_range, counters.get("sockstat"), settings)
    if timing is not None:
        timing["walk"] = getattr(used, "waited", 0.0)
    privileged = os.geteuid() == 0
    owners = {}
    owner_info = None
    if processes:
        # Required: CLOSE_WAIT sockets (the leak to explain) and listeners with a non-empty accept queue or with
        # connection requests in SYN_RECV (who is not accepting, which listener is flooded). Other listeners are
        # attributed while the scan stays cheap.
        inodes = [row.inode for row in tally.close_wait]
        optional = []
        if wanted & LISTEN_BIT:
            for _slot, rec in tally.listeners:
                if _in_trouble(tally, rec):
                    inodes.append(rec.inode)  # a queue, or connection requests: who should accept them
                elif idle_owners:
                    optional.append(rec.inode)
        uids = {rec.uid for _slot, rec in tally.listeners} | {row.uid for row in tally.close_wait}
        link = netns_link(root, netns)
        owners, owner_info = find_owners(inodes, root, link, uids, optional, table=table)
    acceptors = {}
    if processes and wanted & LISTEN_BIT:
        # A listener with a queue or with connection requests: name the holder that should accept, not the first
        # one the walk met (after fork, a master and its workers hold the same socket).
        for _slot, rec in tally.listeners:
            if _in_trouble(tally, rec) and owners.get(rec.inode):
                acceptors[rec.inode] = rank_holders(root, rec.inode, owners[rec.inode], owner_info["fds"], table, link)
    facts = document(tally, top, owners, summary, wanted, acceptors, root)
    facts["rates"] = _rates(facts, counters, counted, netns, root, summary, net)
    facts["counters"] = counters
    facts["conntrack"] = conntrack
    if values is not None:
        facts["sysctl_values"] = values
    facts["collection"] = {
        "backend": used.name,
        "fallback_reason": fallback,
        "duration_ms": round((time.monotonic() - started) * 1000.0, 1),
        "kernel": os.uname().release,
        "initial_netns": initial,
        "netns": netns,
        "privileged": privileged,
        "owners": _owner_note(processes, privileged, owner_info),
        "summary": summary,
    }
    return facts


def _in_trouble(tally, listener):
    """Whether a listener has a non-empty accept queue or connection requests in SYN_RECV."""
    return bool(listener.rqueue or tally.lports[SYN_RECV].get(listener.sport))


def _sysctl_values(root, keys, settings, port_range):
    """``{key: text}`` of the sysctls ``keys`` (dotted names), those read already for the socket table taken from
    ``settings`` and ``port_range`` rather than read again."""
    known = dict(("net.%s.%s" % parts, settings.get(name)) for name, parts in SOCKET_SYSCTLS)
    known["net.ipv4.ip_local_port_range"] = "%d %d" % port_range if port_range else None
    values = read_sysctls(root, [key for key in keys if key not in known])
    values.update((key, str(known[key])) for key in keys if known.get(key) is not None)
    return values


# Counters whose rate tells what is happening now rather than since boot: port reuse under pressure, connection
# attempts, and a SYN flood in progress.
RATE_COUNTERS = ("TWRecycled", "ActiveOpens", "PassiveOpens", "AttemptFails", "SyncookiesSent", "TCPReqQFullDrop",
                 "TCPReqQFullDoCookies", "ListenOverflows", "ListenDrops")
RATE_WINDOW = 1.0


def _rates(facts, counters, counted, netns, root, summary, net="proc/net"):
    """Per-second rates of RATE_COUNTERS over at least RATE_WINDOW seconds since ``counters`` were read, or None.

    Measured only where they change the diagnosis (the caller then waits up to a second): TIME_WAIT sockets take
    half the ephemeral range towards one destination (are the ports being reused?), or a listener has connection
    requests in SYN_RECV (is a flood going on?). Not in summary form (one per container namespace).
    """
    crowded = (facts.get("ephemeral_ports") or {}).get("crowded") or {}
    size = (facts.get("ephemeral_ports") or {}).get("size") or 0
    pressure = size and (crowded.get("sockets") or 0) * 2 >= size
    flood = any(row.get("syn_recv") for row in facts.get("listeners") or [])
    if summary or not (pressure or flood):
        return None
    wait = counted + RATE_WINDOW - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    with entered(netns, root):
        later = read_counters(root, net)
    seconds = time.monotonic() - counted
    out = {"window_s": round(seconds, 3)}
    for name in RATE_COUNTERS:
        before, after = counters.get(name), later.get(name)
        out[name] = round((after - before) / seconds, 1) if before is not None and after is not None else None
    return out


def _owner_note(processes, privileged, info):
    if not processes:
        return {"visibility": "not requested", "complete": None}
    note = "all processes" if privileged else "only processes of uid %d (run as root to see every owner)" % os.geteuid()
    return {"visibility": note, "complete": info["complete"], "processes_scanned": info["processes_scanned"],
            "processes_denied": info["processes_denied"], "fds_read": info["fds_read"]}
