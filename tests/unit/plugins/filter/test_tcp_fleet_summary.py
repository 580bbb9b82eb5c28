# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""linuxnet.tcp.tcp_fleet_summary over recorded host documents and their real findings: summaries, ranking, the
views by rule and by group, the comparison with an earlier report, and the merge of sliced reports."""
from __future__ import annotations

import copy
import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.tcp.plugins.filter import tcp_diagnose as diagnose_plugin
from ansible_collections.linuxnet.tcp.plugins.filter import tcp_fleet_summary as plugin
from ansible_collections.linuxnet.tcp.plugins.plugin_utils import _fleet

from ansible_collections.linuxnet.tcp.tests.unit.plugins.filter.audit_fixtures import builtin_rules, doc, simulated_fleet

FLEET = {"storm": "storm", "legacy": "legacy", "syncookies": "syncookies", "clean": "clean"}
SIMULATED = 300


def plain_fleet():
    out = {}
    for host, fixture in FLEET.items():
        data = doc(fixture)
        data["findings"] = diagnose_plugin.tcp_diagnose(data, builtin_rules())
        out[host] = data
    return out


def hostvars_fleet():
    """The shape of hostvars after the audit role: facts under ansible_facts, group_names, unrelated variables."""
    out = {}
    for host, data in plain_fleet().items():
        out[host] = {"inventory_hostname": host, "group_names": ["web"] if host != "storm" else ["db", "web"],
                     "ansible_facts": {"tcp": data["tcp"], "sysctl": data["sysctl"], "tcp_findings": data["findings"]}}
    return out


@pytest.fixture(scope="module")
def simulated():
    return simulated_fleet(SIMULATED)


def json_round_trip(value):
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("fleet", [plain_fleet, hostvars_fleet], ids=["plain documents", "hostvars"])
def test_fleet_report(fleet):
    data = fleet()
    report = plugin.tcp_fleet_summary(data)
    view = report["fleet"]
    docs = {host: doc(fixture) for host, fixture in FLEET.items()}
    assert report["schema"] == "linuxnet.tcp.audit/2" and report["comparison"] is None
    assert view["hosts"] == 4 and view["hosts_without_facts"] == []
    assert view["states"]["TIME_WAIT"] == sum(d["tcp"]["states"]["TIME_WAIT"] for d in docs.values())
    assert view["states"]["total"] == sum(d["tcp"]["states"]["total"] for d in docs.values())
    assert [row["host"] for row in view["time_wait_leaders"]] == ["storm", "legacy", "syncookies"]
    assert view["time_wait_leaders"][0]["top_remote"] == {"address": "127.0.0.1", "port": 3306, "count": 9000,
                                                          "text": "127.0.0.1:3306"}
    assert view["time_wait_leaders"][1]["top_remote"]["text"] == "from 127.0.0.1 (inbound)"  # server side
    (leader,) = view["close_wait_leaders"]
    assert leader["host"] == "storm" and leader["total"] == 40 and leader["top_process"]["name"] == "leaky-app"
    assert leader["top_remote"]["text"] == "127.0.0.1:9200"
    assert view["findings"] == {"critical": 1, "warning": 11, "info": 3}
    assert view["hosts_by_worst"] == {"critical": 1, "warning": 2, "info": 0, "none": 1}
    assert [s["host"] for s in report["hosts"]] == ["storm", "legacy", "syncookies", "clean"]
    assert [s["worst"] for s in report["hosts"]] == ["critical", "warning", "warning", None]
    clean = report["hosts"][-1]
    assert clean["counts"] == {"critical": 0, "warning": 0, "info": 0} and clean["kernel"] and clean["backend"] == "netlink"
    storm = report["hosts"][0]
    leak = next(f for f in storm["findings"] if f["id"] == "close_wait_leak")
    assert leak["subject"] == "leaky-app (root)" and leak["magnitude"] == 40 and leak["item"]["name"] == "leaky-app"
    assert "details" not in report


def test_findings_grouped_by_rule_with_the_remedy_once(simulated):
    report = plugin.tcp_fleet_summary(simulated, rules=builtin_rules())
    by_rule = {r["id"]: r for r in report["fleet"]["by_rule"]}
    storms = [h for h, d in simulated.items() if d["tcp"]["time_wait"]["total"] >= 5000 and d["groups"][0] == "db"]
    leak = by_rule["close_wait_leak"]
    assert leak["hosts"] == len(storms) == report["fleet"]["hosts_by_worst"]["critical"]
    assert sorted(leak["affected"]) == sorted(storms)
    # Worst first: the biggest leak (the scale of simulated_fleet runs up to 7 x 40 sockets).
    assert [w["magnitude"] for w in leak["worst"]] == sorted((w["magnitude"] for w in leak["worst"]), reverse=True)
    assert leak["worst"][0]["magnitude"] == 280 and len(leak["worst"]) == 20
    assert leak["remedy"].count("An application bug") == 1 and leak["example_host"] == leak["worst"][0]["host"]
    # Most severe first, then the rules that reach more hosts.
    ranks = [(_fleet.SEVERITY_RANK[r["severity"]], -r["hosts"]) for r in report["fleet"]["by_rule"]]
    assert ranks == sorted(ranks)
    assert report["fleet"]["by_rule"][0]["id"] == "ephemeral_port_exhaustion"
    assert [r["id"] for r in report["rules"]] == [r["id"] for r in builtin_rules()]


def test_hosts_ranked_by_trouble_with_natural_names(simulated):
    report = plugin.tcp_fleet_summary(simulated)
    hosts = report["hosts"]
    assert len(hosts) == SIMULATED
    keys = [(_fleet.SEVERITY_RANK.get(h["worst"], 3), -h["counts"]["critical"], -h["counts"]["warning"],
             -h["counts"]["info"], -h["trouble"]) for h in hosts]
    assert keys == sorted(keys)
    critical = [h for h in hosts if h["worst"] == "critical"]
    # Among equals by severity and counts, more sockets in trouble first.
    assert [h["trouble"] for h in critical] == sorted((h["trouble"] for h in critical), reverse=True)
    # Names sort naturally where everything else is equal: cache4 before cache9 before cache14.
    quiet = [h["host"] for h in hosts if h["worst"] is None and h["host"].startswith("cache")]
    assert quiet == sorted(quiet, key=lambda name: int(name[5:]))
    assert quiet[:3] == ["cache4", "cache9", "cache14"]
    assert _fleet.natural_key("web2") < _fleet.natural_key("web10") < _fleet.natural_key("Web11")


def test_breakdown_by_inventory_group(simulated):
    report = plugin.tcp_fleet_summary(simulated)
    groups = {g["group"]: g for g in report["fleet"]["groups"]}
    assert set(groups) == {"db", "web", "cache", "site1", "site2", "site3"}
    db = groups["db"]
    members = [d for d in simulated.values() if "db" in d["groups"]]
    assert db["hosts"] == len(members) == db["hosts_by_worst"]["critical"]
    assert db["TIME_WAIT"] == sum(d["tcp"]["states"]["TIME_WAIT"] for d in members)
    assert db["rules"][0]["hosts"] == len(members)
    assert groups["cache"]["hosts_by_worst"]["none"] == groups["cache"]["hosts"]
    assert sum(groups["site%d" % n]["hosts"] for n in (1, 2, 3)) == SIMULATED
    # Groups with critical hosts first.
    assert report["fleet"]["groups"][0]["group"] == "db"


def test_chart_and_leaders_keep_the_top_and_sum_up_the_rest(simulated):
    report = plugin.tcp_fleet_summary(simulated, top=5, report_top=10)
    view = report["fleet"]
    totals = sorted((d["tcp"]["states"]["total"] for d in simulated.values()), reverse=True)
    assert [row["total"] for row in view["chart"]["rows"]] == totals[:10]
    assert view["chart"]["rest"]["hosts"] == SIMULATED - 10 and view["chart"]["rest"]["total"] == sum(totals[10:])
    tw = sorted((d["tcp"]["time_wait"]["total"] for d in simulated.values() if d["tcp"]["time_wait"]["total"]), reverse=True)
    assert [row["total"] for row in view["time_wait_leaders"]] == tw[:5]
    assert view["time_wait_rest"] == {"hosts": len(tw) - 5, "total": sum(tw[5:])}
    assert report["options"] == {"top": 5, "report_top": 10, "growth": 0.2}


def test_hosts_order_top_and_hosts_without_facts():
    data = plain_fleet()
    data["down"] = {"inventory_hostname": "down"}
    report = plugin.tcp_fleet_summary(data, ["clean", "storm", "down", "missing"], 1)
    view = report["fleet"]
    assert view["hosts"] == 2 and [s["host"] for s in report["hosts"]] == ["storm", "clean"]
    assert view["hosts_without_facts"] == ["down", "missing"]
    assert [row["host"] for row in view["time_wait_leaders"]] == ["storm"]
    assert view["states"]["TIME_WAIT"] == doc("storm")["tcp"]["states"]["TIME_WAIT"]


def test_details_only_when_asked():
    data = hostvars_fleet()
    report = plugin.tcp_fleet_summary(data, ["storm", "clean"], 10, True)
    assert set(report["details"]) == {"storm", "clean"}
    assert report["details"]["storm"]["tcp"] == doc("storm")["tcp"]
    assert report["details"]["storm"]["sysctl"] == doc("storm")["sysctl"]
    assert "details" not in plugin.tcp_fleet_summary(data)


def test_hostvars_facts_win_over_a_play_variable_named_tcp():
    data = hostvars_fleet()
    data["clean"]["tcp"] = {"states": {"total": 999999}}
    report = plugin.tcp_fleet_summary(data, ["clean"])
    assert report["fleet"]["states"]["total"] == doc("clean")["tcp"]["states"]["total"]


def test_inbound_close_wait_names_the_local_port():
    """Facts of tcp_facts with local_port (inbound CLOSE_WAIT: the peer is a client, port is null) and without it
    (facts cached by an older collection)."""
    data = doc("storm")
    for proc in (data["tcp"]["close_wait"]["by_process"][0], data["tcp"]["close_wait"]["by_program"][0]):
        proc["remotes"] = [{"address": "10.0.0.7", "port": None, "local_port": 8080, "count": 40}]
    data["findings"] = diagnose_plugin.tcp_diagnose(data, builtin_rules())
    older = copy.deepcopy(data)
    del older["tcp"]["close_wait"]["by_program"]  # facts cached before tcp_facts gave by_program: judged per process
    del older["tcp"]["close_wait"]["by_process"][0]["remotes"][0]["local_port"]
    older["findings"] = diagnose_plugin.tcp_diagnose(older, builtin_rules())
    report = plugin.tcp_fleet_summary({"new": data, "old": older})
    rows = {row["host"]: row for row in report["fleet"]["close_wait_leaders"]}
    assert rows["new"]["top_remote"]["text"] == "from 10.0.0.7 to local port 8080"
    assert rows["old"]["top_remote"]["text"] == "from 10.0.0.7 (inbound)"
    messages = {s["host"]: next(f["message"] for f in s["findings"] if f["id"] == "close_wait_leak")
                for s in report["hosts"]}
    assert "most of them from 10.0.0.7 to local port 8080 (40)" in messages["new"], messages["new"]
    assert "most of them from 10.0.0.7 (inbound) (40)" in messages["old"], messages["old"]
    assert ":-" not in messages["new"] + messages["old"] and "10.0.0.7:" not in messages["new"] + messages["old"]
    assert _fleet.endpoint({"address": "::1", "port": 443}) == "[::1]:443"


def test_comparison_new_resolved_grown(simulated, tmp_path):
    before = plugin.tcp_fleet_summary(simulated)
    before["generated"] = "2026-10-01T00:00:00Z"
    after_data = copy.deepcopy(simulated)
    # web1 (legacy) gets fixed; cache4 gains a CLOSE_WAIT leak; the biggest storm host's leak grows by half.
    after_data["web1"]["findings"] = []
    leak = diagnose_plugin.tcp_diagnose(doc("storm"), builtin_rules())
    after_data["cache4"]["findings"] = [f for f in leak if f["id"] == "close_wait_leak"]
    storm = next(h for h in before["hosts"] if h["worst"] == "critical")["host"]
    for finding in after_data[storm]["findings"]:
        if finding["id"] == "close_wait_leak":
            finding["item"] = dict(finding["item"], count=finding["item"]["count"] * 3 // 2)
    del after_data["cache9"]
    after_data["cache9999"] = copy.deepcopy(simulated["cache14"])
    path = tmp_path / "report.json"
    path.write_text(json.dumps(before))
    report = plugin.tcp_fleet_summary(after_data, compare_with=str(path))
    cmp = report["comparison"]
    assert cmp["available"] and cmp["previous"] == {"generated": "2026-10-01T00:00:00Z", "hosts": SIMULATED,
                                                    "source": str(path)}
    assert [(c["host"], c["id"], c["subject"]) for c in cmp["new"]] == [("cache4", "close_wait_leak", "leaky-app (root)")]
    assert {c["host"] for c in cmp["resolved"]} == {"web1"}
    assert {c["id"] for c in cmp["resolved"]} == {f["id"] for f in simulated["web1"]["findings"]}
    (grown,) = cmp["grown"]
    assert grown["host"] == storm and grown["id"] == "close_wait_leak" and grown["magnitude"] == grown["before"] * 3 // 2
    assert cmp["hosts_added"] == ["cache9999"] and cmp["hosts_removed"] == ["cache9"]
    assert cmp["counts"] == {"new": 1, "resolved": len(cmp["resolved"]), "grown": 1}
    assert cmp["by_rule"]["close_wait_leak"] == {"new": 1, "resolved": 0, "grown": 1}
    assert cmp["by_host"]["web1"]["resolved"] == len(cmp["resolved"])
    # A growth below the threshold is noise, not "grown".
    assert plugin.tcp_fleet_summary(after_data, compare_with=str(path), growth=0.6)["comparison"]["grown"] == []
    # The same fleet against itself: nothing changed.
    same = plugin.tcp_fleet_summary(simulated, compare_with=before)["comparison"]
    assert same["counts"] == {"new": 0, "resolved": 0, "grown": 0} and not same["hosts_added"] + same["hosts_removed"]


def test_comparison_with_a_schema_1_report():
    """The report of the previous collection release: findings_by_severity lists every finding with its host."""
    data = plain_fleet()
    old = {"schema": "linuxnet.tcp.audit/1", "generated": "2026-09-01T00:00:00Z", "fleet": {
        "per_host": [{"host": host} for host in data],
        "findings_by_severity": {"critical": [], "info": [],
                                 "warning": [dict(f, host="storm") for f in data["storm"]["findings"]
                                             if f["id"] == "close_wait_leak"]}}}
    cmp = plugin.tcp_fleet_summary(data, compare_with=old)["comparison"]
    assert cmp["previous"]["hosts"] == 4 and not cmp["hosts_added"]
    assert not [c for c in cmp["new"] if c["id"] == "close_wait_leak"]
    assert {c["host"] for c in cmp["new"]} == {"storm", "legacy", "syncookies"}


def test_comparison_without_a_previous_report(tmp_path):
    report = plugin.tcp_fleet_summary(plain_fleet(), compare_with=str(tmp_path / "none.json"))
    assert report["comparison"] == {"available": False, "note": "no previous report at %s" % (tmp_path / "none.json")}
    assert plugin.tcp_fleet_summary(plain_fleet(), compare_with="")["comparison"] is None


@pytest.mark.parametrize("content, message", [
    ("not json", "is not JSON"),
    ('{"schema": "something/else"}', "is not a linuxnet.tcp.audit report"),
    ("[1, 2]", "is not a linuxnet.tcp.audit report"),
])
def test_comparison_with_a_file_that_is_not_a_report(tmp_path, content, message):
    path = tmp_path / "report.json"
    path.write_text(content)
    with pytest.raises(AnsibleFilterError, match="compare_with: .*%s" % message):
        plugin.tcp_fleet_summary(plain_fleet(), compare_with=str(path))


def test_merge_of_slices_equals_one_run(simulated, tmp_path):
    """AWX slicing: slice k of n gets every n-th host. Each slice's report goes through JSON (a file or a workflow
    artifact); the merge must be the report of one run over all hosts, apart from the slices' own timestamps."""
    rules = diagnose_plugin.tcp_diagnose({}, builtin_rules(), check_only=True)
    names = sorted(simulated, key=_fleet.natural_key)
    whole = plugin.tcp_fleet_summary(simulated, names + ["down1"], 7, False, 15, rules=rules)
    slices = []
    for k in range(3):
        part = names[k::3]
        report = plugin.tcp_fleet_summary(simulated, part + (["down1"] if k == 1 else []), 7, False, 15, rules=rules)
        report.update(generated="2026-10-01T00:0%d:00Z" % k, fail_on="never", ansible_version="2.19")
        slices.append(json_round_trip(report))
    path = tmp_path / "slice2.json"
    path.write_text(json.dumps(slices[2]))
    merged = plugin.tcp_fleet_summary([slices[0], slices[1], str(path)])
    assert merged.pop("merged_from") == [{"source": None, "generated": "2026-10-01T00:00:00Z", "hosts": 100},
                                         {"source": None, "generated": "2026-10-01T00:01:00Z", "hosts": 100},
                                         {"source": str(path), "generated": "2026-10-01T00:02:00Z", "hosts": 100}]
    assert merged.pop("fail_on") == "never"
    assert merged == json_round_trip(whole)
    assert merged["fleet"]["hosts_without_facts"] == ["down1"] and merged["options"]["top"] == 7


def test_merge_takes_a_host_from_the_latest_report_and_expands_patterns(tmp_path):
    data = plain_fleet()
    early = plugin.tcp_fleet_summary(data, ["storm", "clean"])
    late = plugin.tcp_fleet_summary({"storm": dict(doc("clean"), findings=[])}, ["storm"])
    for name, report, stamp in (("a", late, "2026-10-02T00:00:00Z"), ("b", early, "2026-10-01T00:00:00Z")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(dict(report, generated=stamp)))
    merged = plugin.tcp_fleet_summary([str(tmp_path / "*" / "report.json")])
    assert [s["host"] for s in merged["hosts"]] == ["clean", "storm"]
    assert next(s for s in merged["hosts"] if s["host"] == "storm")["worst"] is None
    with pytest.raises(AnsibleFilterError, match="the pattern .*nothing.* matches no file"):
        plugin.tcp_fleet_summary([str(tmp_path / "nothing" / "*.json")])


@pytest.mark.parametrize("reports, message", [
    ([], "no report to merge"),
    ([{"schema": "linuxnet.tcp.audit/1", "fleet": {}}], "only linuxnet.tcp.audit/2 reports carry"),
    ([42], r"reports\[0\] must be a report document or the path"),
])
def test_merge_refuses_what_it_cannot_merge(reports, message):
    with pytest.raises(AnsibleFilterError, match=message):
        plugin.tcp_fleet_summary(reports)


@pytest.mark.parametrize("options, message", [
    ({"top": -1}, "top must be an integer of at least 0"),
    ({"report_top": 0}, "report_top must be an integer of at least 1"),
    ({"growth": -0.5}, "growth must be a number of at least 0"),
    ({"top": "many"}, "bad option value"),
])
def test_bad_options_name_the_option(options, message):
    with pytest.raises(AnsibleFilterError, match=message):
        plugin.tcp_fleet_summary(plain_fleet(), **options)


def test_empty_fleet():
    report = plugin.tcp_fleet_summary({})
    view = report["fleet"]
    assert view["hosts"] == 0 and report["hosts"] == [] and view["states"]["total"] == 0
    assert view["findings"] == {"critical": 0, "warning": 0, "info": 0} and view["by_rule"] == []
    assert view["chart"] == {"rows": [], "rest": {"hosts": 0, "states": view["chart"]["rest"]["states"], "total": 0}}


def test_input_must_be_a_mapping_or_a_list():
    with pytest.raises(AnsibleFilterError, match="must be a mapping of host name"):
        plugin.tcp_fleet_summary("storm")


def test_filter_is_registered():
    assert plugin.FilterModule().filters() == {"tcp_fleet_summary": plugin.tcp_fleet_summary}


def test_diagnose_in_the_same_pass_with_overrides_per_host():
    """Cached facts without findings: the rules run here, with a host's own overrides when its data has them."""
    data = {host: {"ansible_facts": {"tcp": d["tcp"], "sysctl": d["sysctl"]}, "group_names": ["web"]}
            for host, d in plain_fleet().items()}
    data["storm"]["audit_overrides"] = {"close_wait_leak": {"params": {"min_count": 41}}}
    spec = {"rules": builtin_rules(), "overrides": {"somaxconn_low": {"enabled": False}}, "overrides_var": "audit_overrides"}
    report = plugin.tcp_fleet_summary(data, diagnose=spec)
    found = {s["host"]: [f["id"] for f in s["findings"]] for s in report["hosts"]}
    expected = {host: [f["id"] for f in d["findings"]] for host, d in plain_fleet().items()}
    assert found["storm"] == [i for i in expected["storm"] if i != "close_wait_leak"], "its own overrides"
    assert found["legacy"] == [i for i in expected["legacy"] if i != "somaxconn_low"], "the shared overrides"
    assert found["syncookies"] == expected["syncookies"] and found["clean"] == []
    with pytest.raises(AnsibleFilterError, match="diagnose: unknown keys colour"):
        plugin.tcp_fleet_summary(data, diagnose=dict(spec, colour="red"))
    with pytest.raises(AnsibleFilterError, match="storm: override for unknown rule no_such_rule"):
        data["storm"]["audit_overrides"] = {"no_such_rule": {}}
        plugin.tcp_fleet_summary(data, diagnose=spec)


def test_settings_group_hosts_by_value():
    data = hostvars_fleet()
    data["storm"]["tcp_audit_fail_on"] = "critical"
    data["legacy"]["tcp_audit_textfile_dir"] = "/var/lib/node_exporter"
    defaults = {"tcp_audit_fail_on": "never", "tcp_audit_textfile_dir": "", "tcp_audit_local_facts": False}
    report = plugin.tcp_fleet_summary(data, settings=defaults)
    assert report["settings"] == {
        "tcp_audit_fail_on": {'"critical"': ["storm"], '"never"': ["clean", "legacy", "syncookies"]},
        "tcp_audit_textfile_dir": {'"/var/lib/node_exporter"': ["legacy"], '""': ["clean", "storm", "syncookies"]},
        "tcp_audit_local_facts": {"false": ["clean", "legacy", "storm", "syncookies"]}}
    assert "settings" not in plugin.tcp_fleet_summary(data)


def test_settings_take_the_type_of_their_default():
    """-e tcp_audit_local_facts=true and an INI inventory give the string "true"; the role reads it with | bool and
    selects the hosts under the JSON key true, so the value is converted as | bool converts it (not skipped as
    '"true"'), and a number given for a text setting is its text."""
    data = hostvars_fleet()
    data["storm"]["tcp_audit_local_facts"] = "true"
    data["legacy"]["tcp_audit_local_facts"] = "no"
    data["syncookies"]["tcp_audit_local_facts"] = "1"
    data["clean"]["tcp_audit_textfile_dir"] = 7
    report = plugin.tcp_fleet_summary(data, settings={"tcp_audit_local_facts": False, "tcp_audit_textfile_dir": ""})
    assert report["settings"] == {"tcp_audit_local_facts": {"true": ["storm", "syncookies"], "false": ["clean", "legacy"]},
                                  "tcp_audit_textfile_dir": {'"7"': ["clean"], '""': ["legacy", "storm", "syncookies"]}}
    # The default itself is taken as it is, for the hosts without a value.
    report = plugin.tcp_fleet_summary(hostvars_fleet(), settings={"tcp_audit_local_facts": True})
    assert report["settings"] == {"tcp_audit_local_facts": {"true": ["clean", "legacy", "storm", "syncookies"]}}


def finding(rule_id, severity, magnitude, name="app"):
    return {"id": rule_id, "severity": severity, "title": rule_id.replace("_", " "), "message": "%s: %s" % (name, magnitude),
            "remedy": "fix %s" % rule_id, "item": {"name": name, "user": "root", "count": magnitude}}


def with_findings(*findings):
    data = doc("clean")
    data["findings"] = list(findings)
    return data


def test_a_rules_severity_is_its_most_severe_finding():
    """Overrides per host (per group) can give a rule several severities; the first-ranked host's is not the rule's."""
    data = {"a": with_findings(finding("tcp_tw_recycle_enabled", "critical", None), finding("close_wait_leak", "info", 50)),
            "b": with_findings(finding("close_wait_leak", "warning", 10)),
            "c": with_findings(finding("close_wait_leak", "info", 5))}
    report = plugin.tcp_fleet_summary(data)
    assert [s["host"] for s in report["hosts"]] == ["a", "b", "c"]
    assert [(r["id"], r["severity"], r["hosts"]) for r in report["fleet"]["by_rule"]] == [
        ("tcp_tw_recycle_enabled", "critical", 1), ("close_wait_leak", "warning", 3)]
    # The worst case (and its message) is still the biggest one, whatever its severity.
    leak = report["fleet"]["by_rule"][1]
    assert leak["example_host"] == "a" and leak["message"] == "app: 50"


def test_worst_hosts_name_each_host_once():
    """A host with four findings of one rule is one of the rule's hosts: the worst hosts list it once (with its biggest
    finding), where the per-finding rows (worst) list it four times."""
    data = {"h1": with_findings(*[finding("close_wait_leak", "warning", 90 - 10 * n, "app%d" % n) for n in range(4)])}
    for number in range(2, 8):
        data["h%d" % number] = with_findings(finding("close_wait_leak", "warning", 60 - 10 * number))
    (leak,) = plugin.tcp_fleet_summary(data, report_top=8)["fleet"]["by_rule"]
    assert leak["hosts"] == 7 and leak["affected"] == ["h%d" % n for n in range(1, 8)]
    assert [w["host"] for w in leak["worst"]] == ["h1"] * 4 + ["h2", "h3", "h4", "h5"]
    assert leak["worst_hosts"] == [{"host": "h1", "magnitude": 90, "findings": 4}] + [
        {"host": "h%d" % n, "magnitude": 60 - 10 * n, "findings": 1} for n in range(2, 8)]
    (leak,) = plugin.tcp_fleet_summary(data, report_top=3)["fleet"]["by_rule"]
    assert [w["host"] for w in leak["worst_hosts"]] == ["h1", "h2", "h3"] and len(leak["affected"]) == 7


def test_merge_keeps_the_details_the_reports_have():
    """When merging, details come from the reports (the details option is for host data only)."""
    with_details = plugin.tcp_fleet_summary(plain_fleet(), ["storm"], 10, True)
    without = plugin.tcp_fleet_summary(plain_fleet(), ["clean"])
    assert set(plugin.tcp_fleet_summary([with_details, without])["details"]) == {"storm"}
    assert set(plugin.tcp_fleet_summary([with_details, without], details=True)["details"]) == {"storm"}
    assert "details" not in plugin.tcp_fleet_summary([without], details=True)
