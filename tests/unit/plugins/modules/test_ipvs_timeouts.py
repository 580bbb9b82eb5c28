# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ipvs_timeouts module with a fake ipvsadm (the test kernel has no ip_vs); the library is in _sysctl/test_ipvs.py.

The output format is ipvsadm 1.31's ``printf("Timeout (tcp tcpfin udp): %d %d %d\\n")`` (Debian 12 package
ipvsadm 1:1.31-1+b1, checked in the binary's strings).
"""
import json

import pytest
from ansible_collections.linuxnet.tcp.tests.unit.plugins.modules.module_args import patch_module_args

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import ipvs as _ipvs
from ansible_collections.linuxnet.tcp.plugins.modules import ipvs_timeouts


def run_module(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            ipvs_timeouts.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def kernel(monkeypatch):
    """Whole-module runs against recorded ipvsadm output through AnsibleModule.run_command."""
    state = {"timeouts": dict(_ipvs.DEFAULTS), "calls": []}

    def run_command(self, args, environ_update=None, **kwargs):
        state["calls"].append(list(args))
        assert environ_update == {"LC_ALL": "C"}
        if args[1:] == ["-L", "--timeout"]:
            return 0, "Timeout (tcp tcpfin udp): %(tcp)d %(tcpfin)d %(udp)d\n" % state["timeouts"], ""
        state["timeouts"] = dict(zip(_ipvs.FIELDS, (int(v) for v in args[2:])))
        return 0, "", ""

    monkeypatch.setattr(ipvs_timeouts, "available", lambda: True)
    monkeypatch.setattr(ipvs_timeouts.AnsibleModule, "get_bin_path", lambda self, *a, **k: "/usr/sbin/ipvsadm")
    monkeypatch.setattr(ipvs_timeouts.AnsibleModule, "run_command", run_command)
    return state


def test_module_check_real_idempotent(kernel, capsys):
    check = run_module({"tcp": 3600, "_ansible_check_mode": True, "_ansible_diff": True}, capsys)
    assert check["changed"] is True and kernel["timeouts"] == _ipvs.DEFAULTS
    assert check["diff"]["before"] == "900 120 300\n" and check["diff"]["after"] == "3600 120 300\n"
    real = run_module({"tcp": 3600}, capsys)
    assert real["changed"] is True and real["after"] == check["after"] and kernel["timeouts"]["tcp"] == 3600
    again = run_module({"tcp": 3600}, capsys)
    assert again["changed"] is False


def test_module_fails_without_ip_vs(monkeypatch, capsys):
    monkeypatch.setattr(ipvs_timeouts, "available", lambda: False)
    out = run_module({"tcp": 3600}, capsys)
    assert out["failed"] and "ip_vs is not loaded" in out["msg"]


def test_module_refuses_negative(kernel, capsys):
    out = run_module({"udp": -5}, capsys)
    assert out["failed"] and "udp must be 0 or more" in out["msg"] and kernel["calls"] == []
