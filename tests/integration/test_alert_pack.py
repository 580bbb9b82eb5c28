# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Prometheus alert pack (roles/audit/files/prometheus): promtool check rules, promtool test rules,
runbook links that land on a section of docs/audit.md, and series that the textfile template writes.

Needs promtool (Debian package prometheus, installed by `make system-deps`); no root.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PACK = os.path.join(ROOT, "roles", "audit", "files", "prometheus")
RULES = os.path.join(PACK, "linuxnet-tcp.rules.yml")
TESTS = os.path.join(PACK, "linuxnet-tcp.rules.test.yml")
DOCS = os.path.join(ROOT, "docs", "audit.md")
TEMPLATE = os.path.join(ROOT, "roles", "audit", "templates", "metrics.prom.j2")
RUNBOOK_BASE = "https://example.invalid/linuxnet/tcp/blob/main/docs/audit.md#"
ALERTS = ["LinuxnetTcpTimeWaitStorm", "LinuxnetTcpCloseWaitLeak", "LinuxnetTcpEphemeralPortPressure",
          "LinuxnetTcpAcceptQueueOverflow", "LinuxnetTcpConntrackFilling", "LinuxnetTcpConntrackFull", "LinuxnetTcpAuditStale"]


def promtool(*args, cwd=None):
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: install the Debian package prometheus (make system-deps)"
    return subprocess.run([binary] + list(args), capture_output=True, text=True, cwd=cwd, timeout=120,
                          env=dict(os.environ, LC_ALL="C"), check=False)


def rules():
    with open(RULES) as handle:
        return [rule for group in yaml.safe_load(handle)["groups"] for rule in group["rules"]]


def test_promtool_check_rules():
    proc = promtool("check", "rules", RULES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: %d rules found" % len(ALERTS) in proc.stdout


def test_promtool_test_rules():
    proc = promtool("test", "rules", os.path.basename(TESTS), cwd=PACK)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_test_rules_fails_when_a_threshold_changes(tmp_path):
    """The suite is not vacuous: the same tests against a rule file with one threshold moved fail."""
    with open(RULES) as handle:
        text = handle.read()
    assert 'linuxnet_tcp_sockets{state="TIME_WAIT"} >= 5000' in text
    (tmp_path / "linuxnet-tcp.rules.yml").write_text(text.replace('{state="TIME_WAIT"} >= 5000', '{state="TIME_WAIT"} >= 10000'))
    shutil.copyfile(TESTS, str(tmp_path / "linuxnet-tcp.rules.test.yml"))
    proc = promtool("test", "rules", "linuxnet-tcp.rules.test.yml", cwd=str(tmp_path))
    assert proc.returncode != 0 and "LinuxnetTcpTimeWaitStorm" in proc.stdout + proc.stderr


def test_every_alert_has_a_runbook_section():
    with open(DOCS) as handle:
        anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', handle.read()))
    assert [rule["alert"] for rule in rules()] == ALERTS
    for rule in rules():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_BASE), url
        assert url[len(RUNBOOK_BASE):] in anchors, (rule["alert"], url)
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_every_series_is_written_by_the_textfile_template():
    with open(TEMPLATE) as handle:
        written = set(re.findall(r"^# TYPE (linuxnet_tcp_[a-z_]+) ", handle.read(), re.MULTILINE))
    used = set()
    for rule in rules():
        used |= set(re.findall(r"\b(linuxnet_tcp_[a-z_]+)", rule["expr"]))
    assert used and used <= written, used - written


def test_close_wait_alert_and_rule_share_threshold_and_grouping(tmp_path):
    """LinuxnetTcpCloseWaitLeak and the audit's close_wait_leak rule judge the same thing: one value per program
    (executable, name, cgroup, user: tcp_facts close_wait.by_program, one textfile series each) against the same
    threshold. The suite proves it fires at the rule's min_count and not one below."""
    with open(os.path.join(ROOT, "roles", "audit", "vars", "main.yml")) as handle:
        builtin = {rule["id"]: rule for rule in yaml.safe_load(handle)["__tcp_audit_builtin_rules"]}
    threshold = builtin["close_wait_leak"]["params"]["min_count"]
    assert "tcp.close_wait.by_program" in builtin["close_wait_leak"]["query"]
    (alert,) = [rule for rule in rules() if rule["alert"] == "LinuxnetTcpCloseWaitLeak"]
    assert alert["expr"] == "linuxnet_tcp_close_wait_program_sockets >= %d" % threshold
    with open(TEMPLATE) as handle:
        line = [l for l in handle if l.startswith("linuxnet_tcp_close_wait_program_sockets{")][0]
    assert sorted(re.findall(r"([a-z]+)=\"", line)) == ["cgroup", "exe", "program", "user"]
    with open(TESTS) as handle:
        text = handle.read()
    # The same suite against a rule file whose alert sums per process name fails: the grouping is tested.
    with open(RULES) as handle:
        changed = handle.read().replace("expr: linuxnet_tcp_close_wait_program_sockets >= %d" % threshold,
                                        "expr: sum by (instance, job, program, user) (linuxnet_tcp_close_wait_program_sockets) >= %d" % threshold)
    (tmp_path / "linuxnet-tcp.rules.yml").write_text(changed)
    (tmp_path / "linuxnet-tcp.rules.test.yml").write_text(text)
    proc = promtool("test", "rules", "linuxnet-tcp.rules.test.yml", cwd=str(tmp_path))
    assert proc.returncode != 0 and "LinuxnetTcpCloseWaitLeak" in proc.stdout + proc.stderr
    (tmp_path / "linuxnet-tcp.rules.yml").write_text(changed.replace(
        "sum by (instance, job, program, user) (linuxnet_tcp_close_wait_program_sockets) >= %d" % threshold,
        "linuxnet_tcp_close_wait_program_sockets >= %d" % (threshold + 1)))
    proc = promtool("test", "rules", "linuxnet-tcp.rules.test.yml", cwd=str(tmp_path))
    assert proc.returncode != 0 and "LinuxnetTcpCloseWaitLeak" in proc.stdout + proc.stderr
