# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit rules of issue 15 over recorded host documents: runtime drift that another agent explains
(sysctl.writers built by _agents.writers_for() over the recorded agent trees), the order of idle timeouts
along the path (keep-alive < IPVS < conntrack, and the user's path timeouts), and a shortened conntrack
CLOSE_WAIT timeout."""
from __future__ import annotations

import copy
import os

import jmespath
import pytest

from ansible_collections.linuxnet.tcp.plugins.filter import tcp_diagnose as plugin
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import writers as _agents
from ansible_collections.linuxnet.tcp.plugins.plugin_utils import _rules

from ansible_collections.linuxnet.tcp.tests.unit.plugins.filter.audit_fixtures import ROOT, builtin_rules, doc

AGENT_TREES = os.path.join(ROOT, "tests", "unit", "fixtures", "agents")
NEW_RULES = ("sysctl_drift_by_agent", "idle_timeout_order", "conntrack_close_wait_shortened")


def rules(path_timeouts=()):
    """The built-in rules with tcp_audit_path_idle_timeouts filled in, as the role's templating does."""
    out = builtin_rules()
    for rule in out:
        if rule["id"] == "idle_timeout_order":
            assert rule["params"]["path_idle_timeouts"] == "{{ tcp_audit_path_idle_timeouts }}"
            rule["params"]["path_idle_timeouts"] = [{"name": n, "seconds": s} for n, s in path_timeouts]
    return out


def host(values=None, ipvs=None, drift=None, writers=None, fixture="clean"):
    data = copy.deepcopy(doc(fixture))
    data["sysctl"]["runtime"].update(values or {})
    data["sysctl"]["ipvs"] = ipvs
    if drift is not None:
        data["sysctl"]["drift"] = drift
    if writers is not None:
        data["sysctl"]["writers"] = writers
    return data


def findings(data, rule_set=None, only=NEW_RULES):
    return [f for f in plugin.tcp_diagnose(data, rule_set or rules()) if f["id"] in only]


def writers_of(case, drift):
    agents = _agents.detect(os.path.join(AGENT_TREES, case))
    return _agents.writers_for(drift, agents)


DRIFT = {"net.netfilter.nf_conntrack_max": {"runtime": "262144", "persisted": "131072",
                                            "file": "/etc/sysctl.d/90-linuxnet-tcp.conf"},
         "net.ipv4.tcp_fin_timeout": {"runtime": "60", "persisted": "30", "file": "/etc/sysctl.d/99-case.conf"}}


def test_drift_explained_by_kube_proxy():
    data = host(drift=DRIFT, writers=writers_of("kube-proxy-kubeadm-ipvs", DRIFT))
    assert list(data["sysctl"]["writers"]) == ["net.netfilter.nf_conntrack_max"]
    found = plugin.tcp_diagnose(data, rules())
    agent = [f for f in found if f["id"] == "sysctl_drift_by_agent"]
    assert len(agent) == 1 and agent[0]["severity"] == "warning"
    message, remedy = agent[0]["message"], agent[0]["remedy"]
    assert message.startswith("net.netfilter.nf_conntrack_max is 262144 at runtime, not the 131072 that "
                              "/etc/sysctl.d/90-linuxnet-tcp.conf sets, and another agent writes it: kube-proxy sets it to 262144 "
                              "(kube-proxy sets it at start: 65536 per core x 4 CPUs"), message
    assert "Set conntrack.maxPerCore (and conntrack.min) in kube-proxy's config (/var/lib/kube-proxy/config.conf)" in remedy, remedy
    assert "the agent writes the key again when it restarts" in remedy
    # The plain drift rule reports only the drift no agent explains: one finding per key.
    assert [f["item"]["key"] for f in found if f["id"] == "sysctl_drift"] == ["net.ipv4.tcp_fin_timeout"]


def test_drift_with_two_writers_and_a_runtime_tuner():
    drift = {"net.ipv4.ip_forward": {"runtime": "1", "persisted": "0", "file": "/etc/sysctl.d/10-hardening.conf"},
             "net.ipv4.tcp_rmem": {"runtime": "4096 131072 33554432", "persisted": "4096 131072 6291456",
                                   "file": "/etc/sysctl.d/90-linuxnet-tcp.conf"}}
    agents = []
    for case in ("docker-ipv6-no-userland-proxy", "kube-proxy-kubeadm-ipvs", "bpftune-all"):
        agents += _agents.detect(os.path.join(AGENT_TREES, case))
    data = host(drift=drift, writers=_agents.writers_for(drift, agents))
    by_key = {f["item"]["key"]: f for f in findings(data)}
    assert sorted(by_key) == ["net.ipv4.ip_forward", "net.ipv4.tcp_rmem"]
    forward = by_key["net.ipv4.ip_forward"]["message"]
    assert "dockerd sets it to 1 (dockerd sets it when it finds 0" in forward
    assert "; kube-proxy sets it to 1 (kube-proxy in IPVS mode" in forward
    assert '"ip-forward": false' in by_key["net.ipv4.ip_forward"]["remedy"]
    assert "bpftune changes it (bpftune tcp_buffer_tuner adjusts it at runtime" in by_key["net.ipv4.tcp_rmem"]["message"]


def test_no_agent_finding_without_writers_or_drift():
    assert findings(host(drift=DRIFT)) == []                                   # facts without sysctl.writers
    assert findings(host(drift={}, writers=writers_of("kube-proxy-kubeadm-ipvs", DRIFT))) == []


# (case, sysctl values, ipvs, path timeouts, expected (lower, higher) pairs)
TIMEOUT_CASES = [
    ("defaults without ip_vs or conntrack", {}, None, [], []),
    ("defaults with conntrack loaded", {"net.netfilter.nf_conntrack_tcp_timeout_established": "432000"}, None, [], []),
    ("IPVS defaults: 7200 s keep-alive against the 900 s IPVS timeout",
     {"net.netfilter.nf_conntrack_tcp_timeout_established": "432000"}, {"tcp": 900, "tcpfin": 120, "udp": 300}, [],
     [("net.ipv4.tcp_keepalive_time", "the IPVS TCP timeout")]),
    ("IPVS above conntrack", {"net.ipv4.tcp_keepalive_time": "300", "net.netfilter.nf_conntrack_tcp_timeout_established": "600"},
     {"tcp": 900, "tcpfin": 120, "udp": 300}, [], [("the IPVS TCP timeout", "net.netfilter.nf_conntrack_tcp_timeout_established")]),
    ("keep-alive above conntrack, no IPVS", {"net.netfilter.nf_conntrack_tcp_timeout_established": "3600"}, None, [],
     [("net.ipv4.tcp_keepalive_time", "net.netfilter.nf_conntrack_tcp_timeout_established")]),
    ("keep-alive equal to the IPVS timeout is not below it", {"net.ipv4.tcp_keepalive_time": "900"},
     {"tcp": 900, "tcpfin": 120, "udp": 300}, [], [("net.ipv4.tcp_keepalive_time", "the IPVS TCP timeout")]),
    ("AWS NLB 350 s on the path, the shortest counts", {"net.ipv4.tcp_keepalive_time": "600"}, None,
     [("Cloud NAT", 1200), ("AWS NLB", 350)], [("net.ipv4.tcp_keepalive_time", "the idle timeout of AWS NLB")]),
    ("everything in order", {"net.ipv4.tcp_keepalive_time": "300", "net.netfilter.nf_conntrack_tcp_timeout_established": "86400"},
     {"tcp": 900, "tcpfin": 120, "udp": 300}, [("AWS NLB", 350)], []),
    ("three pairs wrong at once", {"net.ipv4.tcp_keepalive_time": "7200", "net.netfilter.nf_conntrack_tcp_timeout_established": "600"},
     {"tcp": 900, "tcpfin": 120, "udp": 300}, [("AWS NLB", 350)],
     [("net.ipv4.tcp_keepalive_time", "the IPVS TCP timeout"),
      ("the IPVS TCP timeout", "net.netfilter.nf_conntrack_tcp_timeout_established"),
      ("net.ipv4.tcp_keepalive_time", "the idle timeout of AWS NLB")]),
]


@pytest.mark.parametrize("name, values, ipvs, paths, expected", TIMEOUT_CASES, ids=[c[0] for c in TIMEOUT_CASES])
def test_idle_timeout_order(name, values, ipvs, paths, expected):
    found = findings(host(values=values, ipvs=ipvs), rules(paths), only=("idle_timeout_order",))
    assert [(f["item"]["lower"], f["item"]["higher"]) for f in found] == expected, name


def test_idle_timeout_order_message_names_the_pair_and_the_fix():
    found = findings(host(values={"net.netfilter.nf_conntrack_tcp_timeout_established": "432000"},
                          ipvs={"tcp": 900, "tcpfin": 120, "udp": 300}), rules([("AWS NLB", 350)]), only=("idle_timeout_order",))
    assert [f["message"] for f in found] == [
        "net.ipv4.tcp_keepalive_time (7200 s) is not below the IPVS TCP timeout (900 s): IPVS forgets an idle connection "
        "before the first keep-alive probe, so the next request on a pooled connection is reset.",
        "net.ipv4.tcp_keepalive_time (7200 s) is not below the idle timeout of AWS NLB (350 s): that device drops an idle "
        "connection before the first keep-alive probe, so the next request on a pooled connection waits for a timeout or is reset."]
    assert found[0]["remedy"].startswith("Lower net.ipv4.tcp_keepalive_time (and the keep-alive interval of the application")
    assert "linuxnet.tcp.ipvs_timeouts" in found[0]["remedy"] and "SO_KEEPALIVE" in found[0]["remedy"]


def test_idle_timeout_order_with_the_raw_rule_file():
    """Read straight from vars/main.yml (the param still a Jinja string), the rule finds no path timeouts."""
    data = host(values={"net.ipv4.tcp_keepalive_time": "60"}, ipvs={"tcp": 900, "tcpfin": 120, "udp": 300})
    assert findings(data, builtin_rules(), only=("idle_timeout_order",)) == []


def test_path_timeouts_through_an_override():
    rule_set = rules()
    found = plugin.tcp_diagnose(host(), rule_set, {"idle_timeout_order": {"params": {"path_idle_timeouts": [
        {"name": "corporate proxy", "seconds": 3600}]}}})
    assert [f["item"]["higher"] for f in found if f["id"] == "idle_timeout_order"] == ["the idle timeout of corporate proxy"]


@pytest.mark.parametrize("value, fires", [("60", False), ("3600", False), ("59", True), ("10", True), (None, False)])
def test_conntrack_close_wait_shortened(value, fires):
    values = {} if value is None else {"net.netfilter.nf_conntrack_tcp_timeout_close_wait": value}
    found = findings(host(values=values), only=("conntrack_close_wait_shortened",))
    assert bool(found) is fires
    if fires:
        assert found[0]["message"].startswith("net.netfilter.nf_conntrack_tcp_timeout_close_wait is %s s, below the kernel "
                                              "default of 60 s" % value)
        assert "kube-proxy uses 3600" in found[0]["remedy"]


def test_recorded_documents_raise_none_of_the_new_rules():
    for name in ("clean", "storm", "legacy", "syncookies", "host"):
        assert findings(doc(name)) == [], name


def test_join_entries():
    options = _rules._options()
    result = jmespath.search("join_entries(a, b)", {"a": {"x": 1, "y": 2, "z": 3}, "b": {"z": [9], "x": "q"}}, options=options)
    assert result == [{"key": "x", "left": 1, "right": "q"}, {"key": "z", "left": 3, "right": [9]}]
    assert jmespath.search("join_entries(a, b)", {"a": {"x": 1}}, options=options) == []
