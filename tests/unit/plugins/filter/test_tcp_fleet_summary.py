# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""linuxnet.tcp.tcp_fleet_summary over recorded host documents and their real findings."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.tcp.plugins.filter import tcp_diagnose as diagnose_plugin
from ansible_collections.linuxnet.tcp.plugins.filter import tcp_fleet_summary as plugin

from audit_fixtures import builtin_rules, doc

FLEET = {"storm": "storm", "legacy": "legacy", "syncookies": "syncookies", "clean": "clean"}


def plain_fleet():
    out = {}
    for host, fixture in FLEET.items():
        data = doc(fixture)
        data["findings"] = diagnose_plugin.tcp_diagnose(data, builtin_rules())
        out[host] = data
    return out


def hostvars_fleet():
    """The shape of hostvars after the audit role: facts under ansible_facts, plus unrelated variables."""
    out = {}
    for host, data in plain_fleet().items():
        out[host] = {"inventory_hostname": host, "ansible_facts": {"tcp": data["tcp"], "sysctl": data["sysctl"],
                                                                   "tcp_findings": data["findings"]}}
    return out


@pytest.mark.parametrize("fleet", [plain_fleet, hostvars_fleet], ids=["plain documents", "hostvars"])
def test_fleet_summary(fleet):
    data = fleet()
    summary = plugin.tcp_fleet_summary(data)
    docs = {host: doc(fixture) for host, fixture in FLEET.items()}
    assert summary["hosts"] == 4 and summary["hosts_without_facts"] == []
    assert summary["states"]["TIME_WAIT"] == sum(d["tcp"]["states"]["TIME_WAIT"] for d in docs.values())
    assert summary["states"]["total"] == sum(d["tcp"]["states"]["total"] for d in docs.values())
    assert [row["host"] for row in summary["time_wait_leaders"]] == ["storm", "legacy", "syncookies"]
    assert summary["time_wait_leaders"][0]["top_remote"] == {"address": "127.0.0.1", "port": 3306, "count": 9000}
    assert summary["time_wait_leaders"][1]["top_remote"]["port"] is None  # server side
    (leader,) = summary["close_wait_leaders"]
    assert leader["host"] == "storm" and leader["total"] == 40 and leader["top_process"]["name"] == "leaky-app"
    assert leader["top_remote"] == {"address": "127.0.0.1", "port": 9200, "count": 40}
    assert summary["findings"] == {"critical": 1, "warning": 11, "info": 3}
    assert [f["host"] for f in summary["findings_by_severity"]["critical"]] == ["storm"]
    assert {f["id"] for f in summary["findings_by_severity"]["warning"] if f["host"] == "syncookies"} == {"syn_flood"}
    assert [row["host"] for row in summary["per_host"]] == ["storm", "legacy", "syncookies", "clean"]
    assert [row["worst"] for row in summary["per_host"]] == ["critical", "warning", "warning", None]
    clean = summary["per_host"][-1]
    assert clean["findings"] == {"critical": 0, "warning": 0, "info": 0} and clean["kernel"] and clean["backend"] == "netlink"


def test_hosts_order_top_and_hosts_without_facts():
    data = plain_fleet()
    data["down"] = {"inventory_hostname": "down"}
    summary = plugin.tcp_fleet_summary(data, ["clean", "storm", "down", "missing"], 1)
    assert summary["hosts"] == 2
    assert summary["hosts_without_facts"] == ["down", "missing"]
    assert [row["host"] for row in summary["time_wait_leaders"]] == ["storm"]
    assert summary["states"]["TIME_WAIT"] == doc("storm")["tcp"]["states"]["TIME_WAIT"]


def test_details_carry_each_hosts_documents():
    data = hostvars_fleet()
    summary = plugin.tcp_fleet_summary(data, ["storm", "clean"], 10, True)
    assert set(summary["details"]) == {"storm", "clean"}
    assert summary["details"]["storm"]["tcp"] == doc("storm")["tcp"]
    assert summary["details"]["storm"]["sysctl"] == doc("storm")["sysctl"]
    assert summary["details"]["storm"]["findings"] == data["storm"]["ansible_facts"]["tcp_findings"]
    assert "details" not in plugin.tcp_fleet_summary(data)


def test_hostvars_facts_win_over_a_play_variable_named_tcp():
    data = hostvars_fleet()
    data["clean"]["tcp"] = {"states": {"total": 999999}}
    summary = plugin.tcp_fleet_summary(data, ["clean"])
    assert summary["states"]["total"] == doc("clean")["tcp"]["states"]["total"]


def test_empty_fleet():
    summary = plugin.tcp_fleet_summary({})
    assert summary["hosts"] == 0 and summary["per_host"] == [] and summary["states"]["total"] == 0
    assert summary["findings"] == {"critical": 0, "warning": 0, "info": 0}


def test_input_must_be_a_mapping():
    with pytest.raises(AnsibleFilterError, match="must be a mapping of host name"):
        plugin.tcp_fleet_summary(["storm"])


def test_filter_is_registered():
    assert plugin.FilterModule().filters() == {"tcp_fleet_summary": plugin.tcp_fleet_summary}
