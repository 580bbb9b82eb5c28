# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Verify linuxnet.tcp.audit against the containers' real state and the files it wrote.

The storm container holds a client-side TIME_WAIT storm to 127.0.0.1:3306, 40 CLOSE_WAIT sockets held by
"leaky-app" towards 127.0.0.1:9200, and a full accept queue on 127.0.0.1:8080 held by "slow-accept"
(prepare.yml). Live state is read with ss and /proc inside the containers (podman exec); the report is
read from the controller; HTML is rendered by headless Chromium; the .prom file is checked by promtool.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import testinfra

# The screenshot helpers shared with the report tests.
from ansible_collections.linuxnet.tcp.tests.integration._chromium import colours, png_pixels, rgb, screenshot

STORM = "lntcp-audit-storm-debian12"
CLEAN = "lntcp-audit-clean-debian11"
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
REPORT = os.path.join(EPHEMERAL, "report")
PROM = "/var/lib/node_exporter/textfile_collector/linuxnet_tcp.prom"
BIN = os.path.dirname(shutil.which("ansible-playbook") or "/usr/bin/ansible-playbook")


def box(name):
    return testinfra.get_host(f"podman://{name}")


@pytest.fixture(scope="module")
def report():
    with open(os.path.join(REPORT, "report.json"), encoding="utf-8") as handle:
        return json.load(handle)


def summary(report, host):
    return next(s for s in report["hosts"] if s["host"] == host)


def findings(report, host):
    return summary(report, host)["findings"]


def by_id(report, host, rule_id):
    return [f for f in findings(report, host) if f["id"] == rule_id]


def ansible(*argv, timeout=300):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(list(argv), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, check=False)


def test_report_json_lists_both_hosts(report):
    assert report["schema"] == "linuxnet.tcp.audit/2"
    assert sorted(s["host"] for s in report["hosts"]) == sorted([STORM, CLEAN])
    assert sorted(report["details"]) == sorted([STORM, CLEAN]), "tcp_audit_report_facts: true keeps the full facts"
    assert report["fleet"]["hosts"] == 2 and report["fleet"]["hosts_without_facts"] == []
    rules = {r["id"]: r for r in report["rules"]}
    assert rules["close_wait_leak"]["params"] == {"min_count": 20}, "the user override is applied"
    assert "busy_database_peer" in rules, "the user rule is evaluated"


def test_close_wait_leak_names_the_process_and_destination(report):
    (leak,) = by_id(report, STORM, "close_wait_leak")
    assert leak["severity"] == "warning"
    assert leak["item"]["name"] == "leaky-app" and leak["item"]["count"] == 40
    # An outbound leak keeps the peer's port; local_port is only set for sockets that came in on a listener.
    assert leak["item"]["remotes"][0] == {"address": "127.0.0.1", "port": 9200, "local_port": None, "count": 40}
    # Judged per program (executable, cgroup, user): one process here.
    (pid,) = leak["item"]["pids"]
    assert "holds 40 sockets in CLOSE_WAIT over 1 process(es) (pid %d)" % pid in leak["message"]
    assert leak["message"].startswith("leaky-app (") and "user root" in leak["message"]
    # The real state: that pid is leaky-app, and ss sees its 40 CLOSE_WAIT sockets towards 127.0.0.1:9200.
    host = box(STORM)
    assert host.file(f"/proc/{pid}/comm").content_string.strip() == "leaky-app"
    lines = host.check_output("ss -Htanp state close-wait").splitlines()
    leaked = [line for line in lines if "127.0.0.1:9200" in line and '"leaky-app"' in line]
    assert len(leaked) == 40, lines


def test_time_wait_storm_is_client_side_towards_the_database(report):
    (storm,) = by_id(report, STORM, "time_wait_storm_client")
    # The item is the top destination (the finding's subject), the size that of the client side.
    assert storm["item"]["address"] == "127.0.0.1" and storm["item"]["port"] == 3306
    assert storm["item"]["count"] >= 5000 and "on the client side" in storm["message"]
    assert "tcp_tw_reuse is 0" in storm["message"] and "net.ipv4.tcp_tw_reuse = 1 lets" in storm["remedy"]
    assert not by_id(report, STORM, "time_wait_storm_server")
    (ports,) = by_id(report, STORM, "ephemeral_port_exhaustion")
    assert ports["severity"] == "critical" and ports["item"]["port"] == 3306 and ports["item"]["size"] == 10000
    (custom,) = by_id(report, STORM, "busy_database_peer")
    assert custom["message"].endswith("to 127.0.0.1:3306 (database) ended in TIME_WAIT")
    # The storm is still running: ss sees TIME_WAIT sockets, nearly all of them towards 127.0.0.1:3306.
    host = box(STORM)
    to_db = int(host.check_output("ss -Htan state time-wait dst 127.0.0.1 dport = :3306 | wc -l"))
    every = int(host.check_output("ss -Htan state time-wait | wc -l"))
    assert to_db >= 1000 and to_db >= 0.9 * every


def test_accept_queue_overflow_names_the_listener_and_backlog(report):
    (full,) = by_id(report, STORM, "accept_queue_full")
    assert (full["item"]["port"], full["item"]["backlog"], full["item"]["name"]) == (8080, 4, "slow-accept")
    assert full["item"]["queue"] > 4
    assert by_id(report, STORM, "listen_overflows")
    # ss shows the same listener: Recv-Q above its backlog (Send-Q) of 4.
    line = box(STORM).check_output("ss -Hltn sport = :8080")
    recv_q, send_q = (int(v) for v in line.split()[1:3])
    assert send_q == 4 and recv_q > send_q


def test_drift_between_runtime_and_boot_file(report):
    (drift,) = by_id(report, STORM, "sysctl_drift")
    assert drift["item"]["key"] == "net.ipv4.tcp_fin_timeout"
    assert drift["item"]["value"]["file"] == "/etc/sysctl.d/60-app.conf"
    assert box(STORM).file("/proc/sys/net/ipv4/tcp_fin_timeout").content_string.strip() == drift["item"]["value"]["runtime"]


def test_clean_container_has_no_warning_or_critical(report):
    severe = [f for f in findings(report, CLEAN) if f["severity"] in ("warning", "critical")]
    assert severe == []
    # Not idle: it holds 25 healthy connections (50 ESTABLISHED sockets, both ends) and their listener.
    states = report["details"][CLEAN]["tcp"]["states"]
    assert states["ESTABLISHED"] == 50 and states["LISTEN"] == 1
    live = box(CLEAN).check_output("ss -Htan state established")
    assert len(live.splitlines()) == 50
    row = summary(report, CLEAN)
    assert row["counts"]["critical"] == row["counts"]["warning"] == 0 and row["states"]["ESTABLISHED"] == 50


def test_markdown_report_has_the_leaders():
    with open(os.path.join(REPORT, "report.md"), encoding="utf-8") as handle:
        text = handle.read()
    assert re.search(r"^\| %s \| \d+ \| 127\.0\.0\.1:3306 \|" % re.escape(STORM), text, re.M)
    assert re.search(r"^\| %s \| 40 \| leaky-app \(pid \d+, root\) \| 40 \| 127\.0\.0\.1:9200 \|" % re.escape(STORM), text, re.M)


def test_html_report_is_self_contained_and_renders():
    path = os.path.join(REPORT, "report.html")
    with open(path, encoding="utf-8") as handle:
        html = handle.read()
    # One inline script (the optional host filter), nothing loaded from anywhere.
    assert html.lower().count("<script") == 1 and "<script>" in html and "fetch(" not in html and "XMLHttpRequest" not in html
    assert re.findall(r"(?:src|href)=", html) == [], "no external resource"
    assert re.findall(r"https?://[^\s\"'<>]*", html) == ["http://www.w3.org/2000/svg"], "only the SVG namespace URI"
    assert "<svg" in html and "leaky-app" in html and "127.0.0.1:3306" in html
    shot = os.path.join(EPHEMERAL, "report.png")
    screenshot(path, shot)
    width, height, _bpp, _rows = png_pixels(shot)
    assert (width, height) == (1280, 2000)
    seen, painted = colours(shot)
    assert len(seen) > 20 and painted > 0.2, "the screenshot is (nearly) blank"
    # The critical badge, the chart's TIME_WAIT yellow and the CLOSE_WAIT red are on screen.
    for colour in ("#b71c1c", "#f9a825", "#c62828"):
        assert rgb(colour) in seen, colour


def test_prom_file_passes_promtool_and_matches_the_host(tmp_path):
    host = box(STORM)
    prom = host.file(PROM)
    assert prom.is_file and prom.mode == 0o644
    text = prom.content_string
    target = tmp_path / "linuxnet_tcp.prom"
    target.write_text(text, encoding="utf-8")
    with open(target, encoding="utf-8") as handle:
        result = subprocess.run(["promtool", "check", "metrics"], stdin=handle, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout
    assert 'linuxnet_tcp_close_wait_process_sockets{process="leaky-app",' in text
    assert re.search(r'^linuxnet_tcp_sockets\{state="CLOSE_WAIT"\} 40$', text, re.M)
    assert re.search(r'^linuxnet_tcp_listener_backlog\{address="127.0.0.1",port="8080",process="slow-accept"\} 4$', text, re.M)
    assert re.search(r'^linuxnet_tcp_audit_findings\{severity="critical"\} 1$', text, re.M)
    # Only the final file may end in .prom (the staging file is named so the collector skips it).
    names = host.check_output("ls -A /var/lib/node_exporter/textfile_collector").split()
    assert [n for n in names if n.endswith(".prom")] == ["linuxnet_tcp.prom"]


def test_local_facts_on_a_later_gather_facts():
    result = ansible(os.path.join(BIN, "ansible"), "-i", INVENTORY, "all", "-m", "ansible.builtin.setup",
                     "-a", "filter=ansible_local")
    assert result.returncode == 0, result.stdout
    facts = {}
    for host, body in re.findall(r"^(\S+) \| SUCCESS => (\{.*?^\})", result.stdout, re.M | re.S):
        facts[host] = json.loads(body)["ansible_facts"]["ansible_local"]["tcp"]
    assert sorted(facts) == sorted([STORM, CLEAN]), result.stdout
    storm = facts[STORM]
    assert storm["source"] == "linuxnet.tcp.audit" and storm["errors"] == []
    # Compared with ss on the same namespace right after (TIME_WAIT moves; the CLOSE_WAIT leak holds still).
    live = box(STORM).check_output("ss -Htan state close-wait")
    assert storm["states"]["CLOSE_WAIT"] == len(live.splitlines()) >= 40, live
    assert storm["states"]["TIME_WAIT"] >= 1000
    assert storm["ephemeral_ports"] == {"range": [50000, 59999], "size": 10000}
    assert storm["counters"]["ListenOverflows"] > 0
    assert facts[CLEAN]["states"]["CLOSE_WAIT"] == 0 and facts[CLEAN]["errors"] == []
    assert box(STORM).file("/etc/ansible/facts.d/tcp.fact").mode == 0o755


def test_a_rule_that_does_not_compile_fails_the_play_before_gathering():
    bad = {"tcp_audit_extra_rules": [{"id": "broken_rule", "severity": "warning", "query": "tcp.states[?count >",
                                      "message": "never"}], "tcp_audit_report": False}
    result = ansible(os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY, "linuxnet.tcp.audit", "-e", json.dumps(bad))
    assert result.returncode != 0
    assert "rule broken_rule: query does not compile" in result.stdout, result.stdout[-4000:]
    assert "Gather TCP and sysctl facts" not in result.stdout


def test_fail_on_critical_fails_only_the_storm_host_after_the_report(tmp_path):
    extra = {"tcp_audit_fail_on": "critical", "tcp_audit_report_dir": str(tmp_path), "tcp_audit_report_formats": ["json"],
             "tcp_audit_show_summary": False}
    result = ansible(os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY, "linuxnet.tcp.audit", "-e", json.dumps(extra))
    assert result.returncode == 2, result.stdout[-4000:]
    assert re.search(r"^%s\s+: .*failed=1" % STORM, result.stdout, re.M), result.stdout[-2000:]
    assert re.search(r"^%s\s+: .*failed=0" % CLEAN, result.stdout, re.M), result.stdout[-2000:]
    assert "ephemeral_port_exhaustion" in result.stdout
    with open(tmp_path / "report.json", encoding="utf-8") as handle:
        assert json.load(handle)["fleet"]["findings"]["critical"] == 1
