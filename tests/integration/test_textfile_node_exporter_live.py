# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit role's textfile, read by the real prometheus-node-exporter, and the alert pack over what it serves.

In a network namespace the test creates, _storm.py builds a client-side TIME_WAIT storm through a narrow
port range, a CLOSE_WAIT leak and an overflowing accept queue. ansible-playbook runs linuxnet.tcp.audit
there (real tcp_facts and sysctl_facts, the real template) with tcp_audit_textfile_dir pointing at a scratch
directory, and saves the facts it used. prometheus-node-exporter (Debian package) serves that directory on
a free loopback port, textfile collector only; the test scrapes /metrics and finds each series with the
value of the facts. Then the scraped samples become the input series of a generated `promtool test rules`
suite, which checks through the ALERTS series that the shipped alerts fire on them.

Needs root (ip netns). Every process is bounded (--hold, timeout) and killed in teardown, the namespace deleted.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml
from _procs import netns, stop

pytestmark = pytest.mark.live

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
BIN = os.path.dirname(sys.executable)
RULES = os.path.join(ROOT, "roles", "audit", "files", "prometheus", "linuxnet-tcp.rules.yml")
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
PORT_RANGE = (50000, 55999)  # 6000 ports: 5000 TIME_WAIT sockets towards one destination use 83 % of them
TIME_WAIT = 7500             # _storm.py: two thirds to 127.0.0.1:3306, one third to 127.0.0.1:5432, 100 over IPv6
CLOSE_WAIT = 12
STATES = ("ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK",
          "LISTEN", "CLOSING")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

if os.geteuid() != 0:
    pytest.skip("live tests need root for ip netns", allow_module_level=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_exposition(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = frozenset((k, v.replace('\\"', '"').replace("\\\\", "\\")) for k, v in LABEL.findall(match.group(2) or ""))
        out[(match.group(1), labels)] = float(match.group(3))
    return out


def value(samples, name, **labels):
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls)]
    assert len(found) == 1, (name, labels, found)
    return found[0]


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """The namespace with the storm held, the audit run in it; yields the textfile dir and the audit's facts."""
    base = tmp_path_factory.mktemp("lntcp-textfile")
    with netns("net.ipv4.ip_local_port_range=%d %d" % PORT_RANGE, "net.ipv4.tcp_tw_reuse=0") as name:
        inside = ["ip", "netns", "exec", name]
        storm = None
        try:
            storm = subprocess.Popen(inside + [sys.executable, os.path.join(HERE, "_storm.py"), "--time-wait", str(TIME_WAIT),
                                               "--close-wait", str(CLOSE_WAIT), "--backlog", "4", "--queued", "20",
                                               "--hold", "150"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            info = json.loads(storm.stdout.readline())
            facts = run_audit(base, inside)
            yield {"dir": str(base / "textfile"), "facts": facts, "storm_pid": info["pid"]}
        finally:
            stop(storm, timeout=15)


def run_audit(base, inside):
    """ansible-playbook with linuxnet.tcp.audit writing its textfile under ``base``; returns the facts it used."""
    facts_file = str(base / "facts.json")
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"tcp_audit_textfile_dir": str(base / "textfile"), "tcp_audit_report": False,
                      "tcp_audit_show_summary": False,
                      "tcp_audit_path_idle_timeouts": [{"name": "the test load balancer", "seconds": 350}]},
             "roles": ["linuxnet.tcp.audit"],
             "post_tasks": [{"name": "Save the facts the audit used", "ansible.builtin.copy": {
                 "dest": facts_file, "mode": "0600",
                 "content": "{{ {'tcp': ansible_facts.tcp, 'sysctl': ansible_facts.sysctl, "
                            "'findings': ansible_facts.tcp_findings} | to_json }}"}}]}]
    play_file = str(base / "play.yml")
    with open(play_file, "w") as handle:
        json.dump(play, handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_LOCAL_TEMP=str(base / "tmp"),
               ANSIBLE_REMOTE_TEMP=str(base / "tmp"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(inside + [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-e",
                                    "ansible_python_interpreter=/usr/bin/python3", play_file],
                          capture_output=True, text=True, env=env, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    with open(facts_file) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def scraped(audited):
    """/metrics of a real node exporter serving the audit's textfile directory on a loopback port."""
    assert os.path.exists(NODE_EXPORTER), "prometheus-node-exporter is missing: install the Debian package (make system-deps)"
    port = free_port()
    exporter = subprocess.Popen(["timeout", "120", NODE_EXPORTER, "--web.listen-address=127.0.0.1:%d" % port,
                                 "--collector.disable-defaults", "--collector.textfile",
                                 "--collector.textfile.directory=" + audited["dir"]],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, text = time.monotonic() + 15, None
        while text is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                assert exporter.poll() is None, exporter.stderr.read()
                assert time.monotonic() < deadline, "node exporter did not answer on 127.0.0.1:%d" % port
                time.sleep(0.2)
        yield text
    finally:
        stop(exporter, close_stdin=False)


def test_node_exporter_serves_every_series_with_the_audit_values(audited, scraped):
    samples = parse_exposition(scraped)
    tcp = audited["facts"]["tcp"]
    assert value(samples, "node_textfile_scrape_error") == 0.0  # node_exporter parsed the file
    assert [v for (n, ls), v in samples.items()
            if n == "node_textfile_mtime_seconds" and dict(ls).get("file", "").endswith("linuxnet_tcp.prom")]
    for state in STATES:
        assert value(samples, "linuxnet_tcp_sockets", state=state) == tcp["states"][state], state
    assert tcp["states"]["TIME_WAIT"] >= TIME_WAIT  # the storm is there, not just some sockets
    leak = [p for p in tcp["close_wait"]["by_process"] if p["pid"] == audited["storm_pid"]]
    assert len(leak) == 1 and leak[0]["count"] == CLOSE_WAIT
    assert value(samples, "linuxnet_tcp_close_wait_process_sockets", pid=str(audited["storm_pid"]),
                 process=leak[0]["name"]) == CLOSE_WAIT
    (program,) = [p for p in tcp["close_wait"]["by_program"] if audited["storm_pid"] in p["pids"]]
    assert value(samples, "linuxnet_tcp_close_wait_program_sockets", program=program["name"], exe=program["exe"] or "",
                 user=program["user"]) == program["count"] >= CLOSE_WAIT
    overflows = tcp["counters"]["ListenOverflows"]
    assert overflows > 0 and value(samples, "linuxnet_tcp_kernel_events_total", counter="ListenOverflows") == overflows
    busiest = tcp["ephemeral_ports"]["busiest"]
    assert (busiest["address"], busiest["port"]) == ("127.0.0.1", 3306) and busiest["utilisation"] >= 0.8
    assert value(samples, "linuxnet_tcp_ephemeral_ports") == PORT_RANGE[1] - PORT_RANGE[0] + 1
    assert value(samples, "linuxnet_tcp_ephemeral_ports_destination_in_use", address="127.0.0.1", port="3306") == busiest["in_use"]
    findings = audited["facts"]["findings"]
    for rule in ("time_wait_storm_client", "ephemeral_port_exhaustion", "close_wait_leak", "idle_timeout_order"):
        count = len([f for f in findings if f["id"] == rule])
        assert count >= 1 and value(samples, "linuxnet_tcp_audit_rule_findings", rule=rule) == count, rule
    # The role templated tcp_audit_path_idle_timeouts into the rule: keep-alive 7200 s against a 350 s device.
    order = [f for f in findings if f["id"] == "idle_timeout_order"]
    assert any("the idle timeout of the test load balancer (350 s)" in f["message"] for f in order), order


def test_alert_pack_fires_on_the_scraped_series(audited, scraped, tmp_path):
    """The scraped linuxnet_* samples, held for 40 minutes as an unchanged textfile is, go through promtool with
    the shipped rules; the ListenOverflows counter starts from 0 (a fresh namespace) at the first audit."""
    samples = parse_exposition(scraped)
    series = []
    for (name, labels), number in sorted(samples.items(), key=lambda item: (item[0][0], sorted(item[0][1]))):
        if not name.startswith("linuxnet_tcp_") or name == "linuxnet_tcp_audit_last_run_timestamp_seconds":
            continue
        labels = dict(labels, instance="lab", job="node")
        text = "%s{%s}" % (name, ",".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"')) for k, v in sorted(labels.items())))
        start = "0x15 " if labels.get("counter") == "ListenOverflows" else ""
        series.append({"series": text, "values": "%s%sx40" % (start, repr(number))})
    tcp = audited["facts"]["tcp"]
    leak = [p for p in tcp["close_wait"]["by_program"] if audited["storm_pid"] in p["pids"]][0]
    # Per program, as the close_wait_leak rule counts (an empty label is no label in Prometheus).
    program = {key: value for key, value in (("program", leak["name"]), ("exe", leak["exe"]), ("cgroup", leak["cgroup"]),
                                             ("user", leak["user"])) if value}
    common = {"alertstate": "firing", "instance": "lab", "job": "node"}
    expected = [
        dict(common, alertname="LinuxnetTcpAcceptQueueOverflow", severity="warning", counter="ListenOverflows"),
        dict(common, alertname="LinuxnetTcpCloseWaitLeak", severity="warning", **program),
        dict(common, alertname="LinuxnetTcpEphemeralPortPressure", severity="critical", address="127.0.0.1", port="3306"),
        dict(common, alertname="LinuxnetTcpTimeWaitStorm", severity="warning", state="TIME_WAIT"),
    ]
    suite = {"rule_files": [RULES], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [{"expr": 'ALERTS{alertstate="firing"}', "eval_time": "35m", "exp_samples": [
            {"labels": "ALERTS{%s}" % ",".join('%s="%s"' % kv for kv in sorted(labels.items())), "value": 1}
            for labels in expected]}]}]}
    path = str(tmp_path / "scraped.test.yml")
    with open(path, "w") as handle:
        yaml.safe_dump(suite, handle, sort_keys=False)
    proc = subprocess.run(["promtool", "test", "rules", path], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
