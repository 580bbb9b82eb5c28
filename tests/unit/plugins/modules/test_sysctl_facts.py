# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
import json
import os

import pytest
from ansible_collections.linuxnet.tcp.tests.unit.plugins.modules.module_args import patch_module_args

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import facts as _sysctl_facts
from ansible_collections.linuxnet.tcp.plugins.modules import sysctl_facts

from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.sysctl_fixtures import make_tree  # noqa: E402  pylint: disable=wrong-import-position


def run(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            sysctl_facts.main()
    return json.loads(capsys.readouterr().out)


def test_facts_on_fake_tree(tmp_path, monkeypatch, capsys):
    base = make_tree(tmp_path, child=True)
    monkeypatch.setattr(sysctl_facts._ipvs, "available", lambda: False)
    monkeypatch.setattr(sysctl_facts, "gather_facts", lambda _root, *a: _sysctl_facts.gather_facts(base, *a))
    out = run({"keys": ["net.core.*", "net.ipv4.tcp_max_orphans"], "_ansible_check_mode": True}, capsys)
    facts = out["ansible_facts"]["sysctl"]
    assert out["changed"] is False
    assert facts["runtime"]["net.core.somaxconn"] == "4096" and facts["runtime"]["net.core.rmem_max"] == "4194304"
    assert facts["missing"]["net.ipv4.tcp_max_orphans"]["classification"] == "global_in_child_netns"
    assert facts["missing"]["net.core.netdev_max_backlog"]["reason"] == "global key: set this on the host"
    assert facts["kernel"]["initial_netns"] is False
    assert set(facts) == {"runtime", "missing", "persisted", "drift", "overrides", "kernel", "boot", "module_options", "ipvs", "agents", "writers"}
    assert facts["agents"] == [] and facts["writers"] == {}  # no process table under the fake root
    assert facts["ipvs"] is None  # no ip_vs on the fake tree's host either


def test_bad_pattern_fails(tmp_path, monkeypatch, capsys):
    base = make_tree(tmp_path)
    monkeypatch.setattr(sysctl_facts, "gather_facts", lambda _root, *a: _sysctl_facts.gather_facts(base, *a))
    out = run({"keys": ["../etc"]}, capsys)
    assert out["failed"] is True and "'..'" in out["msg"]


def test_real_host_read_only(capsys):
    # Runs on the real /proc/sys: the module only reads, and the TCP set must be readable anywhere Linux runs.
    out = run({"persisted": False}, capsys)
    facts = out["ansible_facts"]["sysctl"]
    assert out["changed"] is False and "net.ipv4.tcp_fin_timeout" in facts["runtime"]
    with open("/proc/sys/net/ipv4/tcp_fin_timeout") as handle:
        assert facts["runtime"]["net.ipv4.tcp_fin_timeout"] == handle.read().strip()


def test_ipvs_timeouts_read_with_ipvsadm(tmp_path, monkeypatch, capsys):
    base = make_tree(tmp_path)
    monkeypatch.setattr(sysctl_facts, "gather_facts", lambda _root, *a: _sysctl_facts.gather_facts(base, *a))
    monkeypatch.setattr(sysctl_facts._ipvs, "available", lambda: True)
    fake = tmp_path / "ipvsadm"
    fake.write_text("#!/bin/sh\n[ \"$*\" = \"-L --timeout\" ] && echo 'Timeout (tcp tcpfin udp): 900 120 300'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (tmp_path, os.environ["PATH"]))
    out = run({"keys": ["net.core.somaxconn"]}, capsys)
    assert out["ansible_facts"]["sysctl"]["ipvs"] == {"tcp": 900, "tcpfin": 120, "udp": 300}
    fake.write_text("#!/bin/sh\necho 'Can not initialize ipvs' >&2; exit 2\n")
    out = run({"keys": ["net.core.somaxconn"]}, capsys)
    assert out["ansible_facts"]["sysctl"]["ipvs"] is None and "cannot be read" in json.dumps(out["warnings"])


def test_special_files_and_hostile_lines_are_warned_about(tmp_path, monkeypatch, capsys):
    base = make_tree(tmp_path)
    os.makedirs(os.path.join(base, "etc", "sysctl.d"))
    os.mkfifo(os.path.join(base, "etc", "sysctl.d", "x.conf"))
    with open(os.path.join(base, "etc", "sysctl.d", "y.conf"), "w") as handle:
        handle.write("net.ipv4." + "{a,b}" * 1100 + "* = 1\n")
    monkeypatch.setattr(sysctl_facts._ipvs, "available", lambda: False)
    monkeypatch.setattr(sysctl_facts, "gather_facts", lambda _root, *a: _sysctl_facts.gather_facts(base, *a))
    real = sysctl_facts._sysctl_conf.config_warnings
    monkeypatch.setattr(sysctl_facts._sysctl_conf, "config_warnings", lambda _root: real(base))
    out = run({"keys": ["net.core.somaxconn"]}, capsys)
    assert out["ansible_facts"]["sysctl"]["runtime"] == {"net.core.somaxconn": "4096"}
    # ansible-core 2.19 returns each warning as an event, earlier releases as a string.
    said = [w if isinstance(w, str) else w["event"]["msg"] for w in out["warnings"]]
    assert said[0] == "/etc/sysctl.d/x.conf is a FIFO, not a regular file: skipped, never opened"
    assert said[1].startswith("/etc/sysctl.d/y.conf line 1 skipped: pattern 'net/ipv4/{a,b}")
    bad = run({"keys": ["net.ipv4.{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}*"]}, capsys)
    assert bad["failed"] is True and "expands to more than 1024 alternatives" in bad["msg"]
