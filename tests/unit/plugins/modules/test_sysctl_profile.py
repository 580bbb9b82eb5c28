# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whole-module tests: the real module and library on a fake root (the module always uses '/')."""
import errno
import json
import os
import shutil

import pytest
from ansible_collections.linuxnet.tcp.tests.unit.plugins.modules.module_args import (  # pylint: disable=wrong-import-order
    patch_module_args)

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import files as _sysctl_files
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import profile as _sysctl_profile
from ansible_collections.linuxnet.tcp.plugins.modules import sysctl_profile

from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.sysctl_fixtures import (  # pylint: disable=wrong-import-order
    DiskFault, make_tree, raw)


@pytest.fixture
def root(tmp_path, monkeypatch):
    base = make_tree(tmp_path)
    monkeypatch.setattr(sysctl_profile, "profile_present", lambda _root, *a, **k: _sysctl_profile.profile_present(base, *a, **k))
    monkeypatch.setattr(sysctl_profile, "profile_absent", lambda _root, *a, **k: _sysctl_profile.profile_absent(base, *a, **k))
    monkeypatch.setattr(sysctl_profile, "profile_reverted", lambda _root, *a, **k: _sysctl_profile.profile_reverted(base, *a, **k))
    monkeypatch.setattr(sysctl_profile, "agent_writers", lambda _root, settings: _sysctl_profile.agent_writers(base, settings))
    return base


def run(args, capsys):
    # Unit runs never log to the host's syslog. With target syslog on, ansible-core 2.17+ on Python 3.12+ itself
    # fails a run whose arguments hold a NUL byte ("Failed to log to syslog (embedded null character)") before the
    # module's own check; that check is what these tests are about (no_target_syslog = True, which the action
    # plugin passes as _ansible_no_log, reaches it for real).
    args = dict(args, _ansible_no_log=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            sysctl_profile.main()
    return json.loads(capsys.readouterr().out)


def test_present_check_then_real_then_idempotent(root, capsys):
    args = {"name": "web", "settings": {"net.core.somaxconn": ">= 8192", "net.ipv4.tcp_tw_recycle": 1, "net.ipv4.tcp_fin_timeout": 2,
                                        "net.ipv4.ip_conntrack_max": 524288}}
    check = run(dict(args, _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert check["changed"] is True and raw(root, "net/core/somaxconn") == "4096\n"
    real = run(dict(args, _ansible_diff=True), capsys)
    for key in ("changed", "applied", "skipped_keys", "refused", "renamed", "persisted_file", "overridden_at_boot", "diff"):
        assert real[key] == check[key], key
    assert real["persisted_file"] == "/etc/sysctl.d/90-linuxnet-web.conf"
    assert real["skipped_keys"][0]["classification"] == "removed"
    assert real["refused"][0]["key"] == "net.ipv4.tcp_fin_timeout"
    assert "refused net.ipv4.tcp_fin_timeout" in json.dumps(real.get("warnings"))
    assert "skipped" not in real
    assert raw(root, "net/core/somaxconn") == "8192\n"
    again = run(args, capsys)
    assert again["changed"] is False


@pytest.mark.parametrize("args, words", [
    ({"name": "web"}, "settings"),
    ({"name": "web", "settings": {"net.core.somaxconn": "1\nkernel.x = 1"}}, "nothing changed: net.core.somaxconn: value must not contain a newline"),
    ({"name": "../x", "settings": {"net.core.somaxconn": 1}}, "nothing changed: name"),
    ({"name": "web", "settings": {"net.ipv4.tcp_tw_recycle": 1}, "unsupported": "fail"}, "removed"),
    ({"name": "web", "settings": {"net.core.somaxconn": 1}, "file": "/etc/sysctl.conf"}, "never edits"),
    ({"name": "fz0\n", "settings": {"net.core.somaxconn": 1}}, "nothing changed: name 'fz0\\n' must be 1-64 characters"),
    ({"name": "web", "settings": {"net.core.somaxconn": 1}, "file": "/etc/sysctl.d/x\x00.conf"}, "must not contain a NUL byte"),
    ({"name": "web", "settings": {"net.core.somaxconn": 1}, "file": "/etc/sysctl.d/.x.conf"}, "hidden file name"),
    ({"name": "web", "settings": {"net.core.somaxconn": 1}, "lock_timeout": -1}, "lock_timeout must be a number of seconds"),
])
def test_bad_input_fails_cleanly(root, capsys, args, words):
    out = run(args, capsys)
    assert out["failed"] is True and words in out["msg"]
    assert not os.path.exists(os.path.join(root, "etc"))


def test_absent(root, capsys):
    run({"name": "web", "settings": {"net.ipv4.tcp_keepalive_time": 600}}, capsys)
    out = run({"name": "web", "state": "absent"}, capsys)
    assert out["changed"] is True and out["applied"] == {"net.ipv4.tcp_keepalive_time": {"before": "600", "after": "7200"}}
    assert raw(root, "net/ipv4/tcp_keepalive_time") == "7200\n"


def test_module_options_reach_the_engine(root, capsys):
    args = {"name": "nat", "modules": ["nf_conntrack"], "module_options": {"nf_conntrack": {"hashsize": 65536}},
            "reserve_listener_ports": True,
            "settings": {"net.netfilter.nf_conntrack_tcp_timeout_established": 86400, "net.ipv4.ip_local_port_range": "10240 65535",
                         "net.ipv4.ip_local_reserved_ports": ">= 9100-9101,8080"}}
    out = run(args, capsys)
    assert out["changed"] is True and out["modules_loaded"] == []  # the fake host has nf_conntrack loaded
    assert out["modules_file"] == "/etc/modules-load.d/90-linuxnet-nat.conf"
    assert out["modprobe_file"] == "/etc/modprobe.d/90-linuxnet-nat.conf"
    with open(os.path.join(root, "etc/modprobe.d/90-linuxnet-nat.conf")) as handle:
        assert handle.read().splitlines()[-1] == "options nf_conntrack hashsize=65536"
    assert out["applied"]["net.ipv4.ip_local_reserved_ports"]["after"] == "8080,9100-9101"
    assert set(out["kernel"]) == {"release", "initial_netns", "proc_sys_writable", "proc_sys_net_writable"}
    assert run(args, capsys)["changed"] is False
    bad = run(dict(args, modules=["nf conntrack"]), capsys)
    assert bad["failed"] is True and bad["msg"].startswith("nothing changed: modules:")


def test_a_held_lock_fails_with_its_path_and_holder(root, capsys):
    with _sysctl_files.HostLock(root):
        out = run({"name": "web", "settings": {"net.core.somaxconn": 8192}, "lock_timeout": 0}, capsys)
    assert out["failed"] is True and out["msg"].startswith("nothing changed: another run of linuxnet.tcp.sysctl_profile holds "
                                                           "the lock /var/lib/linuxnet-tcp/sysctl.lock (pid %d)" % os.getpid())
    assert out["lock"] == "/var/lib/linuxnet-tcp/sysctl.lock" and out["lock_holder_pid"] == os.getpid()
    assert raw(root, "net/core/somaxconn") == "4096\n"


def test_a_full_disk_fails_with_the_path_and_errno_never_a_traceback(root, capsys, monkeypatch):
    os.makedirs(os.path.join(root, "etc/sysctl.d"))
    DiskFault(monkeypatch, root, "/etc/sysctl.d", errno.ENOSPC)
    out = run({"name": "web", "settings": {"net.core.somaxconn": 8192}}, capsys)
    assert out["failed"] is True and out["error_path"] == "/etc/sysctl.d/90-linuxnet-web.conf" and out["errno"] == "ENOSPC"
    assert "rolled back 1 runtime value(s)" in out["msg"] and "Traceback" not in json.dumps(out)
    assert raw(root, "net/core/somaxconn") == "4096\n"


def test_the_module_detects_agents_first_and_passes_them_to_the_run(root, capsys, monkeypatch):
    """kube-proxy's recorded command line sets the conntrack established timeout to 12 h: the module's detection,
    made before the run, is what the run skips the key for."""
    fixture = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "agents", "kube-proxy-flags-iptables", "proc", "911")
    shutil.copytree(fixture, os.path.join(root, "proc", "911"))
    passed = []
    real = sysctl_profile.profile_present
    monkeypatch.setattr(sysctl_profile, "profile_present", lambda *a, **k: passed.append(k["writers"]) or real(*a, **k))
    result = run({"name": "web", "settings": {"net.netfilter.nf_conntrack_tcp_timeout_established": 86400}}, capsys)
    assert [w["agent"] for w in passed[0]["net.netfilter.nf_conntrack_tcp_timeout_established"]] == ["kube-proxy"]
    assert [s["classification"] for s in result["skipped_keys"]] == ["owned_by_agent"] and result["applied"] == {}
    assert raw(root, "net/netfilter/nf_conntrack_tcp_timeout_established") == "432000\n"
