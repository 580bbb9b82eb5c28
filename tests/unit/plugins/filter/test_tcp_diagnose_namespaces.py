# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rules on every container namespace of a host (tcp_facts namespaces=all), and the fleet report's containers."""
from __future__ import annotations

import jmespath
import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp import all_namespaces as _tcp_namespaces
from ansible_collections.linuxnet.tcp.plugins.module_utils._tcp.counters import KstatsError
from ansible_collections.linuxnet.tcp.plugins.plugin_utils import _fleet, _rules

from ansible_collections.linuxnet.tcp.tests.unit.plugins.filter.audit_fixtures import builtin_rules, doc

PODMAN_ID = "86bef0b4fed8a9ae2e55fc52a42c174e290e914a14e452d6bd01985fc872ccef"
POD_UID = "3a1f5c2e-8b4d-4e6f-9a0b-1c2d3e4f5a6b"


def namespace(recorded, inode, owner, values=None):
    """A namespace document as tcp_facts builds it, from a recorded host document's tcp facts."""
    tcp = doc(recorded)["tcp"]
    entry = {"inode": inode, "path": "/proc/%d/ns/net" % inode, "netns_name": None}
    full = {"processes": [{"pid": 4242, "comm": "java", "user": "root"}], "process_count": 3, "runtime": None,
            "container_id": None, "container_name": None, "pod_uid": None, "pod_name": None, "pod_namespace": None,
            "cgroup": None}
    full.update(owner)
    return _tcp_namespaces.compact(tcp, entry, full, values or {"net.ipv4.tcp_tw_reuse": "0", "net.ipv4.tcp_timestamps": "1"})


def host_with_containers():
    host = doc("clean")
    host["tcp"]["namespaces"] = [
        namespace("storm", 101, {"runtime": "podman", "container_id": PODMAN_ID, "container_name": "shop-api"}),
        namespace("clean", 102, {"runtime": "containerd", "container_id": "f" * 64, "pod_uid": POD_UID,
                                 "pod_name": "web-7d4b9", "pod_namespace": "shop"}),
    ]
    return host


def test_rules_run_on_each_namespace_and_name_its_owner():
    host = host_with_containers()
    findings = _rules.diagnose(host, builtin_rules())
    in_ns = [f for f in findings if f.get("namespace")]
    assert in_ns and all(f["namespace"]["inode"] == 101 for f in in_ns)  # the clean pod has none
    ids = [f["id"] for f in in_ns]
    assert "close_wait_leak" in ids and "time_wait_storm_client" in ids and "ephemeral_port_exhaustion" in ids
    # Rules about the sysctl files do not run on a container's namespace: its drift is not the host's.
    assert "sysctl_drift" not in ids
    leak = next(f for f in in_ns if f["id"] == "close_wait_leak")
    assert leak["message"].startswith("In podman shop-api: leaky-app (")
    assert "holds 40 sockets in CLOSE_WAIT over 1 process(es)" in leak["message"]
    assert leak["namespace"]["container_id"] == PODMAN_ID and leak["namespace"]["process"]["comm"] == "java"
    storm = next(f for f in in_ns if f["id"] == "time_wait_storm_client")
    assert "tcp_tw_reuse is 0" in storm["message"]  # the namespace's own sysctl, not the host's
    assert not [f for f in findings if not f.get("namespace")]  # the host itself is clean


def test_trouble_orders_the_namespaces():
    storm = namespace("storm", 101, {})
    clean = namespace("clean", 102, {})
    assert _tcp_namespaces.trouble(storm) > _tcp_namespaces.trouble(clean)
    assert storm["close_wait"]["by_process"] and len(storm["close_wait"]["by_process"]) <= _tcp_namespaces.TOP


def test_fleet_report_lists_the_containers_with_findings():
    host = host_with_containers()
    findings = _rules.diagnose(host, builtin_rules())
    summary = _fleet.host_summary("node-1", host["tcp"], host["sysctl"], findings, ["k8s"])
    assert summary["namespaces_scanned"] == 2
    rows = dict((row["inode"], row) for row in summary["namespaces"])
    assert rows[101]["label"] == "podman shop-api" and rows[101]["worst"] == "critical"
    # The finding's subject carries the container, so a comparison tells two containers' leaks apart.
    assert any(f["subject"].startswith("podman shop-api: ") for f in summary["findings"])
    view = _fleet.fleet_view([summary], [])
    containers = view["containers"]
    assert containers["namespaces_scanned"] == 2 and containers["hosts_scanned"] == 1
    assert [(r["host"], r["inode"]) for r in containers["with_findings"]] == [("node-1", 101)]
    assert containers["time_wait_leaders"][0]["inode"] == 101 and containers["close_wait_leaders"][0]["inode"] == 101


def test_a_namespace_keeps_every_counter_its_rules_read():
    """syn_flood reads TCPReqQFullDrop (and SyncookiesRecv in its message): a namespace's drops are found there too."""
    host = doc("clean")
    ns = namespace("clean", 103, {"runtime": "podman", "container_id": PODMAN_ID, "container_name": "edge"})
    assert ns["counters"] == doc("clean")["tcp"]["counters"]
    # A full SYN queue with cookies off counts TCPReqQFullDrop and, on the way out, ListenDrops (tcp_conn_request()).
    ns["counters"].update(TCPReqQFullDrop=40, SyncookiesSent=0, ListenDrops=ns["counters"]["ListenDrops"] + 40)
    host["tcp"]["namespaces"] = [ns]
    (flood,) = [f for f in _rules.diagnose(host, builtin_rules()) if f["id"] == "syn_flood"]
    assert flood["namespace"]["inode"] == 103 and flood["item"]["qfull"] == 40
    assert flood["item"]["dropped"] == 40 and flood["item"]["count"] == 40


def test_a_namespace_whose_counters_cannot_be_read_is_skipped_and_counted(monkeypatch):
    entries = [{"inode": 7, "path": "/proc/77/ns/net", "netns_name": None, "pids": [77]}]
    monkeypatch.setattr(_tcp_namespaces.namespaces, "enumerate_netns",
                        lambda root, limit, budget, clock, table: (list(entries), None,
                                                                   {"left_out": 0, "vanished": 0, "not_permitted": 0,
                                                                    "not_permitted_paths": []}))
    monkeypatch.setattr(_tcp_namespaces.namespaces, "owner", lambda root, entry, names, users: {})

    def gone(**_kwargs):
        raise KstatsError("cannot read /proc/net/netstat: file not found")
    monkeypatch.setattr(_tcp_namespaces, "gather", gone)
    docs, scan = _tcp_namespaces.gather_all(root="/")
    assert docs == [] and scan["vanished"] == 1 and "netstat" in scan["errors"][0]


@pytest.mark.parametrize("query, reads", [
    ("tcp.close_wait.by_process[?count >= `10`]", True),
    ("sysctl.runtime.a == '1' || tcp.counters.X > `0`", True),
    ("[{lower: tcp.a}] | [?lower != null]", True),
    ("to_number(sysctl.runtime.\"net.core.somaxconn\") < `1024`", False),
    ("sysctl.ipvs.tcp", False),  # a field named tcp, of something else
    ("sysctl.runtime[?tcp]", False),
    ("sort_by(sysctl.list, &tcp)", False),
    ("[{fix: 'the linuxnet.tcp.ipvs_timeouts module', s: sysctl.ipvs.tcp}]", False),  # "tcp." in a string
    ("`{\"tcp\": 1}`", False),
    ("@.tcp.states", True),
    ("sysctl | tcp", False),  # the pipe's right side reads sysctl's result, not the document
])
def test_a_rule_reads_tcp_when_its_parsed_query_does(query, reads):
    assert _rules.reads_root_field(jmespath.compile(query).parsed, "tcp") is reads
    rule = {"id": "probe", "severity": "info", "query": query, "message": "m"}
    assert _rules.CompiledRule(rule).per_namespace is reads


def test_rules_about_sysctl_alone_do_not_run_on_a_namespace():
    """A namespace has sysctl values of its own, here ones that trip four rules reading only sysctl, among them
    idle_timeout_order, whose query has "linuxnet.tcp." in a string. None of them runs on the namespace: only rules
    that read the socket table (tcp) do, and none of those finds anything in this clean one."""
    host = doc("clean")
    values = {"net.core.somaxconn": "128", "net.ipv4.tcp_syncookies": "0", "net.ipv4.tcp_fin_timeout": "5",
              "net.ipv4.tcp_keepalive_time": "7200", "net.netfilter.nf_conntrack_tcp_timeout_established": "3600"}
    ns = namespace("clean", 104, {"runtime": "podman", "container_id": PODMAN_ID, "container_name": "edge"}, values)
    host["tcp"]["namespaces"] = [ns]
    sysctl_only = ("somaxconn_low", "syncookies_disabled", "fin_timeout_too_low", "idle_timeout_order")
    compiled = {rule.id: rule for rule in _rules.compile_rules(builtin_rules())}
    # The namespace's values would give findings if those rules ran there.
    context = _rules.namespace_context(ns)
    assert [rule_id for rule_id in sysctl_only if compiled[rule_id].evaluate(context)] == list(sysctl_only)
    assert [rule_id for rule_id in sysctl_only if compiled[rule_id].per_namespace] == []
    assert compiled["close_wait_leak"].per_namespace and compiled["narrow_port_range"].per_namespace
    findings = _rules.diagnose(host, builtin_rules())
    assert [(f["id"], f["namespace"]["label"]) for f in findings if f.get("namespace")] == []
    assert findings == [], "the host itself is clean"


def test_namespace_leaders_of_two_hosts_sharing_an_inode():
    """A namespace's inode number is unique within one kernel only: two hosts' containers can have the same one, and
    each is its own row in the leaders (both lists together, each namespace once)."""
    hosts = {}
    for name in ("node-1", "node-2"):
        host = doc("clean")
        host["tcp"]["namespaces"] = [namespace("storm", 4026532301, {"runtime": "podman", "container_id": PODMAN_ID,
                                                                     "container_name": "shop-api"})]
        hosts[name] = host
    summaries = [_fleet.host_summary(name, host["tcp"], host["sysctl"], _rules.diagnose(host, builtin_rules()), ["k8s"])
                 for name, host in hosts.items()]
    containers = _fleet.fleet_view(summaries, [])["containers"]
    assert [(r["host"], r["inode"]) for r in containers["time_wait_leaders"]] == [("node-1", 4026532301), ("node-2", 4026532301)]
    assert [(r["host"], r["inode"]) for r in containers["close_wait_leaders"]] == [("node-1", 4026532301), ("node-2", 4026532301)]
    assert [(r["host"], r["inode"]) for r in containers["leaders"]] == [("node-1", 4026532301), ("node-2", 4026532301)]
