# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Live tests of sysctl_profile / sysctl_facts through ansible-playbook.

Each test gets a throwaway network namespace (``ip netns add lntcp-...``) and runs every playbook in
``ip netns exec NS unshare -m`` with scratch directories bind-mounted over /etc/sysctl.d,
/usr/lib/sysctl.d and /var/lib, so only namespaced net.* keys of the throwaway netns and scratch
files are touched; the host's /etc and kernel settings are never written.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sysctl_lab import COLLECTIONS, skip_unless_root

pytestmark = pytest.mark.live


def profile(name, settings, **extra):
    args = dict(name=name, settings=settings)
    args.update(extra)
    return {"name": "profile %s" % name, "linuxnet.tcp.sysctl_profile": args, "ignore_errors": True}


WEB = {
    "net.ipv4.tcp_keepalive_time": 600,
    "net.ipv4.tcp_max_tw_buckets": ">= 262144",
    "net.core.somaxconn": ">= 8192",
    "net.ipv4.ip_local_port_range": "10240 65535",
    "net.ipv4.tcp_tw_recycle": 1,                # removed in 4.12: skipped, never persisted
    "net.core.rmem_max": ">= 8388608",          # global: read-only in a child netns
    "net.ipv4.tcp_fin_timeout": 2,               # refused
}


@skip_unless_root
def test_check_apply_idempotent_and_absent(lab):
    keepalive0 = lab.sysctl("net.ipv4.tcp_keepalive_time")
    somax0 = lab.sysctl("net.core.somaxconn")
    check = lab.playbook([dict(profile("web", WEB), check_mode=True)])[0]
    assert check["changed"] is True
    assert lab.sysctl("net.ipv4.tcp_keepalive_time") == keepalive0
    assert os.listdir(lab.etc) == []

    real = lab.playbook([profile("web", WEB)])[0]
    assert not real.get("failed"), real
    for key in ("changed", "applied", "skipped_keys", "refused", "renamed", "persisted_file", "diff"):
        assert real[key] == check[key], key
    assert lab.sysctl("net.ipv4.tcp_keepalive_time") == "600"
    assert lab.sysctl("net.core.somaxconn") == "8192"
    assert lab.sysctl("net.ipv4.ip_local_port_range") == "10240 65535"
    assert lab.sysctl("net.ipv4.tcp_fin_timeout") == "60"
    skipped = dict((s["key"], s["classification"]) for s in real["skipped_keys"])
    assert skipped == {"net.ipv4.tcp_tw_recycle": "removed", "net.core.rmem_max": "global_in_child_netns"}
    assert [r["key"] for r in real["refused"]] == ["net.ipv4.tcp_fin_timeout"]

    dropin = os.path.join(lab.etc, "90-linuxnet-web.conf")
    with open(dropin) as handle:
        text = handle.read()
    assert "net.ipv4.tcp_keepalive_time = 600" in text and "tcp_tw_recycle" not in text and "rmem_max" not in text
    mtime = os.stat(dropin).st_mtime_ns

    again = lab.playbook([profile("web", WEB), dict(profile("web", WEB), check_mode=True)])
    assert [r["changed"] for r in again] == [False, False]
    assert os.stat(dropin).st_mtime_ns == mtime

    absent = lab.playbook([{"linuxnet.tcp.sysctl_profile": {"name": "web", "state": "absent"}}])[0]
    assert absent["changed"] is True
    assert lab.sysctl("net.ipv4.tcp_keepalive_time") == keepalive0
    assert lab.sysctl("net.core.somaxconn") == somax0
    assert lab.sysctl("net.ipv4.ip_local_port_range") == "32768 60999"
    # No trace left: the state directory goes with the last state file (and the lock file with every run).
    assert os.listdir(lab.etc) == [] and not os.path.exists(os.path.join(lab.varlib, "linuxnet-tcp"))


@skip_unless_root
def test_missing_key_never_poisons_later_runs(lab):
    results = lab.playbook([
        profile("legacy", {"net.ipv4.tcp_tw_recycle": 1, "net.ipv4.netfilter.ip_conntrack_tcp_timeout_established": 86400,
                           "net.ipv4.tcp_keepalive_intvl": 30}),
        profile("other", {"net.ipv4.tcp_keepalive_probes": 5}),
    ])
    assert [r.get("failed", False) for r in results] == [False, False]
    assert results[0]["renamed"] == [{"key": "net.ipv4.netfilter.ip_conntrack_tcp_timeout_established",
                                      "to": "net.netfilter.nf_conntrack_tcp_timeout_established"}]
    assert lab.sysctl("net.ipv4.tcp_keepalive_intvl") == "30" and lab.sysctl("net.ipv4.tcp_keepalive_probes") == "5"
    # procps applies our files without an error: no line names a key this kernel lacks.
    for name in sorted(os.listdir(lab.etc)):
        with open(os.path.join(lab.etc, name)) as handle:
            assert "tcp_tw_recycle" not in handle.read()
        proc = subprocess.run(lab.wrap(["sysctl", "-p", "/etc/sysctl.d/" + name]), capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@skip_unless_root
def test_failed_write_rolls_back_everything(lab):
    before = dict((k, lab.sysctl(k)) for k in ("net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.ip_local_port_range"))
    # allow_unsafe lets the port range through our rule, so the kernel itself rejects it (EINVAL: below
    # ip_unprivileged_port_start) after the first two keys were written.
    result = lab.playbook([profile("bad", {"net.ipv4.tcp_keepalive_time": 600, "net.ipv4.tcp_fin_timeout": 30,
                                           "net.ipv4.ip_local_port_range": "1000 65000"}, allow_unsafe=True)])[0]
    assert result["failed"] is True and result["classification"] == "invalid_value"
    assert "rolled back 3 key(s)" in result["msg"]
    assert dict((k, lab.sysctl(k)) for k in before) == before
    assert os.listdir(lab.etc) == []


@skip_unless_root
def test_boot_override_and_facts(lab):
    with open(os.path.join(lab.etc, "95-site.conf"), "w") as handle:
        handle.write("net.ipv4.tcp_keepalive_time = 300\n")
    results = lab.playbook([
        profile("web", {"net.ipv4.tcp_keepalive_time": 600, "net.ipv4.tcp_keepalive_probes": 4}),
        {"linuxnet.tcp.sysctl_facts": {"keys": ["net.ipv4.tcp_keepalive_*", "net.core.rmem_max", "net.ipv4.tcp_max_orphans"]}},
    ])
    assert results[0]["overridden_at_boot"] == [{"key": "net.ipv4.tcp_keepalive_time", "file": "/etc/sysctl.d/95-site.conf", "value": "300"}]
    facts = results[1]["ansible_facts"]["sysctl"]
    assert facts["runtime"]["net.ipv4.tcp_keepalive_time"] == "600"
    assert facts["drift"]["net.ipv4.tcp_keepalive_time"] == {"runtime": "600", "persisted": "300", "file": "/etc/sysctl.d/95-site.conf"}
    assert facts["overrides"]["net.ipv4.tcp_keepalive_time"] == [
        {"file": "/etc/sysctl.d/90-linuxnet-web.conf", "value": "600"}, {"file": "/etc/sysctl.d/95-site.conf", "value": "300"}]
    assert facts["persisted"]["net.ipv4.tcp_keepalive_probes"] == {"value": "4", "file": "/etc/sysctl.d/90-linuxnet-web.conf"}
    assert facts["missing"]["net.ipv4.tcp_max_orphans"]["classification"] == "global_in_child_netns"
    # Visible read-only in a child netns since 6.11 (commit 19249c0724f2), absent before: the kernel of this run says
    # which, and the facts must agree with it either way.
    if lab.visible("net.core.rmem_max"):
        assert facts["runtime"]["net.core.rmem_max"] == lab.sysctl("net.core.rmem_max") and "net.core.rmem_max" not in facts["missing"]
    else:
        assert "net.core.rmem_max" not in facts["runtime"]
        assert facts["missing"]["net.core.rmem_max"]["classification"] == "global_in_child_netns"
    assert facts["kernel"]["initial_netns"] is False and facts["kernel"]["proc_sys_writable"] is True and facts["kernel"]["proc_sys_net_writable"] is True
    assert results[1]["changed"] is False


@skip_unless_root
def test_a_key_dropped_from_the_profile_is_restored(lab):
    keepalive0 = lab.sysctl("net.ipv4.tcp_keepalive_time")
    probes0 = lab.sysctl("net.ipv4.tcp_keepalive_probes")
    first = lab.playbook([profile("web", {"net.ipv4.tcp_keepalive_time": 600, "net.ipv4.tcp_keepalive_probes": 4})])[0]
    assert not first.get("failed"), first
    smaller = profile("web", {"net.ipv4.tcp_keepalive_probes": 4})
    check, real, again = lab.playbook([dict(smaller, check_mode=True), smaller, smaller])
    assert check["changed"] is True and check["restored"] == {"net.ipv4.tcp_keepalive_time": {"before": "600", "after": keepalive0}}
    assert "net.ipv4.tcp_keepalive_time = 600\n" in check["diff"][0]["before"]
    for key in ("changed", "restored", "applied", "diff"):
        assert real[key] == check[key], key
    # Read back from the kernel and the files, not from the module's own words.
    assert lab.sysctl("net.ipv4.tcp_keepalive_time") == keepalive0 and lab.sysctl("net.ipv4.tcp_keepalive_probes") == "4"
    with open(os.path.join(lab.etc, "90-linuxnet-web.conf")) as handle:
        text = handle.read()
    assert "tcp_keepalive_time" not in text and "net.ipv4.tcp_keepalive_probes = 4" in text
    with open(os.path.join(lab.varlib, "linuxnet-tcp", "sysctl-web.json")) as handle:
        assert json.load(handle)["originals"] == {"net.ipv4.tcp_keepalive_probes": probes0}
    assert again["changed"] is False and again["restored"] == {}


@skip_unless_root
def test_revert_undoes_one_run(lab):
    lab.playbook([profile("web", {"net.core.somaxconn": 8192})])
    with open(os.path.join(lab.etc, "90-linuxnet-web.conf")) as handle:
        tuned = handle.read()
    keepalive0 = lab.sysctl("net.ipv4.tcp_keepalive_time")
    change = dict(profile("web", {"net.core.somaxconn": 16384, "net.ipv4.tcp_keepalive_time": 600}), register="change")
    revert = {"linuxnet.tcp.sysctl_profile": {"name": "web", "state": "reverted", "revert": "{{ change.revert }}"}}
    results = lab.playbook([change, dict(revert, check_mode=True), revert, revert])
    assert lab.sysctl("net.core.somaxconn") == "8192" and lab.sysctl("net.ipv4.tcp_keepalive_time") == keepalive0
    with open(os.path.join(lab.etc, "90-linuxnet-web.conf")) as handle:
        assert handle.read() == tuned
    assert results[1]["restored"] == results[2]["restored"] == {
        "net.core.somaxconn": {"before": "16384", "after": "8192"}, "net.ipv4.tcp_keepalive_time": {"before": "600", "after": keepalive0}}
    assert [r["changed"] for r in results] == [True, True, True, False]


@skip_unless_root
def test_vlan_interface_keys_and_their_boot_value(lab):
    """Issue 11: an interface named eth0.100, its keys in both spellings, drift against the boot files."""
    subprocess.run(["ip", "netns", "exec", lab.name, "ip", "link", "add", "eth0.100", "type", "veth", "peer", "name", "bond0.20"],
                   check=True)
    with open(os.path.join(lab.etc, "34-b.conf"), "w") as handle:
        handle.write("net.ipv4.conf.eth0/100.send_redirects = 1\n")
    with open(os.path.join(lab.usrlib, "75-b.conf"), "w") as handle:
        handle.write("net/ipv4/conf/eth0.100/send_redirects = 0\nnet.ipv4.conf.*.log_martians = 1\n")
    results = lab.playbook([
        profile("vlan", {"net/ipv4/conf/eth0.100/rp_filter": 2, "net.ipv4.conf.bond0/20.rp_filter": 1}),
        {"linuxnet.tcp.sysctl_facts": {"keys": ["net.ipv4.conf.*.*"]}},
        {"linuxnet.tcp.sysctl_facts": {"keys": ["net/ipv4/conf/eth0.100/send_redirects"]}},
    ])
    applied = results[0]["applied"]
    assert set(applied) == {"net.ipv4.conf.eth0/100.rp_filter", "net.ipv4.conf.bond0/20.rp_filter"}
    assert lab.sysctl("net/ipv4/conf/eth0.100/rp_filter") == "2" and lab.sysctl("net/ipv4/conf/bond0.20/rp_filter") == "1"
    with open(os.path.join(lab.etc, "90-linuxnet-vlan.conf")) as handle:
        assert "net.ipv4.conf.eth0/100.rp_filter = 2" in handle.read()
    for facts in (results[1]["ansible_facts"]["sysctl"], results[2]["ansible_facts"]["sysctl"]):
        key = "net.ipv4.conf.eth0/100.send_redirects"
        assert facts["persisted"][key] == {"value": "0", "file": "/usr/lib/sysctl.d/75-b.conf"}
        assert facts["drift"][key]["runtime"] == lab.sysctl("net/ipv4/conf/eth0.100/send_redirects")
    facts = results[1]["ansible_facts"]["sysctl"]
    assert facts["persisted"]["net.ipv4.conf.eth0/100.rp_filter"] == {"value": "2", "file": "/etc/sysctl.d/90-linuxnet-vlan.conf"}
    assert facts["persisted"]["net.ipv4.conf.bond0/20.log_martians"] == {"value": "1", "file": "/usr/lib/sysctl.d/75-b.conf"}
    assert "net.ipv4.conf.bond0/20.rp_filter" not in facts["drift"]


@skip_unless_root
def test_next_boot_applies_what_the_profile_persisted(lab, tmp_path):
    """Issue 15: replay boot with the real systemd-sysctl over the files the collection wrote, in a fresh netns."""
    with open(os.path.join(lab.etc, "95-site.conf"), "w") as handle:
        handle.write("net.ipv4.tcp_keepalive_probes = 7\n")
    settings = {"net.ipv4.tcp_keepalive_time": 600, "net.ipv4.tcp_keepalive_probes": 4, "net.ipv4.tcp_tw_reuse": 1,
                "net.ipv4.ip_local_port_range": "20000 60999", "net.ipv4.tcp_fin_timeout": 30}
    result = lab.playbook([profile("web", settings)])[0]
    assert not result.get("failed"), result
    assert result["overridden_at_boot"] == [{"key": "net.ipv4.tcp_keepalive_probes", "file": "/etc/sysctl.d/95-site.conf", "value": "7"}]
    assert result["lost_at_boot"] == [] and result["pending_reboot"] == []
    out = str(tmp_path / "replay.json")
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                           os.path.join(os.path.dirname(__file__), "sysctl_boot_lab.py"), "replay",
                           "--dir", "/etc/sysctl.d=" + lab.etc, "--dir", "/usr/lib/sysctl.d=" + lab.usrlib, "--out", out],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=COLLECTIONS), timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out) as handle:
        boot = json.load(handle)
    overridden = dict((o["key"], o["value"]) for o in result["overridden_at_boot"])
    for key, item in result["applied"].items():
        expected = overridden.get(key, item["after"])
        assert boot["after"][key] == expected, (key, boot["after"][key], expected)
        assert boot["facts"]["boot"][key]["applies"] is True
    # The fresh namespace started from the kernel's defaults, so boot really changed these keys.
    assert boot["before"]["net.ipv4.tcp_keepalive_time"] != "600" and boot["after"]["net.ipv4.tcp_keepalive_time"] == "600"
