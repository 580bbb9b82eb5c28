# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tcp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Known-harmful sysctl values, as one table, and the one function that judges a run against it.

``RULES`` is read by linuxnet.tcp.sysctl_profile (every rule, on the values the run would write, after legacy names
are mapped and ``>=``/``<=`` resolved) and by the tuning role on the controller (``ROLE_GUARDS``, the rules marked
``role_guard``, on the merged profile as written, legacy names included, before the module runs; its summary prints
them as "refused (role guard)"). ``allow_unsafe`` overrides every rule: the module applies the value with a warning,
and the role's ``tcp_tuning_allow_unsafe`` skips its guards and passes ``allow_unsafe`` on to the module.

To add a known-harmful value: one ``Rule`` in ``RULES`` (with a test below, or a new test in ``_VERDICTS``), its
words in the ``allow_unsafe`` description of plugins/modules/sysctl_profile.py and in docs/sysctl.md, and both sides
of its threshold in tests/unit/plugins/module_utils/_sysctl/test_safety.py.

Sources: Documentation/networking/ip-sysctl.rst, nf_conntrack-sysctl.rst and the kernel commits named in the reasons.
"""

from typing import NamedTuple, Tuple, Union

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import catalog

# Tests. Values are judged only when they are integers as the kernel reads them (catalog.as_ints).
BELOW = "below"                # one integer, below ``limit``
OTHER_THAN = "other_than"      # one integer, anything but ``limit``
LOWERED = "lowered"            # one integer, below the running value: a capacity limit that may only be raised
OFF_WHILE_ON = "off_while_on"  # the key is 0 while the key named by ``limit`` is on, whichever of the two the run sets
STARTS_BELOW = "starts_below"  # a range of two ports starting below the value of the key named by ``limit``
OVER_LISTENERS = "over_listeners"  # a changed range covering a local listener not in the ports of the key named by ``limit``
SAME_PARITY = "same_parity"    # a range of two ports whose ends are both even or both odd

RANGE_KEY = "net.ipv4.ip_local_port_range"
RESERVED_KEY = "net.ipv4.ip_local_reserved_ports"
UNPRIVILEGED_KEY = "net.ipv4.ip_unprivileged_port_start"
# The kernel's behaviour where a key a rule reads is absent: before Linux 4.11 there is no ip_unprivileged_port_start,
# and ports below 1024 are the privileged ones.
ABSENT = {UNPRIVILEGED_KEY: "1024"}


class Rule(NamedTuple):
    """One known-harmful value. ``reason`` and ``suggestion`` are str.format templates over ``key``, ``value`` and the
    fields the test gives (``limit``; ``running`` and ``wanted``; ``start`` and ``floor``; ``ports``)."""
    keys: Tuple[str, ...]      # the keys judged, by their modern name
    test: str                  # one of the tests above
    limit: Union[int, str, None]  # the threshold: a number, or the key whose value is the threshold
    reason: str
    suggestion: str
    role_guard: bool           # the tuning role also judges it on the controller, before the module runs


RULES = (
    Rule(("net.ipv4.tcp_tw_recycle",), OTHER_THAN, 0,
         "tcp_tw_recycle breaks every client behind NAT and was removed in Linux 4.12 (commit 4396e46187ca)",
         "set net.ipv4.tcp_tw_recycle = 0, and net.ipv4.tcp_tw_reuse = 1 on hosts making many outbound connections", False),
    # Without timestamps tcp_twsk_unique() never reuses a TIME_WAIT tuple, and PAWS is lost.
    Rule(("net.ipv4.tcp_timestamps",), OFF_WHILE_ON, "net.ipv4.tcp_tw_reuse",
         "tcp_timestamps = 0 with tcp_tw_reuse on: reuse silently stops working and PAWS protection is lost",
         "keep net.ipv4.tcp_timestamps = 1 (the default), or also set net.ipv4.tcp_tw_reuse = 0", False),
    # The catalogue's capacity limits (ip-sysctl.rst: "must not" be lowered; defaults grew since 5.4).
    Rule(tuple(key for key, rec in catalog.KEYS.items() if rec["raise_only"]), LOWERED, None,
         "{key} is a capacity limit that must not be lowered (running value {running}, wanted {wanted})",
         "write '>= {wanted}' to raise it only where it is lower, or leave the running value", False),
    Rule(("net.ipv4.tcp_fin_timeout",), BELOW, 10,
         "tcp_fin_timeout below {limit} s resets peers whose FIN arrives late and does not shorten TIME_WAIT (fixed 60 s)",
         "leave the default 60, or use 30 only when orphaned FIN_WAIT_2 sockets pile up", False),
    Rule(("net.ipv4.tcp_syn_retries",), BELOW, 3,
         "tcp_syn_retries {value} makes connect() fail after a few seconds on a single lost SYN",
         "keep the default 6 (at least {limit} fleet-wide); use TCP_SYNCNT or an application connect timeout per socket", False),
    Rule((RANGE_KEY,), STARTS_BELOW, UNPRIVILEGED_KEY,
         "the range starts at {start}, below ip_unprivileged_port_start {floor}",
         "start the range at 10240 or higher (for example '10240 65535')", False),
    Rule((RANGE_KEY,), OVER_LISTENERS, RESERVED_KEY,
         "the range covers port(s) {ports} used by local listeners, so a restarted service can fail with EADDRINUSE",
         "start the range above the listeners or list them in net.ipv4.ip_local_reserved_ports", False),
    # The tuning role's guards (were __tcp_tuning_guards in roles/tuning/vars/main.yml), in the role's own words.
    Rule((RANGE_KEY,), SAME_PARITY, None,
         "both ends of the range have the same parity; ip-sysctl.rst asks for one even and one odd value, and a low start "
         "overlaps local service ports (5432, 6379, 8080, 9090)",
         'use "10240 65535" (web) or "9000 65499" (database) and list local listeners in net.ipv4.ip_local_reserved_ports', True),
    Rule(("net.ipv4.tcp_synack_retries",), BELOW, 2,
         "with 1 SYN-ACK retransmit a half-open connection gives up after about 3 s, so one lost packet fails the handshake",
         "keep the default 5; use 2 or 3 only on SYN-flood-exposed edges", True),
    Rule(("net.netfilter.nf_conntrack_tcp_timeout_established",), BELOW, 3600,
         "established flows idle longer than this lose their conntrack entry, so NAT and stateful firewalls reset idle "
         "keep-alive connections (default keepalive is 2 h)",
         "86400 (kube-proxy's 24 h) or the kernel default 432000", True),
    Rule(("net.netfilter.nf_conntrack_tcp_timeout_close_wait",), BELOW, 60,
         "shortening the conntrack CLOSE_WAIT timeout breaks legitimate half-closed flows",
         "keep the default 60 or raise it (kube-proxy uses 3600)", True),
)
ROLE_GUARDS = tuple(rule for rule in RULES if rule.role_guard)
# Keys whose running value a rule reads even when the run does not set them (the caller puts them in ``current``):
# the keys named as thresholds, and both keys of an OFF_WHILE_ON rule.
CONTEXT_KEYS = tuple(sorted(set(rule.limit for rule in RULES if isinstance(rule.limit, str))
                            | set(key for rule in RULES if rule.test == OFF_WHILE_ON for key in rule.keys)))


def _ints(value):
    return catalog.as_ints(value or "") or []


def _one(value):
    ints = _ints(value)
    return ints[0] if len(ints) == 1 else None


def _each(rule, targets, judge):
    """The rule's keys the run sets whose value ``judge(key, value)`` finds harmful, with the fields it gives."""
    for key in rule.keys:
        if key in targets:
            fields = judge(key, targets[key])
            if fields is not None:
                yield key, fields


def _number(rule, targets, harmful):
    """``_each`` for tests of one integer: ``harmful(number)``."""
    return _each(rule, targets, lambda key, value: {} if _one(value) is not None and harmful(_one(value)) else None)


def _ports(rule, targets, judge):
    """``_each`` for tests of a range of two ports: ``judge(key, [low, high])``."""
    return _each(rule, targets, lambda key, value: judge(key, _ints(value)) if len(_ints(value)) == 2 else None)


def _running(key, targets, current):
    """The value ``key`` has once the run is done: the one the run sets, else the running one."""
    return targets.get(key, current.get(key))


def _below(rule, targets, current, listeners):
    return _number(rule, targets, lambda number: number < rule.limit)


def _other_than(rule, targets, current, listeners):
    return _number(rule, targets, lambda number: number != rule.limit)


def _lowered(rule, targets, current, listeners):
    def judge(key, value):
        wanted, running = _one(value), _one(current.get(key))
        if wanted is not None and running is not None and wanted < running:
            return {"running": running, "wanted": wanted}
        return None
    return _each(rule, targets, judge)


def _off_while_on(rule, targets, current, listeners):
    (key,) = rule.keys
    off = _ints(_running(key, targets, current)) == [0]
    on = _ints(_running(rule.limit, targets, current)) not in ([], [0])
    # Refused is what the run sets: the key itself, else the other one; a host that already runs both is left alone.
    refused = key if key in targets else rule.limit if rule.limit in targets else None
    return [(refused, {})] if off and on and refused else []


def _starts_below(rule, targets, current, listeners):
    def judge(key, ports):
        floor = (_ints(_running(rule.limit, targets, current)) or _ints(ABSENT[rule.limit]))[0]
        return {"start": ports[0], "floor": floor} if ports[0] < floor else None
    return _ports(rule, targets, judge)


def _over_listeners(rule, targets, current, listeners):
    def judge(key, ports):
        # An unchanged range is not judged again against today's listeners: the run would not move it.
        if targets[key] == current.get(key):
            return None
        reserved = catalog.port_set(_running(rule.limit, targets, current) or "")
        clash = sorted(port for port in listeners if ports[0] <= port <= ports[1] and port not in reserved)
        return {"ports": ", ".join(str(port) for port in clash[:10])} if clash else None
    return _ports(rule, targets, judge)


def _same_parity(rule, targets, current, listeners):
    return _ports(rule, targets, lambda key, ports: {} if ports[0] % 2 == ports[1] % 2 else None)


_VERDICTS = {
    BELOW: _below, OTHER_THAN: _other_than, LOWERED: _lowered, OFF_WHILE_ON: _off_while_on, STARTS_BELOW: _starts_below,
    OVER_LISTENERS: _over_listeners, SAME_PARITY: _same_parity,
}


def refusals(targets, current, listeners=(), rules=RULES):
    """Judge the values a run would set against ``rules``.

    ``targets`` maps dotted keys to the values the run would set; ``current`` maps keys to the running values (a key
    may be missing; the module adds CONTEXT_KEYS); ``listeners`` is the set of local listening TCP ports. A key gets
    at most one refusal, from the first rule in table order that finds its value harmful. Returns a list of
    ``{key, value, reason, suggestion}`` in table order.
    """
    refused, judged = [], set()
    for rule in rules:
        for key, fields in _VERDICTS[rule.test](rule, targets, current, listeners):
            if key in judged:
                continue
            judged.add(key)
            fields = dict(fields, key=key, value=targets[key], limit=rule.limit)
            refused.append({"key": key, "value": targets[key], "reason": rule.reason.format(**fields),
                            "suggestion": rule.suggestion.format(**fields)})
    return refused
