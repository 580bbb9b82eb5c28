# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Aggregate the socket table into the ``tcp`` facts document, and orchestrate one collection.

Aggregation keys are raw bytes as sock_diag carries them (addresses, ports); text is made only for the
entries that end up in a top-N list. IPv4-mapped IPv6 peers are merged into their IPv4 address at that point.

"Inbound" means the socket's local port is a port some socket of the same family listens on (its peer's
port is then a client's ephemeral port and is aggregated away as ``port: null``; CLOSE_WAIT remotes keep
the listening port as ``local_port``); every other socket is "outbound" and keeps its peer's port. TIME_WAIT is
reported both ways: server side (inbound: this host closed a connection it accepted) and client side (outbound).

A local port in the ephemeral range is held towards (src, dst, dport) by every socket using it except a
TIME_WAIT socket the kernel would hand to a new connect() (tcp_twsk_unique() in net/ipv4/tcp_ipv4.c): one with
timestamps (tcp_timestamps), with tcp_tw_reuse 1, or 2 and a loopback address at either end, and older than
tcp_tw_reuse_delay (Linux 6.15+; one second before). A socket's age comes from the time left on its timer.
"""

import array
import collections
import heapq
import itertools
import operator
import os
import socket
import struct
import sys
import time

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.acceptors import rank as rank_holders
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.counters import (
    SOCKET_SYSCTLS,
    read_conntrack,
    read_counters,
    read_port_range,
    read_socket_sysctls,
    read_sysctls,
)
from ansible_collections.linuxnet.tcp.plugins.module_utils._host.netns import entered, is_initial
from ansible_collections.linuxnet.tcp.plugins.module_utils._host.processes import find_owners, netns_link, program_of
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.sockets import (
    AF_INET,
    AF_INET6,
    ALL_STATES,
    CLOSE_WAIT,
    EXPIRES_OFFSET,
    FAMILY_SLOT,
    LISTEN,
    LISTEN_BIT,
    STATE_NAMES,
    SYN_RECV,
    TIME_WAIT,
    TIMEWAIT_MS,
    CollectError,
    NetlinkBackend,
    NetlinkRefused,
    ProcBackend,
    dump_plan,
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


_SPORT = operator.itemgetter(1)
_STATE = operator.itemgetter(0)
_FIRST = operator.itemgetter(0)
_DST16 = operator.itemgetter(slice(18, 34))  # dst out of a sockid key (below)
_LITTLE = sys.byteorder == "little"
_U16BE = struct.Struct(">H")
_OWNER = struct.Struct("=II")  # uid, inode at payload offset 64
INBOUND, EPHEMERAL, FIXED = 0, 1, 2
_KEYS = {}


def _keys_struct(stride):
    """dport, src and dst of a message (34 contiguous bytes of inet_diag_sockid at message offset 22)."""
    found = _KEYS.get(stride)
    if found is None:
        found = _KEYS[stride] = struct.Struct("=22x34s%dx" % (stride - 56))
    return found


def _mapped_lanes(data, size, stride):
    """One byte per message, 1 where the peer is IPv4-mapped (dst ``::ffff:a.b.c.d``), b"" if none is.

    Each dst byte at message offsets 40..51 is gathered for all messages by one extended slice; these
    columns, read as big integers, are combined lane by lane (one lane, one byte, per message): dst bytes
    0-9 zero and bytes 10-11 0xff. IPv4 messages never match (their dst bytes 4-15 are zero).
    """
    high = data[50:size:stride]
    if 255 not in high:
        return b""
    count = len(high)
    zero = 0
    for index in range(10):
        zero |= int.from_bytes(data[40 + index:size:stride], "little")
    lanes = (int.from_bytes(zero.to_bytes(count, "little").translate(_ZERO_LANES), "little")
             & int.from_bytes(high.translate(_one(255)), "little")
             & int.from_bytes(data[51:size:stride].translate(_one(255)), "little"))
    return lanes.to_bytes(count, "little")


_ZERO_LANES = bytes([1] + [0] * 255)  # translate: 0 -> 1, anything else -> 0
_ONES = {}


def _one(value):
    """bytes.translate table: ``value`` -> 1, any other byte -> 0."""
    table = _ONES.get(value)
    if table is None:
        table = _ONES[value] = bytes(256)[:value] + b"\1" + bytes(255 - value)
    return table


def _both(first, second):
    """Lane-wise AND of two 0/1 selectors of the same length."""
    return (int.from_bytes(first, "little") & int.from_bytes(second, "little")).to_bytes(len(first), "little")


def _column_u16(column):
    """Host ints from a strided memoryview of big-endian u16 fields (ports)."""
    values = array.array("H", column.tobytes())
    if _LITTLE:
        values.byteswap()
    return values.tolist()


def sockid_key(dport, src, dst):
    """The aggregation key of an outbound socket from record fields (as sock_diag carries it)."""
    return _U16BE.pack(dport) + src + dst


class Tally:
    """Running aggregates over the socket table, fed by uniform blocks of sock_diag messages (``block``) or by
    record batches from /proc (``add``); both give the same aggregates.

    Per family slot and state, sockets are counted by key, with no object per socket kept: outbound sockets
    by their 34 bytes of dport, src and dst (``ephemeral`` when the local port lies in the ephemeral range,
    ``fixed`` otherwise), inbound sockets by dst (their remote port is a client's ephemeral port). Local
    ports are counted per state. The per-socket work is C-level: extended slices and casts of the received
    buffer, struct.iter_unpack, map, itertools.compress and collections.Counter. Only CLOSE_WAIT sockets
    (few, and whose owners are wanted) are read one by one.
    """

    def __init__(self, port_range=None, detail=ALL_STATES, settings=None):
        self.counts = [0] * 32
        # Per-namespace sysctls (_kstats.read_socket_sysctls); without them every TIME_WAIT port counts as held.
        self.settings = dict(settings or {})
        delay = self.settings.get("tcp_tw_reuse_delay") or 1000
        # A TIME_WAIT socket whose timer has more than this left (ms) entered TIME_WAIT less than the reuse delay
        # ago: tcp_twsk_unique() refuses to reuse it yet. None when no setting was read.
        self.young_after = TIMEWAIT_MS - delay if self.settings.get("tcp_tw_reuse") is not None else None
        self.tw_young = (collections.Counter(), collections.Counter())  # [slot]: ephemeral TIME_WAIT keys, young
        self.detail = detail
        self.listen_ports = {AF_INET: set(), AF_INET6: set()}
        self.listeners = []
        self.lports = tuple(collections.Counter() for _state in range(12))  # state -> {sport: n}
        # [slot][state] -> Counter
        self.ephemeral = tuple(tuple(collections.Counter() for _state in range(12)) for _slot in range(2))
        self.fixed = tuple(tuple(collections.Counter() for _state in range(12)) for _slot in range(2))
        self.inbound = tuple(tuple(collections.Counter() for _state in range(12)) for _slot in range(2))
        self.close_wait = []  # (inode, uid, slot, dst, remote port or None, local port or None)
        self.port_range = port_range
        self._classes = {}  # family -> 65536-byte table: INBOUND, EPHEMERAL or FIXED per local port

    def add_listeners(self, family, records):
        ports = self.listen_ports[family]
        slot = FAMILY_SLOT[family]
        self._classes.pop(family, None)
        for rec in records:
            ports.add(rec[1])
            self.lports[LISTEN][rec[1]] += 1
            self.listeners.append((slot, rec))

    def _class_table(self, family):
        """Each socket with a listening local port is inbound (it uses no ephemeral port); any other holds
        one local port towards (src, dst, dport), the pool that runs dry in port exhaustion
        (__inet_hash_connect() in net/ipv4/inet_hashtables.c) when it lies in the ephemeral range."""
        table = self._classes.get(family)
        if table is None:
            table = bytearray([FIXED]) * 65536
            if self.port_range:
                lo, hi = self.port_range
                if 0 <= lo <= hi <= 65535:
                    table[lo:hi + 1] = bytes([EPHEMERAL]) * (hi - lo + 1)
            for port in self.listen_ports[family]:
                table[port] = INBOUND
            table = self._classes[family] = bytes(table)
        return table

    def block(self, data, size, stride):
        """Fold ``size // stride`` sock_diag messages of ``stride`` bytes each (non-LISTEN, any family).

        Messages are selected by family, state and class with byte columns (one extended slice each)
        turned into 0/1 selectors by bytes.translate, and combined as big integers, all in C.
        """
        families = data[16:size:stride]
        states = data[17:size:stride]
        count = len(families)
        one_family = families.count(families[0]) == count
        one_state = states.count(states[0]) == count
        view = memoryview(data)[:size]
        try:
            keys = sports = mapped = None
            for family in (families[0],) if one_family else set(families):
                slot = FAMILY_SLOT.get(family)
                if slot is None:
                    continue  # a family this code does not know: never guess
                for state in (states[0],) if one_state else set(states):
                    if not 0 < state < 12:
                        continue  # a state this code does not know (a newer kernel): never guess
                    if one_family and one_state:
                        select = None
                        num = count
                    else:
                        select = (states.translate(_one(state)) if one_family else
                                  families.translate(_one(family)) if one_state else
                                  _both(families.translate(_one(family)), states.translate(_one(state))))
                        num = select.count(1)
                        if not num:
                            continue
                    if slot:
                        if mapped is None:
                            mapped = _mapped_lanes(data, size, stride)
                        if mapped:
                            # IPv4-mapped peers (::ffff:a.b.c.d) count as IPv4.
                            four = (_both(mapped, select) if select else mapped).count(1)
                            self.counts[state] += four
                            num -= four
                    self.counts[slot * 16 + state] += num
                    if not self.detail & (1 << state):
                        continue
                    if sports is None:
                        words = view.cast("H")
                        sports = _column_u16(words[10::stride >> 1])
                        words.release()
                    if select is None:
                        self._fold(family, state, sports, map(_FIRST, _keys_struct(stride).iter_unpack(view)))
                    else:
                        if keys is None:
                            keys = list(map(_FIRST, _keys_struct(stride).iter_unpack(view)))
                        self._fold(family, state, list(itertools.compress(sports, select)), itertools.compress(keys, select))
                    if state == CLOSE_WAIT:
                        self._close_wait_rows(family, data, count, stride, select)
                    elif state == TIME_WAIT and self.young_after is not None:
                        if keys is None:
                            keys = list(map(_FIRST, _keys_struct(stride).iter_unpack(view)))
                        self._young_block(family, view, stride, select, sports, keys)
        finally:
            view.release()

    def _young_block(self, family, view, stride, select, sports, keys):
        """Count the TIME_WAIT messages of a block (``select``: 0/1 per message, None for all) still younger than
        the reuse delay, from the time left on their timers (idiag_expires)."""
        words = view.cast("I")
        try:
            expires = words[EXPIRES_OFFSET >> 2::stride >> 2].tolist()
        finally:
            words.release()
        young = bytes(map(self.young_after.__lt__, expires))
        if select is not None:
            young = _both(young, select)
        if young.count(1):
            self._fold_young(family, list(itertools.compress(sports, young)), list(itertools.compress(keys, young)))

    def _fold_young(self, family, sports, keys):
        """Count young TIME_WAIT sockets by key, those holding an ephemeral port only."""
        slot = FAMILY_SLOT[family]
        kind = self._uniform_class(family, sports)
        if kind is not None:
            if kind == EPHEMERAL:
                self.tw_young[slot].update(keys)
            return
        classes = bytes(map(self._class_table(family).__getitem__, sports))
        self.tw_young[slot].update(itertools.compress(keys, classes.translate(_one(EPHEMERAL))))

    def add(self, family, batch):
        """Fold one batch of non-LISTEN records of ``family`` (counted already by the backend)."""
        seen = set(map(_STATE, batch))
        for state in seen:
            part = batch if len(seen) == 1 else [rec for rec in batch if rec[0] == state]
            self._fold(family, state, list(map(_SPORT, part)), [sockid_key(rec[2], rec[3], rec[4]) for rec in part])
            if state == TIME_WAIT and self.young_after is not None:
                young = [rec for rec in part if len(rec) > 9 and rec[9] > self.young_after]
                if young:
                    self._fold_young(family, [rec[1] for rec in young], [sockid_key(rec[2], rec[3], rec[4]) for rec in young])
            if state == CLOSE_WAIT:
                listen = self.listen_ports[family]
                slot = FAMILY_SLOT[family]
                for rec in part:
                    inbound = rec[1] in listen
                    self.close_wait.append((rec[8], rec[7], slot, rec[4], None if inbound else rec[2],
                                            rec[1] if inbound else None))

    def _fold(self, family, state, sports, keys):
        """Count sockets of one family and state by local port and by key (see the class docstring)."""
        slot = FAMILY_SLOT[family]
        self.lports[state].update(sports)
        if not sports:
            return
        kind = self._uniform_class(family, sports)
        if kind is not None:
            self._by_class(slot, state, kind, keys)
            return
        classes = bytes(map(self._class_table(family).__getitem__, sports))
        keys = list(keys)
        for kind in (INBOUND, EPHEMERAL, FIXED):
            if classes.count(kind):
                self._by_class(slot, state, kind, itertools.compress(keys, classes.translate(_one(kind))))

    def _by_class(self, slot, state, kind, keys):
        if kind == INBOUND:
            self.inbound[slot][state].update(map(_DST16, keys))
        elif kind == EPHEMERAL:
            self.ephemeral[slot][state].update(keys)
        else:
            self.fixed[slot][state].update(keys)

    def _uniform_class(self, family, sports):
        """The class all these local ports share, found from their min and max; None when they differ."""
        low, high = min(sports), max(sports)
        listen = self.listen_ports[family]
        if any(low <= port <= high for port in listen):
            return INBOUND if low == high else None
        if self.port_range and self.port_range[0] <= low and high <= self.port_range[1]:
            return EPHEMERAL
        if not self.port_range or high < self.port_range[0] or low > self.port_range[1]:
            return FIXED
        return None

    def _close_wait_rows(self, family, data, count, stride, select):
        """One row per CLOSE_WAIT message of the block's ``count`` messages (``select``: 0/1 per message, None for all).

        ``data`` may be a receive buffer longer than the block: only the first ``count`` messages are the dump's.
        """
        listen = self.listen_ports[family]
        slot = FAMILY_SLOT[family]
        index = 0
        while index < count:
            if select is not None:
                index = select.find(1, index)
                if index < 0:
                    return
            off = index * stride
            sport, dport = struct.unpack_from(">HH", data, off + 20)
            uid, inode = _OWNER.unpack_from(data, off + 80)
            inbound = sport in listen
            self.close_wait.append((inode, uid, slot, bytes(data[off + 40:off + 56]), None if inbound else dport,
                                    sport if inbound else None))
            index += 1

    # ----- report -----------------------------------------------------------------------------------

    def state_counts(self):
        counts = self.counts
        out = {name: counts[num] + counts[16 + num] for num, name in enumerate(STATE_NAMES) if name}
        out["total"] = sum(counts[1:12]) + sum(counts[17:28])
        out["by_family"] = {"ipv4": sum(counts[1:12]), "ipv6": sum(counts[17:28])}
        return out

    def report(self, top=10, owners=None, summary=False, wanted=ALL_STATES, acceptors=None, root="/"):
        owners = owners or {}
        cap = min(top, SUMMARY_LIST_CAP) if summary else top
        states = self.state_counts()
        return {
            "states": states,
            "time_wait": self._time_wait(states["TIME_WAIT"], cap),
            "close_wait": self._close_wait(states["CLOSE_WAIT"], cap, owners, summary, root),
            "peers": self._peers(cap, summary),
            "local_ports": self._local_ports(cap, summary),
            "listeners": self._listeners(owners, cap if summary else None, acceptors) if wanted & LISTEN_BIT else [],
            "ephemeral_ports": self._ephemeral(),
        }

    def _time_wait(self, total, cap):
        remotes = {}
        clients = {}
        for slot in (0, 1):
            for table in (self.ephemeral[slot][TIME_WAIT], self.fixed[slot][TIME_WAIT]):
                for key, count in table.items():
                    remote = (address_text(slot, key[18:]), _U16BE.unpack_from(key)[0])
                    remotes[remote] = remotes.get(remote, 0) + count
            for raw, count in self.inbound[slot][TIME_WAIT].items():
                text = address_text(slot, raw)
                remotes[(text, None)] = remotes.get((text, None), 0) + count
                clients[text] = clients.get(text, 0) + count
        out = {
            "total": total,
            "by_remote": [{"address": a, "port": p, "count": c} for (a, p), c in _top(remotes, cap)],
            "by_local_port": [{"port": p, "count": c} for p, c in _top_counts(self.lports[TIME_WAIT], cap)],
            "server_side": None,
            "client_side": None,
        }
        if not self.detail & (1 << TIME_WAIT):
            return out  # counted, not read: the sides are unknown
        # Server side: the local port is a listening port (this host closed connections it had accepted). Each
        # costs a minisocket and no port. Client side: every other TIME_WAIT socket, which holds its local port
        # towards its destination.
        server = sum(clients.values())
        listening = {}
        for slot, rec in self.listeners:
            listening.setdefault(rec[1], address_text(slot, rec[3]))
        ports = {port: count for port, count in self.lports[TIME_WAIT].items() if port in listening}
        out["server_side"] = {
            "total": server,
            "by_local_port": [{"address": listening[p], "port": p, "count": c} for p, c in _top_counts(ports, cap)],
            "by_client": [{"address": a, "count": c} for a, c in _top(clients, cap)],
        }
        out["client_side"] = {
            "total": total - server,
            "by_remote": [{"address": a, "port": p, "count": c} for (a, p), c in _top(
                {key: count for key, count in remotes.items() if key[1] is not None}, cap)],
        }
        return out

    def _close_wait(self, total, cap, owners, summary, root="/"):
        procs = {}
        unowned = 0
        for inode, _uid, slot, raw, port, local_port in self.close_wait:
            holders = owners.get(inode)
            if not holders:
                unowned += 1
                continue
            holder = holders[0]
            entry = procs.get(holder["pid"])
            if entry is None:
                entry = procs[holder["pid"]] = dict(holder, count=0, remotes={})
            entry["count"] += 1
            # Inbound sockets: grouped by (address, listening port); their remote ports are clients' ephemeral ports.
            key = (address_text(slot, raw), port, local_port)
            entry["remotes"][key] = entry["remotes"].get(key, 0) + 1
        # Per program: the processes of one executable with one name in one cgroup for one user (the workers of a
        # prefork server) add up, so that a leak spread thinly over many workers is seen whole. The name counts too:
        # processes of one interpreter that name themselves differently are different programs.
        programs = {}
        for pid in sorted(procs):
            entry = procs[pid]
            exe, cgroup = program_of(root, pid)
            key = (exe, entry["name"], cgroup, entry["user"])
            program = programs.get(key)
            if program is None:
                program = programs[key] = {"name": entry["name"], "exe": exe, "cgroup": cgroup, "user": entry["user"],
                                           "count": 0, "pids": [], "remotes": {}}
            program["count"] += entry["count"]
            program["pids"].append(pid)
            for rkey, count in entry["remotes"].items():
                program["remotes"][rkey] = program["remotes"].get(rkey, 0) + count
        remote_cap = 1 if summary else cap
        ranked = sorted(procs.values(), key=lambda e: (-e["count"], e["pid"]))[:cap]
        by_program = sorted(programs.values(), key=lambda e: (-e["count"], e["pids"][0]))[:cap]
        for entry in ranked + by_program:
            entry["remotes"] = [{"address": a, "port": p, "local_port": lp, "count": c}
                                for (a, p, lp), c in _top(entry["remotes"], remote_cap)]
        for program in by_program:
            program["processes"] = len(program["pids"])
            program["pids"] = program["pids"][:20]
        return {"total": total, "by_process": ranked, "by_program": by_program, "unowned": unowned}

    def _peers(self, cap, summary):
        if not cap:
            return []
        by_text = {}

        def add(slot, state, raw, count):
            text = address_text(slot, raw)  # IPv4-mapped peers merge with their IPv4 address
            row = by_text.get(text)
            if row is None:
                row = by_text[text] = [0] * 12
            row[state] += count

        for slot in (0, 1):
            for state in range(12):
                for table in (self.ephemeral[slot][state], self.fixed[slot][state]):
                    for key, count in table.items():
                        add(slot, state, key[18:], count)
                for raw, count in self.inbound[slot][state].items():
                    add(slot, state, raw, count)
        rows = heapq.nsmallest(cap, by_text.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
        return [{"address": addr, "total": sum(row), "states": _state_dict(row, summary)} for addr, row in rows]

    def _local_ports(self, cap, summary):
        if not cap:
            return []
        tables = sorted(self.lports, key=len)
        totals = dict(tables[-1])  # the largest table copied in C, the others added to it
        for table in tables[:-1]:
            for port, count in table.items():
                totals[port] = totals.get(port, 0) + count
        rows = []
        for port, total in _top_counts(totals, cap):
            row = [table.get(port, 0) for table in self.lports]
            rows.append({"port": port, "total": total, "states": _state_dict(row, summary)})
        return rows

    def _listeners(self, owners, cap, acceptors=None):
        """Listener rows. ``acceptors``: {inode: (ranked holders, total)} for the listeners in trouble (see
        _acceptors.rank): the row names the first, the one that should be accepting."""
        acceptors = acceptors or {}
        settings = self.settings
        rows = []
        for slot, rec in self.listeners:
            _state, sport, _dport, src, _dst, rqueue, wqueue, _uid, inode = rec[:9]
            ranked, held_by = acceptors.get(inode) or (None, None)
            holders = ranked or owners.get(inode) or [{"pid": None, "name": None, "user": None}]
            row = {"address": address_text(slot, src), "port": sport, "queue": rqueue, "backlog": wqueue,
                   "pid": holders[0]["pid"], "name": holders[0]["name"], "user": holders[0]["user"],
                   "syn_recv": self.lports[SYN_RECV].get(sport, 0)}
            row.update(_syn_limit(wqueue, settings))
            if ranked:
                row["holders"] = [{key: holder.get(key) for key in ("pid", "name", "user", "state", "waits", "ppid")}
                                  for holder in ranked]
                row["holders_total"] = held_by
            rows.append(row)

        def fill(row):
            return row["queue"] / row["backlog"] if row["backlog"] else float(row["queue"] > 0)

        rows.sort(key=lambda r: (-fill(r), -r["queue"], -r["syn_recv"], r["port"], r["address"]))
        return rows if cap is None else rows[:cap]

    def _reusable(self, slot, key):
        """Whether tcp_twsk_unique() may hand a TIME_WAIT socket of ``key`` (once old enough) to a new connect():
        timestamps on, and tcp_tw_reuse 1, or 2 with a loopback address at either end."""
        settings = self.settings
        if not settings.get("tcp_timestamps"):
            return False
        mode = settings.get("tcp_tw_reuse")
        if mode == 1:
            return True
        return mode == 2 and (_loopback(slot, key[2:18]) or _loopback(slot, key[18:34]))

    def _ephemeral(self):
        empty = {"address": None, "port": None, "in_use": None, "utilisation": None}
        if not self.port_range:
            return {"range": None, "size": None, "busiest": dict(empty), "crowded": dict(empty),
                    "reuse": self._reuse_note()}
        lo, hi = self.port_range
        size = max(hi - lo + 1, 0)
        best = crowded = None
        for slot in (0, 1):
            # Sockets of every state towards one (src, dst, dport) share the pool.
            pools = {}
            for table in self.ephemeral[slot]:
                for key, count in table.items():
                    pools[key] = pools.get(key, 0) + count
            waiting = self.ephemeral[slot][TIME_WAIT]
            young = self.tw_young[slot]
            judged = self.young_after is not None
            for key, count in pools.items():
                tw = waiting.get(key, 0)
                held_tw = young.get(key, 0) if tw and judged and self._reusable(slot, key) else tw
                held = count - tw + held_tw
                # Most ports held first; ties go to the lowest (family, dst, dport, src), whatever the order in
                # which the dumps delivered them.
                rank = (-held, slot, key[18:], key[:18])
                if best is None or rank < best[0]:
                    best = (rank, slot, key, count, tw, held_tw)
                rank = (-count, slot, key[18:], key[:18])
                if crowded is None or rank < crowded[0]:
                    crowded = (rank, slot, key, count, tw, held_tw)
        out = {"range": [lo, hi], "size": size, "reuse": self._reuse_note()}
        for name, found in (("busiest", best), ("crowded", crowded)):
            if found is None:
                out[name] = {"address": None, "port": None, "in_use": 0, "utilisation": 0.0, "sockets": 0,
                             "connections": 0, "time_wait": 0, "time_wait_held": 0, "time_wait_reusable": 0}
                continue
            _rank, slot, key, count, tw, held_tw = found
            held = count - tw + held_tw
            out[name] = {"address": address_text(slot, key[18:]), "port": _U16BE.unpack_from(key)[0], "in_use": held,
                         "utilisation": round(held / size, 4) if size else None, "sockets": count,
                         "connections": count - tw, "time_wait": tw, "time_wait_held": held_tw,
                         "time_wait_reusable": tw - held_tw}
        return out

    def _reuse_note(self):
        """The settings that decide whether TIME_WAIT ports are reused, as read in the namespace (None: unknown)."""
        settings = self.settings
        return {"tcp_tw_reuse": settings.get("tcp_tw_reuse"), "tcp_tw_reuse_delay_ms": settings.get("tcp_tw_reuse_delay"),
                "tcp_timestamps": settings.get("tcp_timestamps"), "judged": self.young_after is not None}


def _loopback(slot, raw):
    """Whether 16 raw address bytes are a loopback address (127/8, ::1, ::ffff:127.x.y.z)."""
    if slot == 0:
        return raw[0] == 127
    return raw == _LOOPBACK6 or (raw[:12] == _MAPPED and raw[12] == 127)


_LOOPBACK6 = b"\0" * 15 + b"\1"


def _syn_limit(backlog, settings):
    """How many connection requests a listener with ``backlog`` (its sk_max_ack_backlog, already capped by
    net.core.somaxconn) keeps in SYN_RECV, and which setting bounds it (tcp_conn_request() in net/ipv4/tcp_input.c):
    the queue counts as full above the backlog (inet_csk_reqsk_queue_is_full()), then SYN cookies answer (or the SYN
    is dropped when tcp_syncookies is 0); only with cookies off, a request from a peer not proven alive is also
    dropped once the queue passes three quarters of tcp_max_syn_backlog."""
    if backlog is None:
        return {"syn_limit": None, "syn_bound": None}
    limit, bound = backlog + 1, "backlog"
    if settings.get("somaxconn") is not None and backlog >= settings["somaxconn"]:
        bound = "somaxconn"
    msb = settings.get("tcp_max_syn_backlog")
    if settings.get("tcp_syncookies") == 0 and msb is not None:
        quarter = msb - (msb >> 2) + 1
        if quarter < limit:
            limit, bound = quarter, "tcp_max_syn_backlog"
    return {"syn_limit": limit, "syn_bound": bound}


def _top(table, cap):
    """Largest ``cap`` items of a count dict, ties in key order (None sorts first)."""
    return heapq.nsmallest(cap, table.items(), key=lambda kv: (-kv[1], _sort_key(kv[0]))) if cap else []


def _top_counts(table, cap):
    """As _top for a large table with orderable keys (ports), without Python code per item.

    The smallest count that still makes the list (the floor) is found from the distinct counts, largest
    first; keys above it all qualify, and the ties at it are taken in key order.
    """
    if not cap or not table:
        return []
    values = table.values()
    need = cap
    floor = 0
    for floor in sorted(set(values), reverse=True):
        need -= operator.countOf(values, floor)
        if need <= 0:
            break
    above = sorted(itertools.compress(table.items(), map(floor.__lt__, values)), key=lambda kv: (-kv[1], kv[0]))
    ties = sorted(itertools.compress(table.keys(), map(floor.__eq__, values)))[:cap - len(above)]
    return above + [(key, floor) for key in ties]


def _sort_key(key):
    if isinstance(key, tuple):
        return tuple((0, "") if k is None else (1, k) for k in key)
    return key


def _state_dict(row, summary):
    return {name: row[num] for num, name in enumerate(STATE_NAMES) if name and (row[num] or not summary)}


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
           parts=None, table=None, sysctls=(), conntrack=True):
    """Collect the ``tcp`` facts. Raises CollectError, KstatsError or NetnsError with a clear message.

    ``idle_owners``: also attribute listeners with an empty accept queue, while the scan stays cheap (False
    where only the listeners with a queue are kept, as in the per-namespace documents). For a scan of every
    namespace (``_tcp_namespaces``): ``parts`` concurrent dumps of the table (default by CPUs; 1 there, where
    namespaces are read side by side), ``table`` the scan's one walk of /proc (``_owners.ProcessTable``) and
    ``sysctls`` names of sysctls to read while inside, returned as ``sysctl_values``; ``conntrack`` False leaves
    the conntrack counters unread (None), which the per-namespace documents do not carry.
    Safe to call from several threads: the namespace is entered by the calling thread only."""
    started = time.monotonic()
    wanted = ALL_STATES if states is None else states_mask(STATE_ORDER.index(s) + 1 for s in states)
    fallback = None
    initial = is_initial(root, netns)
    # /proc/net follows the main thread's namespace, /proc/thread-self/net the caller's (see _kstats).
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
    privileged = os.geteuid() == 0
    owners = {}
    owner_info = None
    if processes:
        # Required: CLOSE_WAIT sockets (the leak to explain) and listeners with a non-empty accept queue or with
        # connection requests in SYN_RECV (who is not accepting, which listener is flooded). Other listeners are
        # attributed while the scan stays cheap.
        inodes = [row[0] for row in tally.close_wait]
        optional = []
        if wanted & LISTEN_BIT:
            for _slot, rec in tally.listeners:
                if rec[5] or tally.lports[SYN_RECV].get(rec[1]):
                    inodes.append(rec[8])  # a queue, or connection requests: who should accept them
                elif idle_owners:
                    optional.append(rec[8])
        uids = {rec[7] for _slot, rec in tally.listeners} | {row[1] for row in tally.close_wait}
        link = netns_link(root, netns)
        owners, owner_info = find_owners(inodes, root, link, uids, optional, table=table)
    acceptors = {}
    if processes and wanted & LISTEN_BIT:
        # A listener with a queue or with connection requests: name the holder that should accept, not the first
        # one the walk met (after fork, a master and its workers hold the same socket).
        for _slot, rec in tally.listeners:
            if (rec[5] or tally.lports[SYN_RECV].get(rec[1])) and owners.get(rec[8]):
                acceptors[rec[8]] = rank_holders(root, rec[8], owners[rec[8]], owner_info["fds"], table, link)
    facts = tally.report(top, owners, summary, wanted, acceptors, root)
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


__all__ = ["Tally", "gather", "address_text", "CollectError"]
