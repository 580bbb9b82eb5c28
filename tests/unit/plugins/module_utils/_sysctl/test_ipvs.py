# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""IPVS timeouts through ipvsadm, on recorded ipvsadm output (the test kernel has no ip_vs).

The output format is ipvsadm 1.31's ``printf("Timeout (tcp tcpfin udp): %d %d %d\\n")`` (Debian 12 package
ipvsadm 1:1.31-1+b1, checked in the binary's strings).
"""
import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import ipvs as _ipvs

RECORDED_DEFAULT = "Timeout (tcp tcpfin udp): 900 120 300\n"
RECORDED_TUNED = "Timeout (tcp tcpfin udp): 3600 120 300\n"
RECORDED_NO_MODULE = "Can't initialize ipvs: Protocol not available\nAre you sure that IP Virtual Server is built in the kernel or as module?\n"


@pytest.mark.parametrize("text, expected", [
    (RECORDED_DEFAULT, {"tcp": 900, "tcpfin": 120, "udp": 300}),
    (RECORDED_TUNED, {"tcp": 3600, "tcpfin": 120, "udp": 300}),
    ("IP Virtual Server version 1.2.1 (size=4096)\nTimeout (tcp tcpfin udp): 7200 30 60\n", {"tcp": 7200, "tcpfin": 30, "udp": 60}),
    ("Timeout (tcp tcpfin udp):  900\t120 300", {"tcp": 900, "tcpfin": 120, "udp": 300}),
])
def test_parse_recorded_output(text, expected):
    assert _ipvs.parse_timeouts(text) == expected


@pytest.mark.parametrize("text", ["", RECORDED_NO_MODULE, "Timeout (tcp tcpfin udp): 900 120", "Timeout: 900 120 300"])
def test_parse_refuses_unknown_output(text):
    with pytest.raises(_ipvs.IpvsError, match="cannot find"):
        _ipvs.parse_timeouts(text)


@pytest.mark.parametrize("wanted, expected", [
    ({"tcp": 3600, "tcpfin": None, "udp": None}, {"tcp": 3600, "tcpfin": 120, "udp": 300}),
    ({"tcp": 0, "tcpfin": 0, "udp": 0}, {"tcp": 900, "tcpfin": 120, "udp": 300}),
    ({"tcp": 900, "tcpfin": 120, "udp": 300}, {"tcp": 900, "tcpfin": 120, "udp": 300}),
    ({}, {"tcp": 900, "tcpfin": 120, "udp": 300}),
])
def test_target_keeps_zero_and_unset(wanted, expected):
    assert _ipvs.target(dict(_ipvs.DEFAULTS), wanted) == expected


@pytest.mark.parametrize("bad", [-1, True, "900"])
def test_target_refuses_bad_values(bad):
    with pytest.raises(_ipvs.IpvsError, match="non-negative"):
        _ipvs.target(dict(_ipvs.DEFAULTS), {"tcp": bad})


class FakeModule(object):
    """Records run_command calls and answers like ipvsadm with a kernel holding ``state``."""

    def __init__(self, state, fail_set=False, ignore_set=False):
        self.state = dict(state)
        self.calls = []
        self.fail_set = fail_set
        self.ignore_set = ignore_set

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return "/usr/sbin/" + name

    def run_command(self, args, environ_update=None):
        self.calls.append((list(args), dict(environ_update or {})))
        if args[1:] == ["-L", "--timeout"]:
            return 0, "Timeout (tcp tcpfin udp): %(tcp)d %(tcpfin)d %(udp)d\n" % self.state, ""
        if args[1] == "--set":
            if self.fail_set:
                return 2, "", "invalid timeout value `x' specified\n"
            if not self.ignore_set:
                self.state = dict(zip(_ipvs.FIELDS, (int(v) for v in args[2:])))
            return 0, "", ""
        raise AssertionError(args)


def test_ensure_sets_reads_back_and_uses_lc_all_c():
    module = FakeModule(_ipvs.DEFAULTS)
    changed, before, after = _ipvs.ensure(_ipvs.Ipvsadm(module), {"tcp": 3600})
    assert changed and before == _ipvs.DEFAULTS and after == {"tcp": 3600, "tcpfin": 120, "udp": 300}
    assert [c[0] for c in module.calls] == [["/usr/sbin/ipvsadm", "-L", "--timeout"],
                                            ["/usr/sbin/ipvsadm", "--set", "3600", "120", "300"],
                                            ["/usr/sbin/ipvsadm", "-L", "--timeout"]]
    assert all(c[1] == {"LC_ALL": "C"} for c in module.calls)


def test_ensure_idempotent_and_check_mode_write_nothing():
    module = FakeModule({"tcp": 3600, "tcpfin": 120, "udp": 300})
    assert _ipvs.ensure(_ipvs.Ipvsadm(module), {"tcp": 3600, "tcpfin": 120, "udp": 300})[0] is False
    module = FakeModule(_ipvs.DEFAULTS)
    changed, _before, after = _ipvs.ensure(_ipvs.Ipvsadm(module), {"udp": 60}, check_mode=True)
    assert changed and after["udp"] == 60 and module.state == _ipvs.DEFAULTS
    assert all("--set" not in c[0] for c in module.calls)


def test_ensure_reports_failures():
    with pytest.raises(_ipvs.IpvsError, match="rc=2"):
        _ipvs.ensure(_ipvs.Ipvsadm(FakeModule(_ipvs.DEFAULTS, fail_set=True)), {"tcp": 1})
    with pytest.raises(_ipvs.IpvsError, match="kept"):
        _ipvs.ensure(_ipvs.Ipvsadm(FakeModule(_ipvs.DEFAULTS, ignore_set=True)), {"tcp": 1})


def test_missing_binary():
    class NoBin(FakeModule):
        def get_bin_path(self, name, required=False, opt_dirs=None):
            return None
    with pytest.raises(_ipvs.IpvsError, match="not installed"):
        _ipvs.Ipvsadm(NoBin(_ipvs.DEFAULTS))


def test_available_reads_proc_net(tmp_path):
    assert not _ipvs.available(str(tmp_path))
    (tmp_path / "proc" / "net").mkdir(parents=True)
    (tmp_path / "proc" / "net" / "ip_vs").write_text("IP Virtual Server version 1.2.1 (size=4096)\n")
    assert _ipvs.available(str(tmp_path))
