# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""linuxnet.tcp.tcp_diagnose on documents recorded in real network namespaces, with the role's built-in rules.

Paths in ``patches`` use ``/`` (sysctl keys contain dots) and must already exist in the recorded document.
"""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.tcp.plugins.filter import tcp_diagnose as plugin
from ansible_collections.linuxnet.tcp.plugins.plugin_utils import _rules

from ansible_collections.linuxnet.tcp.tests.unit.plugins.filter.audit_fixtures import builtin_rules, doc

# (case id, fixture, patches, overrides, expected rule ids in order, {rule id: substrings of its message/remedy})
CASES = [
    ("clean namespace", "clean", {}, {}, [], {}),
    ("storm: TIME_WAIT, ports, CLOSE_WAIT, accept queue, drift", "storm", {}, {},
     ["ephemeral_port_exhaustion", "time_wait_storm_client", "close_wait_leak", "accept_queue_full",
      "listen_overflows", "sysctl_drift", "narrow_port_range"],
     {"time_wait_storm_client": ["9000 sockets in TIME_WAIT on the client side", "9000 of them towards 127.0.0.1:3306",
                                 "tcp_tw_reuse is 0: every port waits the full 60 s", "net.ipv4.tcp_tw_reuse = 1 lets"],
      "ephemeral_port_exhaustion": ["9000 of 10000 local ports (90%) are held towards 127.0.0.1:3306",
                                    "0 by open connections and 9000 by TIME_WAIT sockets the kernel cannot reuse yet "
                                    "(tcp_tw_reuse is 0)", "now 50000-59999", "net.ipv4.tcp_tw_reuse = 1 (now 0)"],
      "close_wait_leak": ["leaky-app (", "holds 40 sockets in CLOSE_WAIT over 1 process(es) (pid ",
                          "towards 127.0.0.1:9200 (40)", "no sysctl fixes"],
      "accept_queue_full": ["Listener 127.0.0.1:8080 has 5 connections waiting", "backlog of 4",
                            "It should be accepted by slow-accept (pid", "sleeping, not waiting on it",
                            "somaxconn (now 4096)"],
      "listen_overflows": ["Full right now: 127.0.0.1:8080"],
      "sysctl_drift": ["net.ipv4.tcp_fin_timeout is 60 at runtime but /etc/sysctl.d/99-case.conf sets 30"]}),
    ("legacy settings and a TIME_WAIT bucket overflow", "legacy", {}, {},
     ["time_wait_bucket_overflow", "tcp_tw_recycle_configured", "fin_timeout_too_low", "tw_buckets_lowered",
      "syncookies_disabled", "tcp_timestamps_disabled", "somaxconn_low"],
     {"time_wait_bucket_overflow": ["destroyed 500 TIME_WAIT sockets", "net.ipv4.tcp_max_tw_buckets (1000) was reached"],
      "tcp_tw_recycle_configured": ["/etc/sysctl.d/99-case.conf sets net.ipv4.tcp_tw_recycle = 1"],
      "fin_timeout_too_low": ["tcp_fin_timeout is 5 s"]}),
    ("server-side TIME_WAIT below the default threshold, lowered by an override", "legacy", {},
     {"time_wait_storm_server": {"params": {"min_total": 500}}},
     ["time_wait_storm_server", "time_wait_bucket_overflow", "tcp_tw_recycle_configured", "fin_timeout_too_low",
      "tw_buckets_lowered", "syncookies_disabled", "tcp_timestamps_disabled", "somaxconn_low"],
     {"time_wait_storm_server": ["1000 sockets in TIME_WAIT on the server side", "1000 of them on local port 80",
                                 "tcp_tw_reuse does not apply", "tcp_max_tw_buckets (now 1000)"]}),
    # The namespace's own values (tcp_facts ephemeral_ports.reuse) decide what the storm rules say about reuse.
    ("client-side storm with tcp_tw_reuse already on", "storm", {"tcp/ephemeral_ports/reuse/tcp_tw_reuse": 1},
     {"ephemeral_port_exhaustion": {"enabled": False}},
     ["time_wait_storm_client", "close_wait_leak", "accept_queue_full", "listen_overflows", "sysctl_drift",
      "narrow_port_range"],
     {"time_wait_storm_client": ["tcp_tw_reuse is 1: a new connect() takes over", "tcp_tw_reuse is already 1"]}),
    ("client-side storm where timestamps block tcp_tw_reuse", "storm",
     {"tcp/ephemeral_ports/reuse/tcp_timestamps": 0, "sysctl/runtime/net.ipv4.tcp_timestamps": "0"},
     {"close_wait_leak": {"severity": "critical"}},
     ["ephemeral_port_exhaustion", "close_wait_leak", "time_wait_storm_client", "accept_queue_full",
      "listen_overflows", "sysctl_drift", "tcp_timestamps_disabled", "narrow_port_range"],
     {"time_wait_storm_client": ["tcp_timestamps is 0, so no TIME_WAIT port is ever reused",
                                 "Turn net.ipv4.tcp_timestamps back on first"],
      "ephemeral_port_exhaustion": ["(tcp_timestamps is 0)"]}),
    ("CLOSE_WAIT threshold above the leak", "storm", {}, {"close_wait_leak": {"params": {"min_count": 41}}},
     ["ephemeral_port_exhaustion", "time_wait_storm_client", "accept_queue_full", "listen_overflows",
      "sysctl_drift", "narrow_port_range"], {}),
    ("SYN cookies firing", "syncookies", {}, {}, ["syn_flood"],
     {"syn_flood": ["No listener has connection requests in SYN_RECV now", "300 SYNs were answered with a SYN cookie",
                    "300 cookies sent (300 came back valid", "tcp_syncookies = 1 (now 2)",
                    "tcp_max_syn_backlog (now 2048) does not bind here"]}),
    ("conntrack near full (real document, count raised)", "clean",
     {"tcp/conntrack/count": 235930, "tcp/conntrack/utilisation": 0.9}, {}, ["conntrack_near_full"],
     {"conntrack_near_full": ["235930 of 262144 entries (90%)"]}),
    ("orphans against tcp_max_orphans on the host", "host", {"tcp/counters/sockstat/orphan": 70000}, {},
     ["orphan_pressure"], {"orphan_pressure": ["70000 orphaned sockets", "tcp_max_orphans 131072"]}),
    ("orphan ratio is unknown in a child namespace (tcp_max_orphans is global)", "clean",
     {"tcp/counters/sockstat/orphan": 70000}, {}, [], {}),
    ("memory aborts alone raise orphan pressure", "clean", {"tcp/counters/TCPAbortOnMemory": 3}, {},
     ["orphan_pressure"], {"orphan_pressure": ["3 connections were reset for lack of memory"]}),
    ("tcp_tw_recycle still on (kernel before 4.12)", "legacy", {"sysctl/runtime/net.ipv4.tcp_fin_timeout": "60"},
     {"tcp_tw_recycle_configured": {"enabled": False}, "tw_buckets_lowered": {"severity": "info"}},
     ["time_wait_bucket_overflow", "syncookies_disabled", "tw_buckets_lowered", "tcp_timestamps_disabled",
      "somaxconn_low"], {}),
    ("SYN_RECV backlog without counters", "clean", {"tcp/states/SYN_RECV": 300}, {}, ["syn_flood"],
     {"syn_flood": ["No listener has connection requests in SYN_RECV now", "0 SYNs were answered"]}),
]


@pytest.mark.parametrize("name,fixture,patches,overrides,expected,texts", CASES, ids=[c[0] for c in CASES])
def test_builtin_rules_on_recorded_documents(name, fixture, patches, overrides, expected, texts):
    findings = plugin.tcp_diagnose(doc(fixture, **patches), builtin_rules(), overrides)
    assert [f["id"] for f in findings] == expected, name
    ranks = [_rules.SEVERITY_RANK[f["severity"]] for f in findings]
    assert ranks == sorted(ranks)
    by_id = {f["id"]: f for f in findings}
    for rule_id, needles in texts.items():
        text = by_id[rule_id]["message"] + " " + by_id[rule_id]["remedy"]
        for needle in needles:
            assert needle in text, f"{needle!r} not in {text!r}"
    for finding in findings:
        assert set(finding) == {"id", "severity", "title", "message", "remedy", "item"}
        assert "{" not in finding["message"] and "{" not in finding["remedy"]


def test_tcp_tw_recycle_on_an_old_kernel_is_critical():
    data = doc("legacy")
    data["sysctl"]["runtime"]["net.ipv4.tcp_tw_recycle"] = "1"
    data["sysctl"]["kernel"]["release"] = "4.9.0-19-amd64"
    findings = plugin.tcp_diagnose(data, builtin_rules())
    assert findings[0]["id"] == "tcp_tw_recycle_enabled" and findings[0]["severity"] == "critical"
    assert "kernel 4.9.0-19-amd64" in findings[0]["message"]
    assert "tcp_tw_recycle_configured" not in [f["id"] for f in findings]


def test_close_wait_item_is_the_process_record():
    findings = plugin.tcp_diagnose(doc("storm"), builtin_rules())
    leak = next(f for f in findings if f["id"] == "close_wait_leak")
    assert leak["item"]["name"] == "leaky-app" and leak["item"]["count"] == 40 and leak["item"]["processes"] == 1
    assert leak["item"]["remotes"][0] == {"address": "127.0.0.1", "port": 9200, "local_port": None, "count": 40}


def test_custom_rule_params_functions_and_format_specs():
    rules = [
        {"id": "listeners_with_owner", "severity": "info", "params": {"ports": [8080, 9200]},
         "query": "tcp.listeners[?contains(`$ports`, port)].{port: port, name: name, share: divide(queue, backlog)}",
         "message": "{item.name} on {item.port} queue {item.share:.0%}", "remedy": "first two: {tcp.listeners[0:2].port}"},
        {"id": "drifting_keys", "severity": "warning", "query": "to_entries(sysctl.drift)[].key",
         "message": "drift on {item.value}"},
        {"id": "divide_by_zero_is_null", "severity": "info", "query": "divide(`1`, `0`) || 'null'",
         "message": "{item.value}"},
    ]
    findings = plugin.tcp_diagnose(doc("storm"), rules)
    assert [(f["id"], f["message"]) for f in findings] == [
        ("drifting_keys", "drift on net.ipv4.tcp_fin_timeout"),
        ("listeners_with_owner", "slow-accept on 8080 queue 125%"),
        ("listeners_with_owner", "leaky-app on 9200 queue 0%"),
        ("divide_by_zero_is_null", "null"),
    ]
    assert findings[1]["remedy"] == "first two: [8080, 3306]"


def test_check_only_returns_effective_rules_and_ignores_the_input():
    rules = builtin_rules()
    out = plugin.tcp_diagnose(None, rules, {"close_wait_leak": {"params": {"min_count": 3}, "severity": "critical"},
                                            "somaxconn_low": {"enabled": False}}, check_only=True)
    by_id = {r["id"]: r for r in out}
    assert [r["id"] for r in out] == [r["id"] for r in rules]
    assert by_id["close_wait_leak"]["params"] == {"min_count": 3} and by_id["close_wait_leak"]["severity"] == "critical"
    assert by_id["somaxconn_low"]["enabled"] is False
    assert rules[[r["id"] for r in rules].index("close_wait_leak")]["params"] == {"min_count": 10}, "input changed"


GOOD = {"id": "ok", "severity": "info", "query": "tcp.states.total", "message": "{item.value}"}
ERRORS = [
    ("query does not compile", [dict(GOOD, id="broken_rule", query="tcp.states[?count >")], None,
     r"rule broken_rule: query does not compile: .*(Expecting|Unexpected|Invalid)"),
    ("unknown function", [dict(GOOD, id="bad_fn", query="nope(tcp)")], None, r"rule bad_fn: query failed on this host: .*nope"),
    ("placeholder does not compile", [dict(GOOD, id="bad_msg", message="{item.[}")], None,
     r"rule bad_msg: message placeholder \{item\.\[\} does not compile"),
    ("param missing", [dict(GOOD, id="no_param", query="tcp.states.total > `$limit`")], None,
     r"rule no_param: the query uses \$limit, which is not in its params"),
    ("bad severity", [dict(GOOD, severity="high")], None, r"rule ok: severity 'high' must be one of critical"),
    ("unknown key", [dict(GOOD, treshold=3)], None, r"rule ok: unknown keys treshold"),
    ("bad id", [dict(GOOD, id="Bad-Id")], None, r"rules\[0\]: rule id 'Bad-Id' must match"),
    ("duplicate id", [GOOD, GOOD], None, r"rule ok: defined twice"),
    ("message missing", [{"id": "m", "severity": "info", "query": "tcp"}], None, r"rule m: message is required"),
    ("override of an unknown rule", [GOOD], {"okay": {"enabled": False}}, r"override for unknown rule okay"),
    ("override with a bad severity", [GOOD], {"ok": {"severity": "fatal"}}, r"override for rule ok.*severity 'fatal'"),
    ("rules not a list", {"id": "x"}, None, r"rules must be a list"),
    ("renamed key", [dict(GOOD, id="old_key", query="sysctl.values.\"net.core.somaxconn\" == '128'")], None,
     r"rule old_key: query reads sysctl.values, which is now sysctl.runtime"),
    ("runtime type error", [dict(GOOD, id="typed", query="abs(tcp.states)")], None,
     r"rule typed: query failed on this host: .*abs"),
]


@pytest.mark.parametrize("name,rules,overrides,pattern", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_name_the_rule(name, rules, overrides, pattern):
    with pytest.raises(AnsibleFilterError, match=r"^linuxnet\.tcp\.tcp_diagnose: " + pattern):
        plugin.tcp_diagnose(doc("storm"), rules, overrides)


def test_compile_errors_come_before_any_evaluation():
    rules = [dict(GOOD, id="typed", query="abs(tcp.states)"), dict(GOOD, id="broken", query="tcp.[")]
    with pytest.raises(AnsibleFilterError, match="rule broken: query does not compile"):
        plugin.tcp_diagnose(doc("clean"), rules)
    with pytest.raises(AnsibleFilterError, match="rule broken: query does not compile"):
        plugin.tcp_diagnose({}, rules, check_only=True)


def test_input_must_be_a_document():
    with pytest.raises(AnsibleFilterError, match="the input must be a host document"):
        plugin.tcp_diagnose(["tcp"], [GOOD])


def test_missing_jmespath_is_reported_at_use_time(monkeypatch):
    monkeypatch.setattr(_rules, "jmespath", None)
    with pytest.raises(AnsibleFilterError, match=r"need the Python 'jmespath' package on the controller"):
        plugin.tcp_diagnose(doc("clean"), [GOOD])


def test_builtin_rules_are_well_formed_and_documented():
    rules = builtin_rules()
    compiled = _rules.compile_rules(rules)
    assert len(compiled) == len(rules) >= 15
    for rule in rules:
        assert rule.get("title") and rule.get("remedy"), rule["id"]


def test_filter_is_registered():
    assert plugin.FilterModule().filters() == {"tcp_diagnose": plugin.tcp_diagnose}
