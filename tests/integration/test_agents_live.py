# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Agent detection on the real /proc: a process named like kube-proxy, with kubeadm's command line and a
--config file, started in a network namespace the test creates.

The process (_fake_agent.py) has comm "kube-proxy" and exactly the wanted /proc/PID/cmdline; its --config
points at the recorded KubeProxyConfiguration of the kube-proxy-kubeadm-ipvs fixture, copied to a scratch
directory. It is bounded (60 s, or until the test closes its stdin) and is killed and the namespace deleted
in teardown. Needs root for ip netns.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from _procs import netns, stop
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import kube_proxy as K
from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import writers as _agents
from ansible_collections.linuxnet.tcp.tests.unit.fixtures.agents import record_fixtures

pytestmark = pytest.mark.live

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures", "agents")

if os.geteuid() != 0:
    pytest.skip("live tests need root for ip netns", allow_module_level=True)


@pytest.fixture
def fake_kube_proxy(tmp_path):
    config = str(tmp_path / "var" / "lib" / "kube-proxy" / "config.conf")
    os.makedirs(os.path.dirname(config))
    shutil.copyfile(os.path.join(FIXTURES, "kube-proxy-kubeadm-ipvs", "var", "lib", "kube-proxy", "config.conf"), config)
    argv = ["/usr/local/bin/kube-proxy", "--config=" + config, "--hostname-override=node-1", "--v=2"]
    with netns() as name:
        proc = None
        try:
            proc = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, os.path.join(HERE, "_fake_agent.py"),
                                     "--comm", "kube-proxy", "--hold", "60", "--"] + argv,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            info = json.loads(proc.stdout.readline())
            yield {"pid": info["pid"], "argv": argv, "config": config, "netns": name}
        finally:
            stop(proc)


def _values(agent):
    return {key: entry["value"] for key, entry in agent["keys"].items()}


def _online_cpus():
    """CPUs in /sys/devices/system/cpu/online ("0-3,8"), counted here as a set of CPU numbers, not with the library."""
    with open("/sys/devices/system/cpu/online") as handle:
        text = handle.read()
    cpus = set()
    for part in text.strip().split(","):
        first, _sep, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return len(cpus)


def test_cpu_count_of_this_machine_uses_sysfs():
    """kube-proxy's CPU count on this machine, from its real /sys, against the CPUs counted here."""
    if not os.path.exists("/sys/devices/system/cpu/online"):
        pytest.skip("no /sys/devices/system/cpu/online here")
    assert K.cpu_count("/") == (_online_cpus(), "/sys/devices/system/cpu/online")


def test_kube_proxy_found_on_the_real_proc_with_its_flags_and_config(fake_kube_proxy, tmp_path):
    pid = fake_kube_proxy["pid"]
    # It is what the test says it is: in the namespace, named kube-proxy, with exactly that command line.
    assert os.stat("/proc/%d/ns/net" % pid).st_ino == os.stat("/run/netns/%s" % fake_kube_proxy["netns"]).st_ino
    with open("/proc/%d/comm" % pid) as handle:
        assert handle.read() == "kube-proxy\n"
    with open("/proc/%d/cmdline" % pid, "rb") as handle:
        assert handle.read() == b"".join(arg.encode() + b"\0" for arg in fake_kube_proxy["argv"])

    live = [agent for agent in _agents.detect("/") if agent["pid"] == pid]
    assert len(live) == 1 and live[0]["agent"] == "kube-proxy", live
    agent = live[0]
    assert agent["evidence"] == " ".join(fake_kube_proxy["argv"])
    cpus = _online_cpus()
    values = _values(agent)
    assert values["net.netfilter.nf_conntrack_max"] == str(max(65536 * cpus, 131072))
    assert values["net.netfilter.nf_conntrack_tcp_timeout_established"] == "7200"  # tcpEstablishedTimeout: 2h0m0s
    assert values["net.ipv4.vs.conntrack"] == "1" and values["net.ipv4.conf.all.arp_announce"] == "2"
    assert agent["ipvs"] == {"tcp": 900, "tcpfin": None, "udp": None}
    source = agent["keys"]["net.netfilter.nf_conntrack_max"]["source"]
    assert "conntrack.maxPerCore in kube-proxy's config (%s)" % fake_kube_proxy["config"] in source
    assert "read through /proc/%d/root%s" % (pid, fake_kube_proxy["config"]) in source  # its own mount view
    writers = _agents.writers_for(["net.netfilter.nf_conntrack_max", "net.ipv4.tcp_fin_timeout"], live)
    assert list(writers) == ["net.netfilter.nf_conntrack_max"]
    assert "Set conntrack.maxPerCore (and conntrack.min) in kube-proxy's config" in writers["net.netfilter.nf_conntrack_max"][0]["advice"]

    # A recording of the live process gives the same answer: what the unit fixtures are made of.
    recorded = str(tmp_path / "recorded")
    record_fixtures.record_process(pid, recorded, [fake_kube_proxy["config"], "/sys/devices/system/cpu/online",
                                                   "/proc/sys/kernel/osrelease"])
    again = [a for a in _agents.detect(recorded) if a["agent"] == "kube-proxy"]
    assert len(again) == 1 and _values(again[0]) == values and again[0]["ipvs"] == agent["ipvs"]


def test_profile_does_not_fight_the_live_agent(fake_kube_proxy, tmp_path):
    """sysctl_profile and sysctl_facts through ansible-playbook in the fake kube-proxy's own namespace."""
    bin_dir = os.path.dirname(sys.executable)
    scratch = dict((d, str(tmp_path / d)) for d in ("etc", "usrlib", "varlib"))
    for path in scratch.values():
        os.makedirs(path)
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        {"linuxnet.tcp.sysctl_profile": {"name": "node", "settings": {
            "net.netfilter.nf_conntrack_tcp_timeout_established": 86400,   # kube-proxy sets 7200 from its config
            "net.ipv4.conf.all.arp_announce": 2,                           # kube-proxy sets 2 as well: no fight
            "net.ipv4.tcp_keepalive_time": 600}}},
        {"linuxnet.tcp.sysctl_facts": {"keys": ["net.netfilter.nf_conntrack_tcp_timeout_established", "net.ipv4.tcp_keepalive_time"]}},
    ]}]
    path = str(tmp_path / "play.json")
    with open(path, "w") as handle:
        json.dump(play, handle)
    mounts = ('mount --bind "$1" /etc/sysctl.d && mount --bind "$2" /usr/lib/sysctl.d && mount --bind "$3" /var/lib && '
              'shift 3 && exec "$@"')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    proc = subprocess.run(["ip", "netns", "exec", fake_kube_proxy["netns"], "unshare", "-m", "--propagation", "private",
                           "sh", "-c", mounts, "sh", scratch["etc"], scratch["usrlib"], scratch["varlib"],
                           os.path.join(bin_dir, "ansible-playbook"), "-i", "localhost,",
                           "-e", "ansible_python_interpreter=/usr/bin/python3", path],
                          capture_output=True, text=True, env=env, timeout=180, check=False)
    doc = json.loads(proc.stdout[proc.stdout.find("{"):])
    profile, facts = [t["hosts"]["localhost"] for t in doc["plays"][0]["tasks"]]
    owned = [s for s in profile["skipped_keys"] if s["classification"] == "owned_by_agent"]
    assert [s["key"] for s in owned] == ["net.netfilter.nf_conntrack_tcp_timeout_established"], profile
    assert owned[0]["reason"].startswith("kube-proxy sets it at start") and ", to 7200. Set " in owned[0]["reason"]
    assert set(profile["applied"]) == {"net.ipv4.conf.all.arp_announce", "net.ipv4.tcp_keepalive_time"}
    with open(os.path.join(scratch["etc"], "90-linuxnet-node.conf")) as handle:
        assert "nf_conntrack_tcp_timeout_established" not in handle.read()
    established = subprocess.run(["ip", "netns", "exec", fake_kube_proxy["netns"], "cat",
                                  "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    assert established != "86400"
    sysctl = facts["ansible_facts"]["sysctl"]
    assert [a["agent"] for a in sysctl["agents"] if a["pid"] == fake_kube_proxy["pid"]] == ["kube-proxy"]
    assert [w["agent"] for w in sysctl["writers"]["net.netfilter.nf_conntrack_tcp_timeout_established"]] == ["kube-proxy"]
    assert "net.ipv4.tcp_keepalive_time" not in sysctl["writers"]
