# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Turn the aggregates of a ``tally.Tally`` into the ``tcp`` facts document (``document()``).

Aggregation keys are raw bytes as sock_diag carries them (addresses, ports: ``wire.make_key``); text is made only
for the entries that end up in a top-N list. IPv4-mapped IPv6 peers are merged into their IPv4 address at that point.

"Inbound" means the socket's local port is a port some socket of the same family listens on (its peer's
port is then a client's ephemeral port and is aggregated away as ``port: null``; CLOSE_WAIT remotes keep
the listening port as ``local_port``); every other socket is "outbound" and keeps its peer's port. TIME_WAIT is
reported both ways: server side (inbound: this host closed a connection it accepted) and client side (outbound).

A local port in the ephemeral range is held towards (src, dst, dport) by every socket using it except a
TIME_WAIT socket the kernel would hand to a new connect() (tcp_twsk_unique() in net/ipv4/tcp_ipv4.c): one with
timestamps (tcp_timestamps), with tcp_tw_reuse 1, or 2 and a loopback address at either end, and older than
tcp_tw_reuse_delay (Linux 6.15+; one second before). A socket's age comes from the time left on its timer.
"""

import heapq
import itertools
import operator
import socket

from ansible_collections.linuxnet.tcp.plugins.module_utils._host.processes import program_of
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import wire
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.socket_records import IPV4_SLOT, IPV6_SLOT, family_total, state_total
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.sockets import (
    AF_INET,
    AF_INET6,
    ALL_STATES,
    LISTEN_BIT,
    STATE_NAMES,
    SYN_RECV,
    TIME_WAIT,
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


def state_counts(tally):
    """The ``states`` part: per state both families, the total and the total per family."""
    counts = tally.counts
    out = {name: state_total(counts, num) for num, name in enumerate(STATE_NAMES) if name}
    ipv4, ipv6 = family_total(counts, IPV4_SLOT), family_total(counts, IPV6_SLOT)
    out["total"] = ipv4 + ipv6
    out["by_family"] = {"ipv4": ipv4, "ipv6": ipv6}
    return out


def document(tally, top=10, owners=None, summary=False, wanted=ALL_STATES, acceptors=None, root="/"):
    """The facts document of a ``tally.Tally`` (all but what collect.gather() adds: counters, rates, collection).

    ``top`` caps each list (at most SUMMARY_LIST_CAP in ``summary`` form), ``owners`` maps socket inodes to their
    holders (``owners.find_owners``), ``acceptors`` the listeners in trouble to their ranked holders
    (``acceptors.rank``); ``wanted`` the states asked for (listeners only when LISTEN is), ``root`` where /proc is
    read for the programs of CLOSE_WAIT holders."""
    owners = owners or {}
    cap = min(top, SUMMARY_LIST_CAP) if summary else top
    states = state_counts(tally)
    return {
        "states": states,
        "time_wait": _time_wait(tally, states["TIME_WAIT"], cap),
        "close_wait": _close_wait(tally, states["CLOSE_WAIT"], cap, owners, summary, root),
        "peers": _peers(tally, cap, summary),
        "local_ports": _local_ports(tally, cap, summary),
        "listeners": _listeners(tally, owners, cap if summary else None, acceptors) if wanted & LISTEN_BIT else [],
        "ephemeral_ports": _ephemeral(tally),
    }


def _time_wait(tally, total, cap):
    remotes = {}
    clients = {}
    for slot in (0, 1):
        for table in (tally.ephemeral[slot][TIME_WAIT], tally.fixed[slot][TIME_WAIT]):
            for key, count in table.items():
                remote = (address_text(slot, key[wire.KEY_DST]), wire.key_port(key))
                remotes[remote] = remotes.get(remote, 0) + count
        for raw, count in tally.inbound[slot][TIME_WAIT].items():
            text = address_text(slot, raw)
            remotes[(text, None)] = remotes.get((text, None), 0) + count
            clients[text] = clients.get(text, 0) + count
    out = {
        "total": total,
        "by_remote": [{"address": a, "port": p, "count": c} for (a, p), c in _top(remotes, cap)],
        "by_local_port": [{"port": p, "count": c} for p, c in _top_counts(tally.lports[TIME_WAIT], cap)],
        "server_side": None,
        "client_side": None,
    }
    if not tally.detail & (1 << TIME_WAIT):
        return out  # counted, not read: the sides are unknown
    # Server side: the local port is a listening port (this host closed connections it had accepted). Each
    # costs a minisocket and no port. Client side: every other TIME_WAIT socket, which holds its local port
    # towards its destination.
    server = sum(clients.values())
    listening = {}
    for slot, rec in tally.listeners:
        listening.setdefault(rec.sport, address_text(slot, rec.src))
    ports = {port: count for port, count in tally.lports[TIME_WAIT].items() if port in listening}
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


def _close_wait(tally, total, cap, owners, summary, root="/"):
    procs = {}
    unowned = 0
    for inode, _uid, slot, raw, port, local_port in tally.close_wait:  # CloseWait records, unpacked
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


def _peers(tally, cap, summary):
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
            for table in (tally.ephemeral[slot][state], tally.fixed[slot][state]):
                for key, count in table.items():
                    add(slot, state, key[wire.KEY_DST], count)
            for raw, count in tally.inbound[slot][state].items():
                add(slot, state, raw, count)
    rows = heapq.nsmallest(cap, by_text.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    return [{"address": addr, "total": sum(row), "states": _state_dict(row, summary)} for addr, row in rows]


def _local_ports(tally, cap, summary):
    if not cap:
        return []
    tables = sorted(tally.lports, key=len)
    totals = dict(tables[-1])  # the largest table copied in C, the others added to it
    for table in tables[:-1]:
        for port, count in table.items():
            totals[port] = totals.get(port, 0) + count
    rows = []
    for port, total in _top_counts(totals, cap):
        row = [table.get(port, 0) for table in tally.lports]
        rows.append({"port": port, "total": total, "states": _state_dict(row, summary)})
    return rows


def _listeners(tally, owners, cap, acceptors=None):
    """Listener rows. ``acceptors``: {inode: (ranked holders, total)} for the listeners in trouble (see
    _acceptors.rank): the row names the first, the one that should be accepting."""
    acceptors = acceptors or {}
    settings = tally.settings
    rows = []
    for slot, rec in tally.listeners:
        sport, src, rqueue, wqueue, inode = rec.sport, rec.src, rec.rqueue, rec.wqueue, rec.inode
        ranked, held_by = acceptors.get(inode) or (None, None)
        holders = ranked or owners.get(inode) or [{"pid": None, "name": None, "user": None}]
        row = {"address": address_text(slot, src), "port": sport, "queue": rqueue, "backlog": wqueue,
               "pid": holders[0]["pid"], "name": holders[0]["name"], "user": holders[0]["user"],
               "syn_recv": tally.lports[SYN_RECV].get(sport, 0)}
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


def _reusable(tally, slot, key):
    """Whether tcp_twsk_unique() may hand a TIME_WAIT socket of ``key`` (once old enough) to a new connect():
    timestamps on, and tcp_tw_reuse 1, or 2 with a loopback address at either end."""
    settings = tally.settings
    if not settings.get("tcp_timestamps"):
        return False
    mode = settings.get("tcp_tw_reuse")
    if mode == 1:
        return True
    return mode == 2 and (_loopback(slot, key[wire.KEY_SRC]) or _loopback(slot, key[wire.KEY_DST]))


def _ephemeral(tally):
    empty = {"address": None, "port": None, "in_use": None, "utilisation": None}
    if not tally.port_range:
        return {"range": None, "size": None, "busiest": dict(empty), "crowded": dict(empty),
                "reuse": _reuse_note(tally)}
    lo, hi = tally.port_range
    size = max(hi - lo + 1, 0)
    best = crowded = None
    for slot in (0, 1):
        # Sockets of every state towards one (src, dst, dport) share the pool.
        pools = {}
        for table in tally.ephemeral[slot]:
            for key, count in table.items():
                pools[key] = pools.get(key, 0) + count
        waiting = tally.ephemeral[slot][TIME_WAIT]
        young = tally.tw_young[slot]
        judged = tally.young_after is not None
        for key, count in pools.items():
            tw = waiting.get(key, 0)
            held_tw = young.get(key, 0) if tw and judged and _reusable(tally, slot, key) else tw
            held = count - tw + held_tw
            # Most ports held first; ties go to the lowest (family, dst, dport, src), whatever the order in
            # which the dumps delivered them.
            rank = (-held, slot, key[wire.KEY_DST], key[wire.KEY_PORT_SRC])
            if best is None or rank < best[0]:
                best = (rank, slot, key, count, tw, held_tw)
            rank = (-count, slot, key[wire.KEY_DST], key[wire.KEY_PORT_SRC])
            if crowded is None or rank < crowded[0]:
                crowded = (rank, slot, key, count, tw, held_tw)
    out = {"range": [lo, hi], "size": size, "reuse": _reuse_note(tally)}
    for name, found in (("busiest", best), ("crowded", crowded)):
        if found is None:
            out[name] = {"address": None, "port": None, "in_use": 0, "utilisation": 0.0, "sockets": 0,
                         "connections": 0, "time_wait": 0, "time_wait_held": 0, "time_wait_reusable": 0}
            continue
        _rank, slot, key, count, tw, held_tw = found
        held = count - tw + held_tw
        out[name] = {"address": address_text(slot, key[wire.KEY_DST]), "port": wire.key_port(key), "in_use": held,
                     "utilisation": round(held / size, 4) if size else None, "sockets": count,
                     "connections": count - tw, "time_wait": tw, "time_wait_held": held_tw,
                     "time_wait_reusable": tw - held_tw}
    return out


def _reuse_note(tally):
    """The settings that decide whether TIME_WAIT ports are reused, as read in the namespace (None: unknown)."""
    settings = tally.settings
    return {"tcp_tw_reuse": settings.get("tcp_tw_reuse"), "tcp_tw_reuse_delay_ms": settings.get("tcp_tw_reuse_delay"),
            "tcp_timestamps": settings.get("tcp_timestamps"), "judged": tally.young_after is not None}


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
