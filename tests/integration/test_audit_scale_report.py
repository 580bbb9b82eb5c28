"""The audit at a few hundred hosts: the real playbook over simulated hosts (recorded facts in a jsonfile fact cache,
local connection, tcp_audit_gather: false), then the three reports read back.

- grouping: findings by rule (hosts affected, worst first, the remedy once) and by inventory group;
- ranking: hosts by trouble, names in natural order;
- comparison: a second run after some hosts changed compares with the report it replaces, in every format;
- rendering: report.html parses, is self-contained, stays small, and headless Chromium renders it (the screenshot is
  checked for the severity and state colours, and kept in the test's directory to look at);
- the play's per-host work: one task per host, the rest once (counted from the json callback).
Speed is measured by benchmarks/audit_scale, not here.
"""
from __future__ import annotations

import html.parser
import json
import os
import re
import sys

import pytest

from ansible_collections.linuxnet.tcp.plugins.plugin_utils._fleet import natural_key
from ansible_collections.linuxnet.tcp.tests.fleet import simulated

from _chromium import colours, rgb, screenshot
from fleet_fixtures import ROOT, host_results, json_callback_env, parse_json_stdout, run, tool

HOSTS = 300
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures", "audit")
# Every tenth host a client-side TIME_WAIT storm with a CLOSE_WAIT leak, every 25th legacy settings, every 13th SYN
# cookies firing, the others a clean namespace.
KINDS = [("storm", 10), ("legacy", 25), ("syncookies", 13), ("clean", 1)]


def audit(work, **extra):
    extra.setdefault("tcp_audit_report_dir", str(work / "report"))
    done = run([tool("ansible-playbook"), "-i", work / "inventory.ini", os.path.join(ROOT, "playbooks", "audit.yml"),
                "-e", json.dumps(extra)], cwd=work,
               env=json_callback_env(ANSIBLE_CONFIG=str(work / "ansible.cfg"), ANSIBLE_FORKS="20"), timeout=900)
    result = parse_json_stdout(done)
    assert done.returncode == 0, json.dumps(result["stats"])[:3000] + done.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs over the same hosts: the first, then one after four hosts changed (the second compares)."""
    work = tmp_path_factory.mktemp("scale")
    documents = simulated.load_documents(FIXTURES, ["storm", "legacy", "syncookies", "clean"])
    hosts = simulated.plan(HOSTS, KINDS)
    simulated.write(str(work), hosts, documents)
    first = audit(work)
    before = json.loads((work / "report" / "report.json").read_text())
    # A clean host gets a storm, a storm host is fixed, another one's leak doubles, a clean host is retired.
    storms = [h for h, _g, k in hosts if k == "storm"]
    clean = [h for h, _g, k in hosts if k == "clean"]
    names = {"new": clean[0], "fixed": storms[1], "grown": storms[2], "retired": clean[1]}
    changed = {names["new"]: "storm", names["fixed"]: "clean", names["grown"]: "storm_grown"}
    grown = json.loads(json.dumps(documents["storm"]))
    for proc in grown["tcp"]["close_wait"]["by_process"] + grown["tcp"]["close_wait"]["by_program"]:
        proc["count"] *= 2
    documents["storm_grown"] = grown
    second_plan = [(h, g, changed.get(h, k)) for h, g, k in hosts if h != names["retired"]]
    simulated.write(str(work), second_plan, documents)
    second = audit(work)
    return {"work": work, "first": first, "second": second, "before": before, "hosts": hosts, "names": names}


def report(runs, name):
    return (runs["work"] / "report" / name).read_text(encoding="utf-8")


def test_no_task_per_host_on_cached_facts(runs):
    """On cached facts (tcp_audit_gather: false) the play runs no task per host: each task runs once, on the first
    host, the gathering task is skipped once, and the optional steps (all off) are skipped once too."""
    counts = {}
    for play in runs["first"]["plays"]:
        for task in play["tasks"]:
            counts[task["task"]["name"].replace("linuxnet.tcp.audit : ", "")] = sorted(task["hosts"])
    first = runs["hosts"][0][0]
    assert counts and all(hosts == [first] for hosts in counts.values()), counts
    assert counts["Gather TCP and sysctl facts and diagnose them"] == [first]
    assert runs["first"]["plays"][0]["tasks"][2]["hosts"][first]["skipped"] is True
    assert "Install local facts, write the textfile, fail hosts at or above tcp_audit_fail_on" in counts
    stats = runs["first"]["stats"]
    assert all(host not in stats or stats[host]["ok"] + stats[host]["skipped"] == 0 for host, _g, _k in runs["hosts"][1:])


def test_report_json_has_every_host_summary_and_no_facts(runs):
    doc = runs["before"]
    assert doc["schema"] == "linuxnet.tcp.audit/2" and len(doc["hosts"]) == HOSTS and "details" not in doc
    storms = [h for h, _g, k in runs["hosts"] if k == "storm"]
    assert doc["fleet"]["hosts_by_worst"]["critical"] == len(storms) == HOSTS // 10
    by_rule = {r["id"]: r for r in doc["fleet"]["by_rule"]}
    assert sorted(by_rule["close_wait_leak"]["affected"]) == sorted(storms)
    assert doc["fleet"]["by_rule"][0]["id"] == "ephemeral_port_exhaustion"
    groups = {g["group"]: g for g in doc["fleet"]["groups"]}
    assert set(groups) == {"web", "db", "cache", "lb"}
    for name, group in groups.items():
        members = [h for h, g, _k in runs["hosts"] if g == name]
        assert group["hosts"] == len(members)
        assert group["hosts_by_worst"]["critical"] == len([h for h in members if h in storms]) > 0
    # Ranked: the storm hosts first (equal among themselves, so in natural order: web1 ... web21, not web101).
    ranked = [h["host"] for h in doc["hosts"]]
    assert ranked[:len(storms)] == sorted(storms, key=natural_key)
    assert [h["worst"] for h in doc["hosts"][len(storms):]][:1] == ["warning"]
    clean = [h["host"] for h in doc["hosts"] if h["worst"] is None]
    assert clean == sorted(clean, key=natural_key) and clean[:3] == ["cache4", "cache9", "cache13"]
    # A comparison was asked for (the default), but nothing was there yet.
    assert doc["comparison"] == {"available": False, "note": "no previous report at %s" % (runs["work"] / "report" / "report.json")}


def test_second_run_compares_with_the_report_it_replaced(runs):
    doc = json.loads(report(runs, "report.json"))
    cmp = doc["comparison"]
    assert cmp["available"] and cmp["previous"]["generated"] == runs["before"]["generated"]
    names = runs["names"]
    assert cmp["hosts_removed"] == [names["retired"]] and cmp["hosts_added"] == []
    assert {c["host"] for c in cmp["new"]} == {names["new"]} and {c["host"] for c in cmp["resolved"]} == {names["fixed"]}
    assert [(c["host"], c["id"], c["before"], c["magnitude"]) for c in cmp["grown"]] == [
        (names["grown"], "close_wait_leak", 40, 80)]
    assert cmp["by_rule"]["close_wait_leak"] == {"new": 1, "resolved": 1, "grown": 1}
    markdown = report(runs, "report.md")
    assert "## Since the previous report" in markdown
    assert re.search(r"^\| grown \| %s \| warning \| CLOSE_WAIT leak \| leaky-app \(root\) \| 40 \| 80 \|$" % names["grown"],
                     markdown, re.M)
    assert re.search(r"^\| new \| %s \| critical \|" % names["new"], markdown, re.M)
    assert re.search(r"^\| resolved \| %s \| critical \|" % names["fixed"], markdown, re.M)
    page = report(runs, "report.html")
    assert '<td class="grown">grown</td><td>%s</td>' % names["grown"] in page
    summary = next(res["msg"] for play in runs["second"]["plays"] for task in play["tasks"]
                   if task["task"]["name"].endswith("Show the fleet summary and where the report is")
                   for res in task["hosts"].values() if not res.get("skipped"))
    storm_findings = len(next(h for h in runs["before"]["hosts"] if h["host"] == names["fixed"])["findings"])
    assert "Since the previous report (%s, %d hosts): %d new, %d resolved, 1 grown finding(s); 1 host(s) gone" % (
        runs["before"]["generated"], HOSTS, storm_findings, storm_findings) in summary, summary[:8]
    assert "  ^ %s [WARNING] CLOSE_WAIT leak: leaky-app (root) (40 -> 80)" % names["grown"] in summary


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.refs, self.details, self.rows, self.inside_hosts = [], [], 0, 0, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.refs += [v for k, v in attrs.items() if k in ("src", "href") and v]
        self.details += tag == "details"
        if tag == "table" and attrs.get("id") == "hosts":
            self.inside_hosts = True
        if tag == "tr" and self.inside_hosts:
            self.rows += 1

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside_hosts = False


def test_html_report_renders_and_stays_readable(runs):
    path = runs["work"] / "report" / "report.html"
    page = path.read_text(encoding="utf-8")
    parsed = Page()
    parsed.feed(page)
    assert parsed.refs == [], "self-contained: nothing fetched"
    assert re.findall(r"https?://[^\s\"'<>]*", page) == ["http://www.w3.org/2000/svg"]
    assert parsed.rows == (HOSTS - 1) + 1, "every host of the second run in the full list, and its header row"
    assert parsed.details >= 20
    # The chart shows the report_top hosts with the most sockets and sums up the rest.
    assert "%d other hosts" % (HOSTS - 1 - 20) in page
    # Size grows with hosts, not with repeated text: the remedy of a rule is printed once.
    assert page.count("An application bug that no sysctl fixes") == 1
    # What grows with the fleet is the full host list, about one short table row per host; the rest is bounded by
    # report_top (the 1,000-host size is measured by benchmarks/audit_scale).
    start = page.index('<details class="block" id="all">')
    listing = len(page[start:page.index("</details>", start)].encode())
    assert listing / (HOSTS - 1) < 200, listing
    assert len(page.encode()) - listing < 120 * 1024, len(page.encode()) - listing
    shot = runs["work"] / "report.png"
    screenshot(str(path), str(shot))
    seen, painted = colours(str(shot))
    assert len(seen) > 30 and painted > 0.2, "the screenshot is (nearly) blank"
    for colour in ("#b71c1c", "#e65100", "#17212b"):  # critical and warning badges, the header
        assert rgb(colour) in seen, colour


def test_cached_facts_that_are_not_there_fail_with_the_option_named(tmp_path):
    """Some hosts without facts are reported as such; none with facts stops the play, naming tcp_audit_gather."""
    documents = simulated.load_documents(FIXTURES, ["clean"])
    simulated.write(str(tmp_path), [("web1", "web", "clean")], documents)
    with open(tmp_path / "inventory.ini", "a", encoding="utf-8") as handle:
        handle.write("[web]\nweb2 ansible_connection=local\n")
    result = audit(tmp_path, tcp_audit_report_formats=["json"])
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [h["host"] for h in doc["hosts"]] == ["web1"] and doc["fleet"]["hosts_without_facts"] == ["web2"]
    assert result["stats"]["web1"]["failures"] == 0
    (tmp_path / "facts").rename(tmp_path / "gone")
    done = run([tool("ansible-playbook"), "-i", tmp_path / "inventory.ini", os.path.join(ROOT, "playbooks", "audit.yml"),
                "-e", json.dumps({"tcp_audit_report_dir": str(tmp_path / "report2")})], cwd=tmp_path,
               env=json_callback_env(ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg")))
    assert done.returncode == 2, done.stdout[-3000:]
    assert "tcp_audit_gather is false, so the role needs ansible_facts.tcp" in done.stdout
    assert not (tmp_path / "report2").exists(), "nothing is written"


def small_fleet(work, host_vars, group_vars=""):
    """web1, web2 (clean or storm, as given), db1 (storm), db2 (clean) on cached facts; ``host_vars`` adds INI
    variables to a host's line (INI values are strings: "true", not true), ``group_vars`` more INI sections."""
    hosts = [("web1", "web", "clean"), ("web2", "web", host_vars.pop("web2_kind", "clean")), ("db1", "db", "storm"),
             ("db2", "db", "clean")]
    simulated.write(str(work), hosts, simulated.load_documents(FIXTURES, ["storm", "clean"]))
    inventory = work / "inventory.ini"
    text = inventory.read_text(encoding="utf-8")
    for host, variables in host_vars.items():
        text = text.replace("%s ansible_connection=local\n" % host, "%s ansible_connection=local %s\n" % (host, variables))
    inventory.write_text(text + group_vars, encoding="utf-8")


def play(work, playbook, **extra):
    extra.setdefault("tcp_audit_report_dir", str(work / "report"))
    extra.setdefault("tcp_audit_report_formats", ["json"])
    done = run([tool("ansible-playbook"), "-i", work / "inventory.ini", playbook, "-e", json.dumps(extra)], cwd=work,
               env=json_callback_env(ANSIBLE_CONFIG=str(work / "ansible.cfg")), timeout=600)
    return done, parse_json_stdout(done)


def test_optional_steps_follow_each_hosts_own_inventory_values(tmp_path):
    """A host's own tcp_audit_local_facts=true (a string, from the INI inventory) installs its local facts, and a
    group's tcp_audit_fail_on that is not never, warning or critical fails that group's hosts naming the option (the
    argument spec checks the first host's value only), after the report is written; the first host, without values
    of its own, runs none of the optional steps."""
    facts_dir = tmp_path / "facts.d-web2"
    small_fleet(tmp_path, {"web2": "tcp_audit_local_facts=true tcp_audit_local_facts_dir=%s ansible_python_interpreter=%s"
                                   % (facts_dir, sys.executable)},
                "[db:vars]\ntcp_audit_fail_on=Critical\n")
    done, result = play(tmp_path, os.path.join(ROOT, "playbooks", "audit.yml"))
    assert done.returncode == 2, json.dumps(result["stats"])
    assert (facts_dir / "tcp.fact").is_file() and os.access(facts_dir / "tcp.fact", os.X_OK)
    installed = host_results(result, "Install the tcp.fact executable (ansible_local.tcp on later gather_facts)")
    assert sorted(installed) == ["web2"]
    checked = host_results(result, "Check tcp_audit_fail_on of this host")
    assert sorted(checked) == ["db1", "db2", "web2"], "web1 has no value of its own and the play none that is on"
    for host in ("db1", "db2"):
        assert checked[host].get("failed") and checked[host]["msg"] == (
            'tcp_audit_fail_on must be never, warning or critical, got "Critical"'), checked[host]
    assert not checked["web2"].get("failed")
    assert {host: result["stats"][host]["failures"] for host in ("web1", "web2", "db1", "db2")} == {
        "web1": 0, "web2": 0, "db1": 1, "db2": 1}
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [h["host"] for h in doc["hosts"]][0] == "db1" and "settings" not in doc


PLAY_LEVEL = """\
- name: Audit with a fail gate for the whole play
  hosts: all
  gather_facts: false
  vars:
    tcp_audit_fail_on: critical
  tasks:
    - name: Audit with linuxnet.tcp.audit
      ansible.builtin.import_role:
        name: linuxnet.tcp.audit
        rolespec_validate: false
"""


def test_a_play_level_value_reaches_every_host_when_the_first_has_its_own(tmp_path):
    """Play variables outrank inventory ones, and hostvars holds only the latter: the first host's own
    tcp_audit_fail_on=never must not hide the play's critical from the other hosts. Every host with a critical
    finding fails, web2 too (its own inventory never loses to the play, as Ansible's precedence has it)."""
    small_fleet(tmp_path, {"web1": "tcp_audit_fail_on=never", "web2": "tcp_audit_fail_on=never", "web2_kind": "storm"})
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY_LEVEL, encoding="utf-8")
    done, result = play(tmp_path, playbook)
    assert done.returncode == 2, json.dumps(result["stats"])
    gate = host_results(result, "Fail hosts with findings at or above tcp_audit_fail_on")
    failed = sorted(host for host, res in gate.items() if res.get("failed"))
    assert failed == ["db1", "web2"], gate
    assert all(" at or above critical: " in gate[host]["msg"] and "ephemeral_port_exhaustion" in gate[host]["msg"]
               for host in failed)
    assert {host: result["stats"][host]["failures"] for host in ("web1", "web2", "db1", "db2")} == {
        "web1": 0, "web2": 1, "db1": 1, "db2": 0}


WAYS = {
    "roles": "  roles:\n    - linuxnet.tcp.audit\n",
    "include_role": "  tasks:\n    - name: Audit\n      ansible.builtin.include_role:\n        name: linuxnet.tcp.audit\n",
}


@pytest.mark.parametrize("way", sorted(WAYS))
def test_bad_variables_fail_naming_them_however_the_role_is_included(tmp_path, way):
    """Included with Ansible's argument check (roles:, include_role; docs/audit.md "Ways to include the role"), a bad
    value fails on the host that has it, naming the variable, before anything is written: a play-wide one on every
    host, one host's own (its inventory) on that host only. tcp_audit_rules, unset by default (the built-in rules then
    apply, and the per-host check does not template them), is checked when it is set."""
    small_fleet(tmp_path, {"db2": "tcp_audit_top=many"})
    playbook = tmp_path / "play.yml"
    playbook.write_text("- name: Audit\n  hosts: all\n  gather_facts: false\n" + WAYS[way], encoding="utf-8")
    done, result = play(tmp_path, playbook, tcp_audit_rules=5)
    assert done.returncode == 2, json.dumps(result["stats"])
    check = host_results(result, "Validating arguments against arg spec 'main' - Diagnose TCP state and sysctl settings "
                                 "with JMESPath rules and write a fleet report")
    assert sorted(check) == ["db1", "db2", "web1", "web2"] and all(res.get("failed") for res in check.values())
    for res in check.values():
        assert "option 'tcp_audit_rules' is of type str and we were unable to convert to dict" in res["msg"], res["msg"]
    assert "'tcp_audit_top' is of type str and we were unable to convert to int" in check["db2"]["msg"], check["db2"]["msg"]
    assert not any("tcp_audit_top" in check[host]["msg"] for host in ("db1", "web1", "web2"))
    assert not (tmp_path / "report").exists(), "nothing is written"
    # Unset, tcp_audit_rules is the built-in rules: the same play without the bad values finds the storm host's trouble.
    small_fleet(tmp_path, {})
    done, result = play(tmp_path, playbook)
    assert done.returncode == 0, json.dumps(result["stats"])
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert "ephemeral_port_exhaustion" in [f["id"] for f in doc["hosts"][0]["findings"]]
