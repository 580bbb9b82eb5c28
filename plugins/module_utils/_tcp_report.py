# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Aggregate the socket table into the ``tcp`` facts document, and orchestrate one collection.

Aggregation keys are raw values (16 address bytes, int ports); text is made only for the entries that
end up in a top-N list. IPv4-mapped IPv6 peers are merged into their IPv4 address at that point.

"Inbound" means the socket's local port is a port some socket of the same family listens on (its peer's
port is then a client's ephemeral port and is aggregated away as ``port: null``); every other socket is
"outbound" and keeps its peer's port.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import operator
import os
import socket
import time

from ansible_collections.linuxnet.tcp.plugins.module_utils._kstats import (
    read_conntrack,
    read_counters,
    read_port_range,
)
from ansible_collections.linuxnet.tcp.plugins.module_utils._netns import entered, is_initial
from ansible_collections.linuxnet.tcp.plugins.module_utils._owners import find_owners, netns_link
from ansible_collections.linuxnet.tcp.plugins.module_utils._sockets import (
    AF_INET,
    AF_INET6,
    ALL_STATES,
    CLOSE_WAIT,
    FAMILY_SLOT,
    LISTEN,
    LISTEN_BIT,
    STATE_NAMES,
    TIME_WAIT,
    CollectError,
    NetlinkBackend,
    NetlinkRefused,
    ProcBackend,
    states_mask,
)

STATE_ORDER = tuple(name for name in STATE_NAMES if name)
_MAPPED = b"\0" * 10 + b"\xff\xff"
SUMMARY_LIST_CAP = 5


def address_text(slot, raw):
    """Printable address for a raw key; IPv4-mapped IPv6 becomes plain IPv4."""
    if slot == 0:
        return socket.inet_ntop(AF_INET, raw[:4])
    if raw[:12] == _MAPPED:
        return socket.inet_ntop(AF_INET, raw[12:16])
    return socket.inet_ntop(AF_INET6, raw)


_DST = operator.itemgetter(4)
_SPORT = operator.itemgetter(1)
_STATE = operator.itemgetter(0)
_DEST_KEY = operator.itemgetter(3, 4, 2)  # src, dst, dport


class Tally:
    """Running aggregates over record batches (see _sockets for the record shape).

    Counting goes through collections.Counter fed by operator.itemgetter, so the per-socket work runs in C;
    only outbound sockets (ephemeral-port use) and TIME_WAIT / CLOSE_WAIT sockets get Python-level work.
    """

    def __init__(self, port_range=None):
        self.counts = [0] * 32
        self.listen_ports = {AF_INET: set(), AF_INET6: set()}
        self.listeners = []
        # peers[slot][state]: dst -> n; lports[state]: sport -> n
        self.peers = tuple(tuple(collections.Counter() for _state in range(12)) for _slot in range(2))
        self.lports = tuple(collections.Counter() for _state in range(12))
        self.tw_remote = collections.Counter()  # (slot, dst, dport or None) -> n
        self.tw_local = collections.Counter()  # sport -> n
        self.close_wait = []
        self.dest = (collections.Counter(), collections.Counter())  # per slot: (src, dst, dport) -> n
        self.port_range = port_range
        self._outbound = {}  # family -> 65536-byte table: 1 for an ephemeral local port nobody listens on

    def add_listeners(self, family, records):
        ports = self.listen_ports[family]
        slot = FAMILY_SLOT[family]
        self._outbound.pop(family, None)
        for rec in records:
            ports.add(rec[1])
            self.lports[LISTEN][rec[1]] += 1
            self.listeners.append((slot, rec))

    def add(self, family, batch):
        """Fold one batch of non-LISTEN records of ``family`` into the aggregates."""
        slot = FAMILY_SLOT[family]
        seen = set(map(_STATE, batch))
        peers = self.peers[slot]
        for state in seen:
            # Batches are usually of one state (the kernel dumps hash buckets in order); a mixed batch is
            # split per state so the counters keep plain keys (no tuple per socket).
            part = batch if len(seen) == 1 else [rec for rec in batch if rec[0] == state]
            peers[state].update(map(_DST, part))
            self.lports[state].update(map(_SPORT, part))
        listen = self.listen_ports[family]
        if self.port_range:
            # Each outbound socket holds one local port towards (src, dst, dport): the pool that runs
            # dry in port exhaustion (__inet_hash_connect() in net/ipv4/inet_hashtables.c). Inbound sockets
            # (local port is a listening port) use no ephemeral port. Selected in C: a port lookup table
            # and itertools.compress, no Python code per socket.
            outbound = self._outbound_table(family)
            self.dest[slot].update(itertools.compress(map(_DEST_KEY, batch), map(outbound.__getitem__, map(_SPORT, batch))))
        if TIME_WAIT in seen:
            tw_remote = self.tw_remote
            tw_local = self.tw_local
            for rec in batch:
                if rec[0] == TIME_WAIT:
                    tw_remote[(slot, rec[4], None if rec[1] in listen else rec[2])] += 1
                    tw_local[rec[1]] += 1
        if CLOSE_WAIT in seen:
            self.close_wait.extend((rec[8], rec[7], slot, rec[4], None if rec[1] in listen else rec[2])
                                   for rec in batch if rec[0] == CLOSE_WAIT)

    def _outbound_table(self, family):
        table = self._outbound.get(family)
        if table is None:
            lo, hi = self.port_range
            table = bytearray(65536)
            if 0 <= lo <= hi <= 65535:
                table[lo:hi + 1] = b"\x01" * (hi - lo + 1)
            for port in self.listen_ports[family]:
                table[port] = 0
            table = self._outbound[family] = bytes(table)
        return table

    # ----- report -----------------------------------------------------------------------------------

    def state_counts(self):
        counts = self.counts
        out = {name: counts[num] + counts[16 + num] for num, name in enumerate(STATE_NAMES) if name}
        out["total"] = sum(counts[1:12]) + sum(counts[17:28])
        out["by_family"] = {"ipv4": sum(counts[1:12]), "ipv6": sum(counts[17:28])}
        return out

    def report(self, top=10, owners=None, summary=False, wanted=ALL_STATES):
        owners = owners or {}
        cap = min(top, SUMMARY_LIST_CAP) if summary else top
        states = self.state_counts()
        return {
            "states": states,
            "time_wait": self._time_wait(states["TIME_WAIT"], cap),
            "close_wait": self._close_wait(states["CLOSE_WAIT"], cap, owners, summary),
            "peers": self._peers(cap, summary),
            "local_ports": self._local_ports(cap, summary),
            "listeners": self._listeners(owners, cap if summary else None) if wanted & LISTEN_BIT else [],
            "ephemeral_ports": self._ephemeral(),
        }

    def _time_wait(self, total, cap):
        remotes = {}
        for (slot, raw, port), count in self.tw_remote.items():
            key = (address_text(slot, raw), port)
            remotes[key] = remotes.get(key, 0) + count
        return {
            "total": total,
            "by_remote": [{"address": a, "port": p, "count": c} for (a, p), c in _top(remotes, cap)],
            "by_local_port": [{"port": p, "count": c} for p, c in _top(self.tw_local, cap)],
        }

    def _close_wait(self, total, cap, owners, summary):
        procs = {}
        unowned = 0
        for inode, _uid, slot, raw, port in self.close_wait:
            holders = owners.get(inode)
            if not holders:
                unowned += 1
                continue
            holder = holders[0]
            entry = procs.get(holder["pid"])
            if entry is None:
                entry = procs[holder["pid"]] = dict(holder, count=0, remotes={})
            entry["count"] += 1
            key = (address_text(slot, raw), port)
            entry["remotes"][key] = entry["remotes"].get(key, 0) + 1
        ranked = sorted(procs.values(), key=lambda e: (-e["count"], e["pid"]))[:cap]
        remote_cap = 1 if summary else cap
        for entry in ranked:
            entry["remotes"] = [{"address": a, "port": p, "count": c} for (a, p), c in _top(entry["remotes"], remote_cap)]
        return {"total": total, "by_process": ranked, "unowned": unowned}

    def _peers(self, cap, summary):
        if not cap:
            return []
        by_text = {}
        for slot, tables in enumerate(self.peers):
            for state, table in enumerate(tables):
                for raw, count in table.items():
                    text = address_text(slot, raw)  # IPv4-mapped peers merge with their IPv4 address
                    row = by_text.get(text)
                    if row is None:
                        row = by_text[text] = [0] * 12
                    row[state] += count
        rows = heapq.nsmallest(cap, by_text.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
        return [{"address": addr, "total": sum(row), "states": _state_dict(row, summary)} for addr, row in rows]

    def _local_ports(self, cap, summary):
        if not cap:
            return []
        totals = collections.Counter()
        for table in self.lports:
            totals.update(table)
        best = heapq.nsmallest(cap, totals.items(), key=lambda kv: (-kv[1], kv[0]))
        rows = []
        for port, total in best:
            row = [table.get(port, 0) for table in self.lports]
            rows.append({"port": port, "total": total, "states": _state_dict(row, summary)})
        return rows

    def _listeners(self, owners, cap):
        rows = []
        for slot, rec in self.listeners:
            _state, sport, _dport, src, _dst, rqueue, wqueue, _uid, inode = rec
            holders = owners.get(inode) or [{"pid": None, "name": None, "user": None}]
            rows.append({"address": address_text(slot, src), "port": sport, "queue": rqueue, "backlog": wqueue,
                         "pid": holders[0]["pid"], "name": holders[0]["name"], "user": holders[0]["user"]})

        def fill(row):
            return row["queue"] / row["backlog"] if row["backlog"] else float(row["queue"] > 0)

        rows.sort(key=lambda r: (-fill(r), -r["queue"], r["port"], r["address"]))
        return rows if cap is None else rows[:cap]

    def _ephemeral(self):
        if not self.port_range:
            return {"range": None, "size": None, "busiest": {"address": None, "port": None, "in_use": None,
                                                             "utilisation": None}}
        lo, hi = self.port_range
        size = max(hi - lo + 1, 0)
        busiest = {"address": None, "port": None, "in_use": 0, "utilisation": 0.0}
        candidates = [(n, slot, key) for slot in (0, 1) for key, n in self.dest[slot].most_common(1)]
        if candidates:
            in_use, slot, (_src, raw, port) = max(candidates, key=operator.itemgetter(0))
            busiest = {"address": address_text(slot, raw), "port": port, "in_use": in_use,
                       "utilisation": round(in_use / size, 4) if size else None}
        return {"range": [lo, hi], "size": size, "busiest": busiest}


def _top(table, cap):
    """Largest ``cap`` items of a count dict, ties in key order (None sorts first)."""
    return heapq.nsmallest(cap, table.items(), key=lambda kv: (-kv[1], _sort_key(kv[0]))) if cap else []


def _sort_key(key):
    if isinstance(key, tuple):
        return tuple((0, "") if k is None else (1, k) for k in key)
    return key


def _state_dict(row, summary):
    return {name: row[num] for num, name in enumerate(STATE_NAMES) if name and (row[num] or not summary)}


def _dump(backend, detail, port_range):
    """Read the socket table with ``backend`` into a new Tally."""
    tally = Tally(port_range)
    # LISTEN sockets are always read in detail: they are few, and they tell inbound from outbound.
    for family in (AF_INET, AF_INET6):
        tally.add_listeners(family, backend.listeners(family, tally.counts))
    rest = ALL_STATES & ~LISTEN_BIT
    for family in (AF_INET, AF_INET6):
        for batch in backend.scan(family, rest, detail, tally.counts):
            tally.add(family, batch)
    return tally


def gather(backend="auto", states=None, top=10, processes=True, netns=None, summary=False, root="/"):
    """Collect the ``tcp`` facts. Raises CollectError, KstatsError or NetnsError with a clear message."""
    started = time.monotonic()
    wanted = ALL_STATES if states is None else states_mask(STATE_ORDER.index(s) + 1 for s in states)
    fallback = None
    initial = is_initial(root, netns)
    with entered(netns, root):
        port_range = read_port_range(root)
        counters = read_counters(root)
        conntrack = read_conntrack(root)
        if backend == "proc":
            used = ProcBackend(root)
            tally = _dump(used, wanted, port_range)
        else:
            used = NetlinkBackend()
            try:
                tally = _dump(used, wanted, port_range)
            except NetlinkRefused as exc:
                if backend == "netlink":
                    raise
                fallback = str(exc)
                used = ProcBackend(root)
                tally = _dump(used, wanted, port_range)
    privileged = os.geteuid() == 0
    owners = {}
    owner_info = None
    if processes:
        # Required: CLOSE_WAIT sockets (the leak to explain) and listeners with a non-empty accept queue
        # (who is not accepting). Other listeners are attributed while the scan stays cheap.
        inodes = [row[0] for row in tally.close_wait]
        optional = []
        if wanted & LISTEN_BIT:
            for _slot, rec in tally.listeners:
                (inodes if rec[5] else optional).append(rec[8])
        uids = {rec[7] for _slot, rec in tally.listeners} | {row[1] for row in tally.close_wait}
        owners, owner_info = find_owners(inodes, root, netns_link(root, netns), uids, optional)
    facts = tally.report(top, owners, summary, wanted)
    facts["counters"] = counters
    facts["conntrack"] = conntrack
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


def _owner_note(processes, privileged, info):
    if not processes:
        return {"visibility": "not requested", "complete": None}
    note = "all processes" if privileged else "only processes of uid %d (run as root to see every owner)" % os.geteuid()
    return {"visibility": note, "complete": info["complete"], "processes_scanned": info["processes_scanned"],
            "processes_denied": info["processes_denied"], "fds_read": info["fds_read"]}


__all__ = ["Tally", "gather", "address_text", "CollectError"]
