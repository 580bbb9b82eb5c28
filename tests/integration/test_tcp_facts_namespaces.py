# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tcp_facts namespaces=all on this host, against containers and namespaces the test makes (issue 13).

Two podman containers from the test images (one with a CLOSE_WAIT leak held by a process named leaky-app, one
clean) and two `ip netns` namespaces (one with a client-side TIME_WAIT storm, one empty) are created; the real
module, run as Ansible runs it, must attribute each to its owner and give exactly what `ss` counts inside each
namespace (`nsenter -n -t PID`, `ip netns exec`), with either backend. Then the audit role, run for real with tcp_audit_namespaces: all,
must name the leaking container (by its id) in report.json and in the textfile, and find nothing in the clean
ones. Every storm is bounded, on loopback, and stops by itself; teardown removes everything.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from _procs import netns as netns_of, stop
from fleet_fixtures import fleet_module, run, tool, tool_env

pytestmark = [pytest.mark.live, pytest.mark.containers]

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
STORM = os.path.join(HERE, "_storm.py")

if os.geteuid() != 0 or not shutil.which("podman") or not shutil.which("nsenter"):
    pytest.skip("needs root, podman and nsenter", allow_module_level=True)


def sh(*argv):
    return subprocess.run(list(argv), check=True, capture_output=True, text=True, env=dict(os.environ, LC_ALL="C")).stdout


STATES = ("ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK",
          "LISTEN", "CLOSING")


def ss_states(prefix):
    """Per-state counts from `ss -tan` run inside a namespace (``prefix`` enters it)."""
    names = {"ESTAB": "ESTABLISHED", "TIME-WAIT": "TIME_WAIT", "CLOSE-WAIT": "CLOSE_WAIT", "LISTEN": "LISTEN",
             "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV", "FIN-WAIT-1": "FIN_WAIT1", "FIN-WAIT-2": "FIN_WAIT2",
             "LAST-ACK": "LAST_ACK", "CLOSING": "CLOSING"}
    counts = {}
    for line in sh(*(list(prefix) + ["ss", "-tanH"])).splitlines():
        state = names.get(line.split()[0])
        if state:
            counts[state] = counts.get(state, 0) + 1
    return counts


def run_module(args):
    with open(os.path.join("/tmp", "lntcp-ns-args-%s.json" % uuid.uuid4().hex[:6]), "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    try:
        proc = subprocess.run([sys.executable, "-m", "ansible_collections.linuxnet.tcp.plugins.modules.tcp_facts", handle.name],
                              capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=COLLECTIONS), check=False)
    finally:
        os.unlink(handle.name)
    out = json.loads(proc.stdout)
    assert not out.get("failed"), out
    return out["ansible_facts"]["tcp"]


@pytest.fixture(scope="module")
def lab():
    """Containers (leaky, clean) and namespaces (storm, quiet), with their troubles in place."""
    tag = uuid.uuid4().hex[:6]
    fleet = fleet_module.Fleet("lntcp-fleet-ns-%s" % tag, 2, releases=("debian12",))
    holder = None
    with contextlib.ExitStack() as namespaces:
        try:
            fleet.up()
            leaky, clean = fleet.members
            fleet.storm(leaky, close_wait=25, hold=300, name="leaky-app")
            storm_ns = namespaces.enter_context(netns_of("net.ipv4.tcp_tw_reuse=0"))
            quiet_ns = namespaces.enter_context(netns_of())
            holder = subprocess.Popen(["ip", "netns", "exec", storm_ns, sys.executable, STORM, "--time-wait", "1500",
                                       "--hold", "300"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert json.loads(holder.stdout.readline())["ready"]
            pids = dict((m.name, int(sh("podman", "inspect", "-f", "{{.State.Pid}}", m.name).strip())) for m in (leaky, clean))
            ids = dict((m.name, sh("podman", "inspect", "-f", "{{.Id}}", m.name).strip()) for m in (leaky, clean))
            inodes = dict((m.name, os.stat("/proc/%d/ns/net" % pids[m.name]).st_ino) for m in (leaky, clean))
            inodes.update((n, os.stat("/run/netns/" + n).st_ino) for n in (storm_ns, quiet_ns))
            yield {"fleet": fleet, "leaky": leaky.name, "clean": clean.name, "storm": storm_ns, "quiet": quiet_ns,
                   "pids": pids, "ids": ids, "inodes": inodes}
        finally:
            stop(holder, timeout=30)
            fleet.down()


@pytest.mark.parametrize("backend", ["netlink", "proc"])
def test_every_namespace_attributed_and_equal_to_ss(lab, backend):
    """Both backends, each namespace read by one of the scan's threads: netlink sockets opened by the thread inside
    the namespace, /proc/thread-self/net/tcp{,6} for the /proc fallback."""
    # namespaces_limit: other namespaces on a shared host must not push the test's own out of the scan.
    tcp = run_module({"namespaces": "all", "top": 5, "backend": backend, "namespaces_limit": 1000})
    scan = tcp["namespaces_scan"]
    assert scan["privileged"] is True and scan["reported"] >= 4 and scan["found"] >= scan["reported"]
    by_inode = dict((doc["inode"], doc) for doc in tcp["namespaces"])
    assert set(lab["inodes"].values()) <= set(by_inode), scan
    docs = dict((name, by_inode[inode]) for name, inode in lab["inodes"].items())
    assert set(doc["collection"]["backend"] for doc in docs.values()) == {backend}
    # Whose each namespace is, from the host alone.
    for name in (lab["leaky"], lab["clean"]):
        owner = docs[name]["owner"]
        assert (owner["runtime"], owner["container_id"], owner["container_name"]) == ("podman", lab["ids"][name], name)
        assert docs[name]["label"] == "podman " + name
    assert docs[lab["storm"]]["netns_name"] == lab["storm"] and docs[lab["storm"]]["label"].startswith(
        ("netns " + lab["storm"], "python"))
    # The same counts as ss inside each namespace.
    for name, prefix in ((lab["leaky"], ["nsenter", "-n", "-t", str(lab["pids"][lab["leaky"]])]),
                         (lab["clean"], ["nsenter", "-n", "-t", str(lab["pids"][lab["clean"]])]),
                         (lab["storm"], ["ip", "netns", "exec", lab["storm"]]),
                         (lab["quiet"], ["ip", "netns", "exec", lab["quiet"]])):
        states = docs[name]["states"]
        want = ss_states(prefix)
        got = dict((state, states[state]) for state in STATES if states[state])
        assert got == want, (name, got, want)
    leak = docs[lab["leaky"]]["close_wait"]
    assert leak["total"] == 25 and leak["by_process"][0]["name"] == "leaky-app" and leak["by_process"][0]["count"] == 25
    assert docs[lab["storm"]]["time_wait"]["total"] >= 1500
    # The host's own namespace stays at the top level, and the troubled namespaces sort first.
    assert "states" in tcp and tcp["collection"]["netns"] is None
    order = [doc["inode"] for doc in tcp["namespaces"]]
    assert order.index(lab["inodes"][lab["leaky"]]) < order.index(lab["inodes"][lab["clean"]])
    assert order.index(lab["inodes"][lab["storm"]]) < order.index(lab["inodes"][lab["quiet"]])


def test_limit_is_reported(lab):
    tcp = run_module({"namespaces": "all", "namespaces_limit": 1})
    assert len(tcp["namespaces"]) == 1 and tcp["namespaces_scan"]["left_out"] >= 3


def test_audit_names_the_leaking_container(lab, tmp_path):
    report_dir, textfile = str(tmp_path / "report"), str(tmp_path / "textfile")
    os.makedirs(textfile)
    extra = {"tcp_audit_namespaces": "all", "tcp_audit_report_dir": report_dir, "tcp_audit_textfile_dir": textfile,
             "tcp_audit_textfile_namespace_min_sockets": 20, "tcp_audit_textfile_namespaces_max": 50,
             "tcp_audit_compare_with": "", "tcp_audit_show_summary": False,
             "tcp_audit_rule_overrides": {"time_wait_storm_client": {"params": {"min_total": 1000}}}}
    proc = run([tool("ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=/usr/bin/python3",
                "-e", json.dumps(extra), os.path.join(ROOT, "playbooks", "audit.yml")], env=tool_env())
    assert proc.returncode == 0, proc.stdout[-6000:]
    with open(os.path.join(report_dir, "report.json")) as handle:
        report = json.load(handle)
    host = report["hosts"][0]
    ns_findings = [f for f in host["findings"] if f.get("namespace")]
    leaky = [f for f in ns_findings if (f["namespace"].get("container_id") or "") == lab["ids"][lab["leaky"]]]
    assert [f["id"] for f in leaky] == ["close_wait_leak"], ns_findings
    assert leaky[0]["message"].startswith("In podman %s: leaky-app" % lab["leaky"])
    storm = [f for f in ns_findings if f["namespace"]["inode"] == lab["inodes"][lab["storm"]]]
    assert [f["id"] for f in storm] == ["time_wait_storm_client"]
    for name in (lab["clean"], lab["quiet"]):
        assert not [f for f in ns_findings if f["namespace"]["inode"] == lab["inodes"][name]], name
    rows = dict((row["inode"], row) for row in report["fleet"]["containers"]["with_findings"])
    assert rows[lab["inodes"][lab["leaky"]]]["container_id"] == lab["ids"][lab["leaky"]]
    with open(os.path.join(textfile, "linuxnet_tcp.prom")) as handle:
        prom = handle.read()
    assert 'container_id="%s",pod_uid="",state="CLOSE_WAIT"} 25' % lab["ids"][lab["leaky"]][:12] in prom
    with open(os.path.join(report_dir, "report.md")) as handle:
        assert "## Containers and pods" in handle.read()
