# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kernel TCP counters: /proc/net/sockstat{,6}, /proc/net/netstat (TcpExt), /proc/net/snmp (Tcp), conntrack.

All readers take ``root`` so tests run them on fake trees. They only read. Paths under /proc/sys/net resolve in
the network namespace of the reading thread; /proc/net (a link to /proc/self/net) in that of the process's main
thread, so a thread that entered another namespace reads ``net="proc/thread-self/net"`` instead. Call them inside
the namespace being inspected.
"""

import os
from ansible_collections.linuxnet.tcp.plugins.module_utils._common import LinuxnetError

# TcpExt names from net/ipv4/proc.c snmp4_net_list; semantics in Documentation/networking/snmp_counter.rst.
TCPEXT_COUNTERS = (
    "ListenOverflows", "ListenDrops", "TCPTimeWaitOverflow", "TW", "TWKilled", "TWRecycled",
    "SyncookiesSent", "SyncookiesRecv", "SyncookiesFailed", "TCPAbortOnMemory", "TCPAbortOnTimeout",
    "TCPAbortOnData", "TCPAbortOnClose", "TCPReqQFullDrop", "TCPReqQFullDoCookies",
)
TCP_COUNTERS = (
    "CurrEstab", "ActiveOpens", "PassiveOpens", "AttemptFails", "EstabResets", "RetransSegs", "OutRsts",
)
SOCKSTAT_FIELDS = ("inuse", "orphan", "tw", "alloc", "mem")


class KstatsError(LinuxnetError):
    """A counter file is missing or malformed; the message names the file."""


def _read(root, *parts):
    path = os.path.join(root, *parts)
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("ascii", "replace")
    except FileNotFoundError:
        raise KstatsError("cannot read %s: file not found" % path) from None
    except OSError as exc:
        raise KstatsError("cannot read %s: %s" % (path, exc.strerror)) from exc


def parse_pairs(text, prefix, path="counters"):
    """Parse header/value line pairs (``Prefix: A B`` then ``Prefix: 1 2``) as in netstat and snmp."""
    lines = [line.split() for line in text.splitlines() if line.startswith(prefix + ":")]
    if len(lines) < 2:
        return {}
    names, values = lines[0][1:], lines[1][1:]
    if len(names) != len(values):
        raise KstatsError("malformed %s: %d %s names but %d values" % (path, len(names), prefix, len(values)))
    out = {}
    for name, value in zip(names, values):
        try:
            out[name] = int(value)
        except ValueError:
            raise KstatsError("malformed %s: %s %s is %r" % (path, prefix, name, value)) from None
    return out


def parse_sockstat(text, proto="TCP"):
    """``TCP: inuse 5 orphan 0 tw 2 alloc 7 mem 1`` -> dict of ints (only the TCP-family line)."""
    for line in text.splitlines():
        if line.startswith(proto + ":"):
            words = line.split()[1:]
            return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}
    return {}


def read_sockstat(root="/", net="proc/net"):
    """TCP line of /proc/net/sockstat, with TCP6 ``inuse`` added from sockstat6 when present.

    ``inuse`` (and ``tw`` on recent kernels) are per network namespace; ``orphan``, ``alloc`` and
    ``mem`` (pages) are host-wide (net/ipv4/proc.c sockstat_seq_show).
    """
    tcp = parse_sockstat(_read(root, net, "sockstat"))
    out = {name: tcp.get(name) for name in SOCKSTAT_FIELDS}
    try:
        tcp6 = parse_sockstat(_read(root, net, "sockstat6"), "TCP6")
    except KstatsError:
        tcp6 = {}  # no IPv6 in this kernel or namespace
    if out["inuse"] is not None and "inuse" in tcp6:
        out["inuse"] += tcp6["inuse"]
    return out


def read_counters(root="/", net="proc/net"):
    """Flat dict of the TcpExt and Tcp counters named above (None when this kernel lacks one)."""
    ext = parse_pairs(_read(root, net, "netstat"), "TcpExt", os.path.join(root, net, "netstat"))
    tcp = parse_pairs(_read(root, net, "snmp"), "Tcp", os.path.join(root, net, "snmp"))
    out = {name: ext.get(name) for name in TCPEXT_COUNTERS}
    out.update((name, tcp.get(name)) for name in TCP_COUNTERS)
    out["sockstat"] = read_sockstat(root, net)
    return out


def _read_int(root, *parts):
    try:
        return int(_read(root, *parts).split()[0])
    except (KstatsError, ValueError, IndexError):
        return None


def read_conntrack(root="/"):
    """nf_conntrack count, max, utilisation (0..1); all None when the module is not loaded."""
    count = _read_int(root, "proc", "sys", "net", "netfilter", "nf_conntrack_count")
    limit = _read_int(root, "proc", "sys", "net", "netfilter", "nf_conntrack_max")
    if count is None:
        return {"count": None, "max": limit, "utilisation": None}
    util = round(count / limit, 4) if limit else None
    return {"count": count, "max": limit, "utilisation": util}


def read_sysctls(root, keys):
    """``{key: value}`` of the ``keys`` (sysctl names in the collection's spelling, _sysctl/keys.py) that can be
    read, whitespace folded; a key that cannot be read is left out (the caller reports what it found)."""
    # Imported here: _sysctl/keys.py (with the catalogue it loads) costs more to import than this module, and only a
    # scan of every namespace reads sysctls by name; every other tcp_facts run would pay it for nothing.
    from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import parts_of  # pylint: disable=import-outside-toplevel

    out = {}
    for key in keys:
        try:
            out[key] = " ".join(_read(root, "proc", "sys", *parts_of(key)).split())
        except KstatsError:
            continue
    return out


# Per-namespace sysctls that decide what the socket table means (net.* under /proc/sys/net): whether a TIME_WAIT
# port can be taken over by a new connect() (tcp_twsk_unique() in net/ipv4/tcp_ipv4.c) and what bounds a
# listener's SYN queue (tcp_conn_request() in net/ipv4/tcp_input.c). tcp_tw_reuse_delay exists since Linux 6.15
# (commit "tcp: Add sysctl to configure TIME-WAIT reuse delay"); before, the delay was a fixed second.
SOCKET_SYSCTLS = (
    ("tcp_tw_reuse", ("ipv4", "tcp_tw_reuse")),
    ("tcp_tw_reuse_delay", ("ipv4", "tcp_tw_reuse_delay")),
    ("tcp_timestamps", ("ipv4", "tcp_timestamps")),
    ("tcp_syncookies", ("ipv4", "tcp_syncookies")),
    ("tcp_max_syn_backlog", ("ipv4", "tcp_max_syn_backlog")),
    ("somaxconn", ("core", "somaxconn")),
)


def read_socket_sysctls(root="/"):
    """{name: int or None} of SOCKET_SYSCTLS in the reading thread's network namespace."""
    return {name: _read_int(root, "proc", "sys", "net", *parts) for name, parts in SOCKET_SYSCTLS}


def read_port_range(root="/"):
    """net.ipv4.ip_local_port_range as (lo, hi), or None when it cannot be read (no IPv4 sysctls)."""
    try:
        words = _read(root, "proc", "sys", "net", "ipv4", "ip_local_port_range").split()
        return int(words[0]), int(words[1])
    except (KstatsError, ValueError, IndexError):
        return None
