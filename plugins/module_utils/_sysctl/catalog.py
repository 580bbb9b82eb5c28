# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kernel knowledge about the sysctl keys this collection manages, kept as data.

The catalogue explains what a key is (value format, range, network-namespace scope, removed or
renamed names, kernel module needed, capacity limits that must only be raised); the values known to be harmful
are the table in ``_sysctl/safety.py``. It never replaces probing the running kernel: ``_sysctl/tree.py`` looks at
``/proc/sys`` first and uses the catalogue to explain what it found.

Main sources: Documentation/networking/ip-sysctl.rst, nf_conntrack-sysctl.rst, ipvs-sysctl.rst,
Documentation/admin-guide/sysctl/net.rst and net/ipv4/sysctl_net_ipv4.c (``ipv4_table`` is
registered for init_net only, ``ipv4_net_table`` per network namespace).
"""

import fnmatch

# Value formats.
INT = "int"            # one integer, optional [min, max]
INTS = "ints"          # a fixed number of integers separated by whitespace
PORT_RANGE = "port_range"  # "low high", 1..65535, low <= high
PORT_LIST = "port_list"    # comma list of ports and ranges ("8080,9000-9010"), may be empty
STRING = "string"      # free text token(s), no numeric check

# Scope of a key with respect to network namespaces (kernel 6.18 matrix, see docs/sysctl.md).
NETNS = "netns"                    # per network namespace, writable in a child netns
GLOBAL = "global"                  # registered for init_net only: absent in a child netns
READONLY_IN_CHILD = "readonly_in_child"  # visible in a child netns with mode 0444 (write -> EACCES)
READONLY = "readonly"              # read-only everywhere

GROUP_TCP = "tcp"
GROUP_CORE = "core"
GROUP_CONNTRACK = "conntrack"
GROUP_IPVS = "ipvs"

INT_MAX = 2147483647
UINT_MAX = 4294967295


def _k(kind, scope=NETNS, lo=None, hi=None, count=None, group=GROUP_TCP, raise_only=False, module=None, note="",
       since=None, source=""):
    """A catalogue record. ``since``: the first kernel release with the key (None: older than this collection's
    oldest supported kernel); ``source``: where that and the note were checked (a kernel commit or document)."""
    return {
        "kind": kind, "scope": scope, "min": lo, "max": hi, "count": count, "group": group,
        "raise_only": raise_only, "module": module, "note": note, "since": since, "source": source,
    }


def _ct(kind=INT, scope=NETNS, lo=0, hi=INT_MAX, raise_only=False, note="", source=""):
    return _k(kind, scope, lo, hi, group=GROUP_CONNTRACK, raise_only=raise_only, module="nf_conntrack", note=note,
              source=source)


def _vs(lo=0, hi=INT_MAX, note=""):
    return _k(INT, NETNS, lo, hi, group=GROUP_IPVS, module="ip_vs", note=note)


def _core(kind=INT, scope=NETNS, lo=0, hi=INT_MAX, raise_only=False, note=""):
    return _k(kind, scope, lo, hi, group=GROUP_CORE, raise_only=raise_only, note=note)


KEYS = {
    # TIME_WAIT, FIN_WAIT_2 and close handling.
    "net.ipv4.tcp_fin_timeout": _k(INT, lo=0, hi=2147483, note="orphaned FIN_WAIT_2 lifetime; does not shorten TIME_WAIT (fixed 60 s)"),
    "net.ipv4.tcp_tw_reuse": _k(INT, lo=0, hi=2, note=(
        "0 off, 1 on, 2 loopback only (default since 4.19); needs tcp_timestamps; outbound connect() only; never a "
        "TIME_WAIT socket younger than tcp_tw_reuse_delay (6.15+, 1 s before) nor one in the FIN_WAIT2 substate"),
        source="net/ipv4/tcp_ipv4.c tcp_twsk_unique(); ip-sysctl.rst tcp_tw_reuse"),
    "net.ipv4.tcp_tw_reuse_delay": _k(INT, lo=1, hi=60000, since="6.15", note=(
        "ms a TIME_WAIT socket must have spent in TIME_WAIT before tcp_twsk_unique() lets a new connect() reuse its "
        "port (default 1000; a fixed second before 6.15); never below the peers' timestamp clock tick"),
        source="Documentation/networking/ip-sysctl.rst tcp_tw_reuse_delay; commit 'tcp: Add sysctl to configure "
               "TIME-WAIT reuse delay' (J. Sitnicki); net/ipv4/tcp_ipv4.c tcp_twsk_unique()"),
    "net.ipv4.tcp_max_tw_buckets": _k(INT, lo=0, hi=INT_MAX, raise_only=True, note="DoS limit; ip-sysctl.rst: must not be lowered"),
    "net.ipv4.tcp_max_orphans": _k(INT, GLOBAL, lo=0, hi=INT_MAX, raise_only=True, note="DoS limit; ip-sysctl.rst: must not be lowered"),
    "net.ipv4.tcp_orphan_retries": _k(INT, lo=0, hi=255, note="0 means 8"),
    "net.ipv4.tcp_rfc1337": _k(INT, lo=0, hi=1),
    # SYN handling and accept queues.
    "net.ipv4.tcp_syncookies": _k(INT, lo=0, hi=2),
    "net.ipv4.tcp_max_syn_backlog": _k(INT, lo=0, hi=INT_MAX, note="only read when tcp_syncookies=0"),
    "net.ipv4.tcp_synack_retries": _k(INT, lo=0, hi=255),
    "net.ipv4.tcp_syn_retries": _k(INT, lo=1, hi=127, note="MAX_TCP_SYNCNT is 127"),
    "net.ipv4.tcp_syn_linear_timeouts": _k(INT, lo=0, hi=127, since="6.5", note=(
        "SYN retransmits at the initial RTO before exponential backoff (default 4: 1,1,1,1,1,2,4 s). They add to "
        "tcp_syn_retries in the count, and connect() ends once both the count and the backoff time of tcp_syn_retries "
        "are used up (tcp_write_timeout()): the default gives up after 131 s, not 127; measured on 6.18, "
        "tcp_syn_retries 3 after 19.5 s and 7 SYN retransmits (15.3 s and 3 with this at 0), 1 still after 3 s"),
        source="commit 'tcp: make the first N SYN RTO backoffs linear' (D. Morley, 2023); ip-sysctl.rst"),
    # Retransmission timeout bounds (microseconds / milliseconds), per namespace; a route's rto_min and the socket
    # options TCP_RTO_MIN_US / TCP_RTO_MAX_MS override them.
    "net.ipv4.tcp_rto_min_us": _k(INT, lo=1, hi=INT_MAX, since="6.11", note=(
        "minimum RTO in us (default 200000); lower it only on low-latency fabrics, where a route's rto_min used to "
        "be the only knob"), source="ip-sysctl.rst tcp_rto_min_us; commit 'tcp: add sysctl_tcp_rto_min_us' (K. Yang, 2024)"),
    "net.ipv4.tcp_rto_max_ms": _k(INT, lo=1000, hi=120000, since="6.15", note=(
        "maximum RTO in ms (default 120000); lowering it makes tcp_retries2 end a dead connection sooner, so "
        "revisit tcp_retries2 with it"), source="ip-sysctl.rst tcp_rto_max_ms; commit 'tcp: add tcp_rto_max_ms sysctl' "
                                                "(E. Dumazet, 2025)"),
    "net.ipv4.tcp_abort_on_overflow": _k(INT, lo=0, hi=1),
    # Ephemeral ports.
    "net.ipv4.ip_local_port_range": _k(PORT_RANGE, note=(
        "host-wide default; since 6.3 a socket can narrow it for itself with IP_LOCAL_PORT_RANGE (commit 91d0b78c5177 "
        "'inet: Add IP_LOCAL_PORT_RANGE socket option'), which lets processes sharing one source address split it"),
        source="ip-sysctl.rst ip_local_port_range; ip(7) IP_LOCAL_PORT_RANGE"),
    "net.ipv4.ip_local_reserved_ports": _k(PORT_LIST),
    "net.ipv4.ip_unprivileged_port_start": _k(INT, lo=0, hi=65536),
    # Timestamps, keepalive, retransmission.
    "net.ipv4.tcp_timestamps": _k(INT, lo=0, hi=2),
    "net.ipv4.tcp_window_scaling": _k(INT, lo=0, hi=1),
    "net.ipv4.tcp_sack": _k(INT, lo=0, hi=1),
    "net.ipv4.tcp_keepalive_time": _k(INT, lo=1, hi=INT_MAX),
    "net.ipv4.tcp_keepalive_intvl": _k(INT, lo=1, hi=INT_MAX),
    "net.ipv4.tcp_keepalive_probes": _k(INT, lo=1, hi=255),
    "net.ipv4.tcp_retries1": _k(INT, lo=0, hi=255),
    "net.ipv4.tcp_retries2": _k(INT, lo=0, hi=255, note="RFC 1122 wants at least 100 s, i.e. 8"),
    # Buffers, congestion control, PMTU, Fast Open.
    "net.ipv4.tcp_rmem": _k(INTS, count=3, lo=1, hi=INT_MAX),
    "net.ipv4.tcp_wmem": _k(INTS, count=3, lo=1, hi=INT_MAX),
    "net.ipv4.tcp_mem": _k(INTS, GLOBAL, count=3, lo=0, hi=None, note="pages, not bytes; sized at boot"),
    "net.ipv4.tcp_slow_start_after_idle": _k(INT, lo=0, hi=1),
    "net.ipv4.tcp_notsent_lowat": _k(INT, lo=0, hi=UINT_MAX),
    "net.ipv4.tcp_congestion_control": _k(STRING),
    "net.ipv4.tcp_allowed_congestion_control": _k(STRING, READONLY_IN_CHILD),
    "net.ipv4.tcp_available_congestion_control": _k(STRING, READONLY),
    "net.ipv4.tcp_mtu_probing": _k(INT, lo=0, hi=2),
    "net.ipv4.tcp_fastopen": _k(INT, lo=0, hi=INT_MAX, note="bitmap"),
    "net.ipv4.tcp_low_latency": _k(INT, GLOBAL, lo=0, hi=1, note="no effect since 4.14"),
    "net.ipv4.tcp_no_metrics_save": _k(INT, lo=0, hi=1),
    # Hash table of a network namespace created after the write (per parent namespace). 0 shares the host's
    # table; a power of two gives each new container namespace its own, so one busy pod's TIME_WAIT storm does
    # not lengthen every other namespace's lookups. tcp_max_tw_buckets and tcp_max_syn_backlog of the child scale
    # with it.
    "net.ipv4.tcp_child_ehash_entries": _k(INT, lo=0, hi=16777216, since="6.1", note=(
        "ehash buckets of network namespaces created afterwards (0: share the host's); for dense container hosts"),
        source="ip-sysctl.rst tcp_child_ehash_entries; commit d1e5e6408b30 'tcp: Introduce optional per-netns ehash' "
               "(K. Iwashima, 2022)"),
    "net.ipv4.tcp_ehash_entries": _k(INT, READONLY, since="6.1", note="ehash buckets of this namespace; negative when shared with the host's",
                                     source="ip-sysctl.rst tcp_ehash_entries"),
    "net.ipv4.ip_forward": _k(INT, lo=0, hi=1, note="changing it resets interface configuration"),
    "net.ipv4.route.gc_timeout": _k(INT, GLOBAL, lo=0, hi=INT_MAX, note="no effect on TCP since the 3.6 route cache removal"),
    # Core networking.
    "net.core.somaxconn": _core(raise_only=True, note="4096 since 5.4"),
    "net.core.rmem_max": _core(scope=READONLY_IN_CHILD, raise_only=True, note="4194304 since 6.18; read-only in a child netns since 6.11"),
    "net.core.wmem_max": _core(scope=READONLY_IN_CHILD, raise_only=True, note="4194304 since 6.18; read-only in a child netns since 6.11"),
    "net.core.rmem_default": _core(scope=READONLY_IN_CHILD),
    "net.core.wmem_default": _core(scope=READONLY_IN_CHILD),
    "net.core.optmem_max": _core(),
    "net.core.netdev_max_backlog": _core(scope=GLOBAL),
    "net.core.netdev_budget": _core(scope=GLOBAL),
    "net.core.netdev_budget_usecs": _core(scope=GLOBAL),
    "net.core.busy_poll": _core(scope=GLOBAL),
    "net.core.busy_read": _core(scope=GLOBAL),
    "net.core.default_qdisc": _core(kind=STRING, scope=GLOBAL, lo=None, hi=None),
    # Conntrack (nf_conntrack must be loaded for these files to exist).
    "net.netfilter.nf_conntrack_max": _ct(scope=READONLY_IN_CHILD, raise_only=True, note="read-only in a child netns since commit 2671fa4dc010"),
    "net.netfilter.nf_conntrack_buckets": _ct(scope=READONLY_IN_CHILD),
    "net.netfilter.nf_conntrack_expect_max": _ct(scope=READONLY_IN_CHILD),
    "net.nf_conntrack_max": _ct(scope=GLOBAL, raise_only=True, note="legacy alias of net.netfilter.nf_conntrack_max"),
    "net.netfilter.nf_conntrack_tcp_timeout_established": _ct(lo=1),
    "net.netfilter.nf_conntrack_tcp_timeout_time_wait": _ct(lo=1),
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait": _ct(lo=1),
    "net.netfilter.nf_conntrack_tcp_timeout_fin_wait": _ct(lo=1),
    "net.netfilter.nf_conntrack_tcp_timeout_syn_sent": _ct(lo=1),
    "net.netfilter.nf_conntrack_tcp_timeout_syn_recv": _ct(lo=1),
    "net.netfilter.nf_conntrack_tcp_timeout_last_ack": _ct(lo=1),
    "net.netfilter.nf_conntrack_tcp_timeout_close": _ct(lo=1),
    "net.netfilter.nf_conntrack_tcp_timeout_max_retrans": _ct(lo=1),
    "net.netfilter.nf_conntrack_tcp_timeout_unacknowledged": _ct(lo=1),
    "net.netfilter.nf_conntrack_udp_timeout": _ct(lo=1),
    "net.netfilter.nf_conntrack_udp_timeout_stream": _ct(lo=1),
    "net.netfilter.nf_conntrack_tcp_loose": _ct(hi=1),
    # With 0, conntrack marks packets outside the tracked TCP window INVALID; kube-proxy and CNIs set it to 1
    # against the spurious resets this caused for overly delayed packets on kernels before 6.1. Since commit 6e250dcbff1d ("netfilter: conntrack:
    # ignore overly delayed tcp packets", 6.1) those no longer make a packet INVALID, so the setting is needed
    # only on older kernels, and on newer ones it just stops conntrack from checking windows.
    "net.netfilter.nf_conntrack_tcp_be_liberal": _ct(hi=1, note="needed only before Linux 6.1 (commit 6e250dcbff1d)",
                                                     source="nf_conntrack-sysctl.rst; commit 6e250dcbff1d; kubernetes/kubernetes#117924"),
    # IPVS (ip_vs must be loaded).
    "net.ipv4.vs.conn_reuse_mode": _vs(),
    "net.ipv4.vs.expire_nodest_conn": _vs(hi=1),
    "net.ipv4.vs.expire_quiescent_template": _vs(hi=1),
    "net.ipv4.vs.conntrack": _vs(hi=1),
}

# Keys the kernel dropped without a replacement. Probing comes first: on a kernel that still has
# the file the key is treated as present (and the safety rules apply).
REMOVED = {
    "net.ipv4.tcp_tw_recycle": {
        "reason": "removed in Linux 4.12 (commit 4396e46187ca); it broke clients behind NAT",
        "advice": "drop it; on hosts making many short outbound connections use net.ipv4.tcp_tw_reuse = 1",
    },
}

# Legacy names and their modern replacement. The pre-nf_conntrack compatibility sysctls existed
# only with CONFIG_NF_CONNTRACK_PROC_COMPAT and are absent on current kernels.
RENAMED = {
    "net.ipv4.ip_conntrack_max": "net.netfilter.nf_conntrack_max",
}
RENAMED_PREFIXES = (
    ("net.ipv4.netfilter.ip_conntrack_", "net.netfilter.nf_conntrack_"),
)

# Kernel modules that register whole subtrees.
MODULE_PREFIXES = (
    ("net.netfilter.", "nf_conntrack"),
    ("net.nf_conntrack_max", "nf_conntrack"),
    ("net.ipv4.vs.", "ip_vs"),
    ("net.bridge.", "br_netfilter"),
)

# Keys registered for init_net only (net/core/sysctl_net_core.c net_core_table, net/ipv4/sysctl_net_ipv4.c
# ipv4_table, net/ipv4/route.c ipv4_route_table), as patterns so keys outside KEYS are covered too.
GLOBAL_PATTERNS = (
    "net.core.netdev_max_backlog", "net.core.default_qdisc", "net.core.netdev_budget*", "net.core.busy_poll",
    "net.core.busy_read", "net.core.dev_weight*", "net.core.rps_sock_flow_entries", "net.core.flow_limit_*",
    "net.core.bpf_jit_*", "net.core.message_*", "net.ipv4.tcp_mem", "net.ipv4.udp_mem", "net.ipv4.tcp_max_orphans",
    "net.ipv4.inet_peer_*", "net.ipv4.fib_sync_mem", "net.ipv4.tcp_low_latency", "net.ipv4.route.gc_*",
    "net.ipv4.route.max_size", "net.ipv4.route.redirect_*", "net.ipv4.route.error_*", "net.nf_conntrack_max",
)
READONLY_IN_CHILD_PATTERNS = (
    "net.core.rmem_max", "net.core.wmem_max", "net.core.rmem_default", "net.core.wmem_default",
    "net.ipv4.tcp_allowed_congestion_control", "net.ipv4.tcp_available_congestion_control",
    "net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_buckets", "net.netfilter.nf_conntrack_expect_max",
)


def info(key):
    """Return the catalogue record for a dotted key, or None."""
    return KEYS.get(key)


def removed(key):
    """Return the removal record for a key the kernel dropped, or None."""
    return REMOVED.get(key)


def renamed_to(key):
    """Return the modern name of a legacy key, or None."""
    if key in RENAMED:
        return RENAMED[key]
    for old, new in RENAMED_PREFIXES:
        if key.startswith(old) and len(key) > len(old):
            return new + key[len(old):]
    return None


def module_for(key):
    """Return the kernel module that registers this key, or None."""
    rec = KEYS.get(key)
    if rec and rec["module"]:
        return rec["module"]
    for prefix, module in MODULE_PREFIXES:
        if key.startswith(prefix):
            return module
    return None


def scope_of(key):
    """Return NETNS, GLOBAL, READONLY_IN_CHILD or READONLY for a key (NETNS when nothing says otherwise)."""
    rec = KEYS.get(key)
    if rec:
        return rec["scope"]
    if any(fnmatch.fnmatchcase(key, p) for p in GLOBAL_PATTERNS):
        return GLOBAL
    if any(fnmatch.fnmatchcase(key, p) for p in READONLY_IN_CHILD_PATTERNS):
        return READONLY_IN_CHILD
    return NETNS


def group_keys(*groups):
    """Catalogue keys of the given groups, sorted."""
    return sorted(k for k, v in KEYS.items() if v["group"] in groups)


def _int_token(token):
    # The kernel parses integers with base 0 (proc_get_long -> strtoul_lenient), so "010" would be
    # octal 8: refuse ambiguous leading zeros instead of guessing.
    text = token[1:] if token[:1] in "+-" else token
    if text.isdigit():
        if len(text) > 1 and text[0] == "0":
            raise ValueError("'%s' has a leading zero, which the kernel reads as octal; write it in decimal" % token)
        return int(token)
    if text[:2].lower() == "0x" and len(text) > 2:
        try:
            value = int(text, 16)
        except ValueError:
            raise ValueError("'%s' is not an integer" % token)
        return -value if token.startswith("-") else value
    raise ValueError("'%s' is not an integer" % token)


def _check_range(key, value, rec):
    if rec["min"] is not None and value < rec["min"]:
        return "%s must be at least %d (got %d)" % (key, rec["min"], value)
    if rec["max"] is not None and value > rec["max"]:
        return "%s must be at most %d (got %d)" % (key, rec["max"], value)
    return None


def validate_value(key, value):
    """Check a normalised value against the catalogue.

    Returns an error message naming the key and the rule, or None when the value is acceptable
    (or the key is not in the catalogue, in which case only the kernel can judge it).
    """
    rec = KEYS.get(key)
    if rec is None:
        return None
    tokens = value.split()
    kind = rec["kind"]
    try:
        if kind == INT:
            if len(tokens) != 1:
                return "%s takes one integer (got '%s')" % (key, value)
            return _check_range(key, _int_token(tokens[0]), rec)
        if kind == INTS:
            if len(tokens) != rec["count"]:
                return "%s takes %d integers separated by spaces (got '%s')" % (key, rec["count"], value)
            for tok in tokens:
                msg = _check_range(key, _int_token(tok), rec)
                if msg:
                    return msg
            return None
        if kind == PORT_RANGE:
            if len(tokens) != 2:
                return "%s takes two ports 'low high' (got '%s')" % (key, value)
            low, high = (_int_token(t) for t in tokens)
            if not 1 <= low <= 65535 or not 1 <= high <= 65535:
                return "%s ports must be within 1..65535 (got '%s')" % (key, value)
            if low > high:
                return "%s low port must not exceed the high port (got '%s')" % (key, value)
            return None
        if kind == PORT_LIST:
            for part in "".join(tokens).split(","):
                if not part:
                    continue
                bounds = part.split("-")
                if len(bounds) > 2:
                    return "%s takes ports and ranges like '8080,9000-9010' (got '%s')" % (key, value)
                nums = [_int_token(b) for b in bounds]
                if any(not 0 <= n <= 65535 for n in nums) or nums != sorted(nums):
                    return "%s takes ports 0..65535 and ascending ranges (got '%s')" % (key, value)
            return None
    except ValueError as exc:
        return "%s: %s" % (key, exc)
    if not tokens:
        return "%s needs a value" % key
    return None


def as_ints(value):
    """Integers of a normalised value, or None when a token is not an integer."""
    try:
        return [_int_token(t) for t in value.split()]
    except ValueError:
        return None


def port_set(spec):
    """Ports of a port list such as ``8080,9000-9010`` (parts that are not ports are ignored)."""
    ports = set()
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        bounds = part.split("-")
        try:
            lo, hi = int(bounds[0]), int(bounds[-1])
        except ValueError:
            continue
        ports.update(range(lo, hi + 1))
    return ports


def fold_ports(ports):
    """A set of ports in the kernel's own format for ip_local_reserved_ports: ascending, runs folded.

    proc_do_large_bitmap() prints ``8080,9000-9010``, so a value written this way reads back unchanged.
    """
    out = []
    start = prev = None
    for port in sorted(ports):
        if prev is not None and port == prev + 1:
            prev = port
            continue
        if start is not None:
            out.append(str(start) if start == prev else "%d-%d" % (start, prev))
        start = prev = port
    if start is not None:
        out.append(str(start) if start == prev else "%d-%d" % (start, prev))
    return ",".join(out)
