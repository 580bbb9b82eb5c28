# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Configuration files as systemd-sysctl 252 reads them (tests/integration/test_sysctl_boot.py checks the
same rules against the real binary on random layouts)."""
import os

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils import _common as common
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import conf

from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.sysctl_fixtures import put, reference_layout  # pylint: disable=wrong-import-order


@pytest.mark.parametrize("text, expected", [
    ("net.ipv4.tcp_fin_timeout = 30\n", [("net.ipv4.tcp_fin_timeout", "30", False, False, False)]),
    ("  net.ipv4.tcp_fin_timeout=30  \n", [("net.ipv4.tcp_fin_timeout", "30", False, False, False)]),
    ("# c\n; c\n\nnet.core.somaxconn = 4096\n", [("net.core.somaxconn", "4096", False, False, False)]),
    ("-net.netfilter.nf_conntrack_max = 262144\n", [("net.netfilter.nf_conntrack_max", "262144", True, False, False)]),
    ("- net.ipv4.tcp_fin_timeout = 30\n", [("net.ipv4.tcp_fin_timeout", "30", True, False, False)]),
    ("net.ipv4.ip_local_port_range = 32768\t60999\n", [("net.ipv4.ip_local_port_range", "32768 60999", False, False, False)]),
    ("net.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.lo.rp_filter\n",
     [("net.ipv4.conf.*.rp_filter", "2", False, True, False), ("net.ipv4.conf.lo.rp_filter", None, True, False, True)]),
    # Both spellings of a dotted interface name give one key, spelled the sysctl(8) way.
    ("net/ipv4/conf/eth0.100/forwarding = 1\n", [("net.ipv4.conf.eth0/100.forwarding", "1", False, False, False)]),
    ("net.ipv4.conf.eth0/100.forwarding = 1\n", [("net.ipv4.conf.eth0/100.forwarding", "1", False, False, False)]),
    # sysctl_normalize() drops empty and '.' components and a leading slash; '..' is never written.
    ("net..ipv4.tcp_fin_timeout = 30\n/net/ipv4/./tcp_syn_retries = 5\nnet/ipv4/../core/somaxconn = 1\n",
     [("net.ipv4.tcp_fin_timeout", "30", False, False, False), ("net.ipv4.tcp_syn_retries", "5", False, False, False)]),
    # read_line() ends lines at \r and NUL too; tabs are whitespace around keys and values.
    ("net.ipv4.tcp_fin_timeout\t=\t30\rnet.core.somaxconn = 1\x00net.ipv4.tcp_syn_retries = 4",
     [("net.ipv4.tcp_fin_timeout", "30", False, False, False), ("net.core.somaxconn", "1", False, False, False),
      ("net.ipv4.tcp_syn_retries", "4", False, False, False)]),
    ("garbage line\nkey with space = 1\n", [("key with space", "1", False, False, False)]),
])
def test_parse_conf(text, expected):
    got = [(e["key"], e["value"], e["ignore_failure"], e["glob"], e["exclude"]) for e in conf.parse_conf(text)]
    assert got == expected


def test_precedence_matches_systemd(tmp_path):
    root = str(tmp_path)
    reference_layout(root)
    assert [f[0] for f in conf.config_files(root, "systemd")] == [
        "/etc/sysctl.d/10-c.conf", "/etc/sysctl.d/50-a.conf", "/usr/lib/sysctl.d/60-b.conf", "/etc/sysctl.d/99-z.conf"]
    boot = conf.BootConfig(root)
    assert boot.effective("net.ipv4.tcp_fin_timeout")["value"] == "20"
    assert boot.effective("net.ipv4.tcp_keepalive_time")["value"] == "100"
    assert boot.effective("net/ipv4/tcp_keepalive_intvl")["value"] == "40"  # /etc/sysctl.conf is not read at boot


def test_procps_order_applies_sysctl_conf_last(tmp_path):
    root = str(tmp_path)
    reference_layout(root)
    assert [f[0] for f in conf.config_files(root, "procps")][-1] == "/etc/sysctl.conf"
    chains = conf.assignments(root, "procps")
    assert chains["net.ipv4.tcp_keepalive_intvl"] == [{"file": "/etc/sysctl.d/99-z.conf", "value": "40"},
                                                      {"file": "/etc/sysctl.conf", "value": "30"}]
    assert chains["net.ipv4.tcp_fin_timeout"] == [{"file": "/etc/sysctl.d/50-a.conf", "value": "20"}]


def test_masked_file_and_sysctl_conf_symlink(tmp_path):
    root = str(tmp_path)
    put(root, "/usr/lib/sysctl.d/50-vendor.conf", "net.core.somaxconn = 1024\n")
    put(root, "/etc/sysctl.conf", "net.ipv4.tcp_fin_timeout = 30\n")
    os.makedirs(os.path.join(root, "etc/sysctl.d"), exist_ok=True)
    os.symlink("/dev/null", os.path.join(root, "etc/sysctl.d/50-vendor.conf"))
    os.symlink("../sysctl.conf", os.path.join(root, "etc/sysctl.d/99-sysctl.conf"))
    for tool in ("systemd", "procps"):
        # The mask hides the vendor file; /etc/sysctl.conf is read once, as 99-sysctl.conf.
        assert [f[0] for f in conf.config_files(root, tool)] == ["/etc/sysctl.d/50-vendor.conf", "/etc/sysctl.d/99-sysctl.conf"]
        chains = conf.assignments(root, tool)
        assert "net.core.somaxconn" not in chains
        assert chains["net.ipv4.tcp_fin_timeout"] == [{"file": "/etc/sysctl.d/99-sysctl.conf", "value": "30"}]


def test_unreadable_name_still_hides_lower_directories(tmp_path):
    root = str(tmp_path)
    put(root, "/usr/lib/sysctl.d/50-a.conf", "net.core.somaxconn = 1024\n")
    os.makedirs(os.path.join(root, "etc/sysctl.d/50-a.conf"))  # a directory of that name: systemd reads nothing
    assert conf.BootConfig(root).effective("net.core.somaxconn") is None


def test_globs_and_exclusions(tmp_path):
    root = str(tmp_path)
    put(root, "/etc/sysctl.d/50-rp.conf", "net.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.lo.rp_filter\nnet.ipv4.conf.eth1.rp_filter = 0\n")
    boot = conf.BootConfig(root)
    assert boot.effective("net.ipv4.conf.eth0.rp_filter")["value"] == "2"
    assert boot.effective("net.ipv4.conf.eth0/100.rp_filter")["value"] == "2"  # '*' matches the dot of eth0.100
    assert boot.effective("net.ipv4.conf.eth1.rp_filter")["value"] == "0"
    # lo is excluded from the glob; the glob also writes default, but lo has 127.0.0.1 when systemd-sysctl runs, so
    # the kernel does not copy default to it: boot leaves lo's rp_filter as it was.
    assert boot.effective("net.ipv4.conf.lo.rp_filter") is None
    # A glob applies only to keys that exist with a write bit.
    assert boot.effective("net.ipv4.conf.eth0.rp_filter", settable=lambda key: False) is None
    # The map's own entry of a key, in either spelling: the exclusion of lo; a glob is no entry of eth0.
    assert boot.entry("net/ipv4/conf/lo/rp_filter") == {
        "norm": "net/ipv4/conf/lo/rp_filter", "key": "net.ipv4.conf.lo.rp_filter", "raw": None, "value": None,
        "ignore_failure": True, "glob": False, "exclude": True, "file": "/etc/sysctl.d/50-rp.conf"}
    assert boot.entry("net.ipv4.conf.eth0.rp_filter") is None


HOOK = ('ACTION=="add", SUBSYSTEM=="net", KERNEL!="lo", RUN+="/lib/systemd/systemd-sysctl --prefix=/net/ipv4/conf/$name '
        '--prefix=/net/ipv4/neigh/$name --prefix=/net/ipv6/conf/$name --prefix=/net/ipv6/neigh/$name"\n')


@pytest.mark.parametrize("lines, key, hook, expected", [
    # (a) default never reaches lo: it has 127.0.0.1 before systemd-sysctl runs, which marks all its values.
    (["10:net.ipv4.conf.default.rp_filter = 2"], "net.ipv4.conf.lo.rp_filter", False, (None, None)),
    (["10:net.ipv4.conf.default.rp_filter = 2", "20:net.ipv4.conf.lo.rp_filter = 1"], "net.ipv4.conf.lo.rp_filter", False, ("1", None)),
    # Another interface has no address yet: the default write reaches it.
    (["10:net.ipv4.conf.default.rp_filter = 2"], "net.ipv4.conf.eth0.rp_filter", False, ("2", "net.ipv4.conf.default.rp_filter")),
    # (b) The interface's line writes the value it already has (0, the boot value): skipped, the interface stays
    # unmarked, and the later default write overwrites it...
    (["10:net.ipv4.conf.eth0.rp_filter = 0", "20:net.ipv4.conf.default.rp_filter = 2"], "net.ipv4.conf.eth0.rp_filter", False,
     ("2", "net.ipv4.conf.default.rp_filter")),
    # ...but not when the written text differs from the kernel's ("0x0" is written, and marks the value)...
    (["10:net.ipv4.conf.eth0.rp_filter = 0x0", "20:net.ipv4.conf.default.rp_filter = 2"], "net.ipv4.conf.eth0.rp_filter", False,
     ("0x0", None)),
    # ...nor when the value differs from the boot value (accept_redirects boots as 1)...
    (["10:net.ipv4.conf.eth0.accept_redirects = 0", "20:net.ipv4.conf.default.accept_redirects = 1"],
     "net.ipv4.conf.eth0.accept_redirects", False, ("0", None)),
    # ...nor after an earlier default write (two globs: an explicit default line would keep them off default)
    # changed the value the interface line compares with.
    (["05:net.ipv4.conf.d*.rp_filter = 1", "10:net.ipv4.conf.eth0.rp_filter = 0", "20:net.ipv4.conf.de*.rp_filter = 2"],
     "net.ipv4.conf.eth0.rp_filter", False, ("0", None)),
    # One glob writes default and the interface in sorted path order: default first, then eth0.
    (["10:net.ipv4.conf.*.rp_filter = 2"], "net.ipv4.conf.eth0.rp_filter", False, ("2", None)),
    # A repeated assignment of the same value keeps its first place: the interface's line stays before the default
    # line, is skipped there, and the default write overwrites it (moved to the end, it would have been written last).
    (["10:net.ipv4.conf.eth0.rp_filter = 0", "20:net.ipv4.conf.default.rp_filter = 2", "30:net.ipv4.conf.eth0.rp_filter = 0"],
     "net.ipv4.conf.eth0.rp_filter", False, ("2", "net.ipv4.conf.default.rp_filter")),
    # systemd's udev rule applies the interface's own lines again when it appears: they win whatever the order...
    (["10:net.ipv4.conf.eth0.rp_filter = 0", "20:net.ipv4.conf.default.rp_filter = 2"], "net.ipv4.conf.eth0.rp_filter", True, ("0", None)),
    # ...an interface without lines of its own takes default's final value (it copies default when created)...
    (["10:net.ipv4.conf.default.rp_filter = 2"], "net.ipv4.conf.eth0/100.rp_filter", True, ("2", "net.ipv4.conf.default.rp_filter")),
    # ...and the rule skips lo, which stays marked.
    (["10:net.ipv4.conf.default.rp_filter = 2"], "net.ipv4.conf.lo.rp_filter", True, (None, None)),
    # forwarding is not copied from default (devinet_sysctl_forward()).
    (["10:net.ipv4.conf.default.forwarding = 1"], "net.ipv4.conf.eth0.forwarding", False, (None, None)),
])
def test_interface_keys_replay_the_kernel(tmp_path, lines, key, hook, expected):
    root = str(tmp_path)
    for item in lines:
        prefix, line = item.split(":", 1)
        put(root, "/usr/lib/sysctl.d/%s-x.conf" % prefix, line + "\n")
    if hook:
        put(root, "/usr/lib/udev/rules.d/99-systemd.rules", "# comment\n" + HOOK)
    boot = conf.BootConfig(root)
    assert boot.interface_hook is hook
    eff = boot.effective(key)
    assert ((eff or {}).get("value"), (eff or {}).get("via")) == expected


def test_interface_hook_needs_the_net_rule_with_the_interface_prefix(tmp_path):
    root = str(tmp_path)
    assert not conf.interface_hook(root)
    put(root, "/etc/udev/rules.d/50-bridge.rules", 'ACTION=="add", SUBSYSTEM=="module", KERNEL=="br_netfilter", '
        'RUN+="/lib/systemd/systemd-sysctl --prefix=/net/bridge"\n# SUBSYSTEM=="net" systemd-sysctl --prefix=/net/ipv4/conf/$name\n')
    assert not conf.interface_hook(root)
    put(root, "/etc/udev/rules.d/99-systemd.rules", HOOK)
    assert conf.interface_hook(root)


@pytest.mark.parametrize("text, value", [("1", 1), (" 0x1f\n", 31), ("010", 8), ("-3", -3), ("08", None), ("1 2", None), ("", None)])
def test_kernel_int_parses_as_proc_dointvec(text, value):
    assert conf.kernel_int(text) == value


@pytest.mark.parametrize("lines, key, expected", [
    # An explicit key beats a glob whatever the order.
    (["10:net.ipv4.conf.eth0.rp_filter = 1", "20:net.ipv4.conf.*.rp_filter = 2"], "net.ipv4.conf.eth0.rp_filter", "1"),
    # Of two globs, the later in the map wins...
    (["10:net.ipv4.conf.*.rp_filter = 1", "20:net.ipv4.conf.e*.rp_filter = 2"], "net.ipv4.conf.eth0.rp_filter", "2"),
    # ...and an assignment of the same value keeps its place, so here the other glob stays last and wins.
    (["10:net.ipv4.conf.*.rp_filter = 1", "20:net.ipv4.conf.e*.rp_filter = 2", "30:net.ipv4.conf.*.rp_filter = 1"],
     "net.ipv4.conf.eth0.rp_filter", "2"),
    # A different value moves the entry to the end.
    (["10:net.ipv4.conf.*.rp_filter = 1", "20:net.ipv4.conf.e*.rp_filter = 2", "30:net.ipv4.conf.*.rp_filter = 0"],
     "net.ipv4.conf.eth0.rp_filter", "0"),
    # An exclusion replaces an earlier assignment of the same key, and a later assignment replaces it.
    (["10:net.ipv4.conf.eth0.rp_filter = 1", "20:-net.ipv4.conf.eth0.rp_filter", "30:net.ipv4.conf.l*.rp_filter = 2"],
     "net.ipv4.conf.eth0.rp_filter", None),
    (["10:-net.ipv4.conf.eth0.rp_filter", "20:net.ipv4.conf.eth0.rp_filter = 1"], "net.ipv4.conf.eth0.rp_filter", "1"),
    # An exclusion given as a glob excludes nothing.
    (["10:net.ipv4.conf.*.rp_filter = 2", "20:-net.ipv4.conf.e*.rp_filter"], "net.ipv4.conf.eth0.rp_filter", "2"),
    # The same key in both spellings is one entry.
    (["10:net/ipv4/conf/eth0.100/rp_filter = 1", "20:net.ipv4.conf.eth0/100.rp_filter = 0"], "net.ipv4.conf.eth0/100.rp_filter", "0"),
    # glob(3): '?' matches the dot, braces expand, [^...] negates.
    (["10:net.ipv4.conf.eth0?100.rp_filter = 2"], "net.ipv4.conf.eth0/100.rp_filter", "2"),
    (["10:net.ipv4.conf.{lo,eth0}.rp_*lter = 2"], "net.ipv4.conf.eth0.rp_filter", "2"),
    (["10:net.ipv4.conf.[^ed]*.rp_filter = 2"], "net.ipv4.conf.eth0.rp_filter", None),
    (["10:net.ipv4.conf.[^e]*.rp_filter = 2"], "net.ipv4.conf.lo.rp_filter", "2"),
])
def test_boot_map_order(tmp_path, lines, key, expected):
    root = str(tmp_path)
    for item in lines:
        prefix, line = item.split(":", 1)
        put(root, "/usr/lib/sysctl.d/%s-x.conf" % prefix, line + "\n")
    eff = conf.BootConfig(root).effective(key)
    assert (eff and eff["value"]) == expected


@pytest.mark.parametrize("lines, key, expected, via", [
    # The kernel copies a write to default.X to every interface whose X was never written.
    (["10:net.ipv4.conf.default.rp_filter = 1"], "net.ipv4.conf.eth0/100.rp_filter", "1", "net.ipv4.conf.default.rp_filter"),
    (["10:net.ipv4.conf.default.rp_filter = 1", "20:net.ipv4.conf.eth0/100.rp_filter = 2"], "net.ipv4.conf.eth0/100.rp_filter",
     "2", None),
    # An exclusion stops the interface's own write, not the copy from default.
    (["10:net.ipv4.conf.default.rp_filter = 1", "20:-net.ipv4.conf.eth0.rp_filter"], "net.ipv4.conf.eth0.rp_filter", "1",
     "net.ipv4.conf.default.rp_filter"),
    # Not copied: all is no interface, forwarding has its own handler (devinet_sysctl_forward()), IPv6 has no copy.
    (["10:net.ipv4.conf.default.rp_filter = 1"], "net.ipv4.conf.all.rp_filter", None, None),
    (["10:net.ipv4.conf.default.forwarding = 1"], "net.ipv4.conf.eth0.forwarding", None, None),
    (["10:net.ipv6.conf.default.accept_ra = 0"], "net.ipv6.conf.eth0.accept_ra", None, None),
])
def test_interfaces_copy_default(tmp_path, lines, key, expected, via):
    root = str(tmp_path)
    for item in lines:
        prefix, line = item.split(":", 1)
        put(root, "/usr/lib/sysctl.d/%s-x.conf" % prefix, line + "\n")
    eff = conf.BootConfig(root).effective(key)
    assert (eff and eff["value"]) == expected and (eff and eff.get("via")) == via


def test_replace_resolves_as_after_a_write(tmp_path):
    root = str(tmp_path)
    put(root, "/usr/lib/sysctl.d/90-linuxnet-web.conf", "net.core.somaxconn = 1\n")
    boot = conf.BootConfig(root, {"/etc/sysctl.d/90-linuxnet-web.conf": "net.core.somaxconn = 8192\n"})
    assert boot.effective("net.core.somaxconn") == boot.effective("net/core/somaxconn")
    assert boot.effective("net.core.somaxconn")["file"] == "/etc/sysctl.d/90-linuxnet-web.conf"
    assert conf.BootConfig(root, {"/usr/lib/sysctl.d/90-linuxnet-web.conf": None}).effective("net.core.somaxconn") is None


def test_what_loads_a_module_before_systemd_sysctl(tmp_path):
    root = str(tmp_path)
    put(root, "/usr/lib/modules-load.d/modules.conf", "# /etc/modules\nnf_nat\n")
    put(root, "/etc/modules-load.d/90-linuxnet-lvs.conf", "ip_vs\n")
    put(root, "/etc/modules-load.d/.hidden.conf", "sctp\n")
    put(root, "/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/vda rd.modules-load=tcp_bbr,8021q quiet\n")
    put(root, "/lib/modules/6.18.44-test/modules.dep",
        "kernel/net/netfilter/nf_nat.ko.xz: kernel/net/netfilter/nf_conntrack.ko.xz kernel/lib/libcrc32c.ko.xz\n"
        "kernel/net/netfilter/nf_conntrack.ko.xz: kernel/lib/libcrc32c.ko.xz\n"
        "kernel/net/bridge/br_netfilter.ko.xz: kernel/net/bridge/bridge.ko.xz\n")
    put(root, "/lib/modules/6.18.44-test/modules.builtin", "kernel/net/ipv4/tcp_cubic.ko\n")
    put(root, "/etc/udev/rules.d/99-bridge.rules",
        'ACTION=="add", SUBSYSTEM=="module", KERNEL=="br_netfilter", RUN+="/usr/lib/systemd/systemd-sysctl --prefix=/net/bridge"\n')
    boot = conf.ModuleBoot(root, "6.18.44-test")
    assert boot.loaded_by("ip_vs") == "modules-load.d: /etc/modules-load.d/90-linuxnet-lvs.conf"
    assert boot.loaded_by("nf-conntrack") == "modules-load.d: /usr/lib/modules-load.d/modules.conf loads nf_nat, which needs nf_conntrack"
    assert boot.loaded_by("tcp_bbr") == "modules-load.d: kernel command line (rd.modules-load)"
    assert boot.loaded_by("tcp_cubic") == "built into the kernel"
    assert boot.loaded_by("sctp") is None
    assert boot.loaded_by("br_netfilter", "net.bridge.bridge-nf-call-iptables").startswith("udev rule /etc/udev/rules.d/99-bridge.rules")
    assert boot.loaded_by("br_netfilter", "net.ipv4.tcp_fin_timeout") is None
    # As it will be once a run writes (or removes) its modules-load.d file.
    after = conf.ModuleBoot(root, "6.18.44-test", {"/etc/modules-load.d/90-linuxnet-lvs.conf": None})
    assert after.loaded_by("ip_vs") is None


def test_builtin_module_with_parameters_is_seen_in_sys_module(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "sys/module/nf_conntrack/parameters"))
    os.makedirs(os.path.join(root, "sys/module/ip_vs"))
    put(root, "/sys/module/ip_vs/initstate", "live\n")  # a loadable module that is loaded: not built in
    boot = conf.ModuleBoot(root, None)
    assert boot.loaded_by("nf_conntrack") == "built into the kernel" and boot.loaded_by("ip_vs") is None


def test_modprobe_options_and_live_parameters(tmp_path):
    root = str(tmp_path)
    put(root, "/lib/modprobe.d/50-vendor.conf", "options nf_conntrack hashsize=16384 expect_hashsize=1024\n")
    put(root, "/etc/modprobe.d/90-linuxnet-proxy.conf", "# x\noptions nf-conntrack hashsize=262144  # comment\nblacklist sctp\n")
    options = conf.modprobe_options(root)
    assert options == {"nf_conntrack": {"hashsize": {"value": "262144", "file": "/etc/modprobe.d/90-linuxnet-proxy.conf"},
                                        "expect_hashsize": {"value": "1024", "file": "/lib/modprobe.d/50-vendor.conf"}}}
    put(root, "/sys/module/nf_conntrack/parameters/hashsize", "65536\n")
    put(root, "/sys/module/nf_conntrack/parameters/expect_hashsize", "1024\n")
    rows = conf.module_options_state(root, lambda module: True, options)
    got = [(r["param"], r["live"], r["needs_module_reload"]) for r in rows]
    assert got == [("expect_hashsize", "1024", False), ("hashsize", "65536", True)]
    assert all(not r["needs_module_reload"] for r in conf.module_options_state(root, lambda module: False, options))


def _special_files(root):
    """A FIFO, a socket and a character device named *.conf in /etc/sysctl.d, as any package could leave them."""
    import socket
    import stat

    base = os.path.join(root, "etc", "sysctl.d")
    os.makedirs(base, exist_ok=True)
    os.mkfifo(os.path.join(base, "10-fifo.conf"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    here = os.getcwd()
    os.chdir(base)  # a relative name: a socket's path is limited to 107 bytes
    try:
        sock.bind("20-socket.conf")
    finally:
        os.chdir(here)
    os.mknod(os.path.join(base, "30-zero.conf"), 0o644 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero: endless
    os.symlink("10-fifo.conf", os.path.join(base, "40-link-to-fifo.conf"))
    put(root, "/etc/sysctl.d/50-real.conf", "net.core.somaxconn = 8192\n")
    return sock


def test_special_files_are_skipped_with_a_warning_never_opened(tmp_path):
    root = str(tmp_path)
    sock = _special_files(root)
    try:
        # A read would block on the FIFO (no writer) or never end on /dev/zero: reaching the asserts proves none is opened.
        assert [path for path, _text in conf.config_files(root)] == ["/etc/sysctl.d/50-real.conf"]
        assert conf.BootConfig(root).effective("net.core.somaxconn")["value"] == "8192"
        assert common.read_text(root, "/etc/sysctl.d/10-fifo.conf") is None
        assert conf.config_warnings(root, "systemd") == [
            "/etc/sysctl.d/10-fifo.conf is a FIFO, not a regular file: skipped, never opened",
            "/etc/sysctl.d/20-socket.conf is a socket, not a regular file: skipped, never opened",
            "/etc/sysctl.d/30-zero.conf is a character device, not a regular file: skipped, never opened",
            "/etc/sysctl.d/40-link-to-fifo.conf is a FIFO, not a regular file: skipped, never opened",
        ]
    finally:
        sock.close()


def test_hostile_glob_line_is_skipped_with_a_warning(tmp_path):
    """One line of ~1,100 brace groups and a '*' in any file must not stop boot resolution for the host."""
    root = str(tmp_path)
    hostile = "net.ipv4." + "{a,b}" * 1100 + "* = 1"
    put(root, "/usr/lib/sysctl.d/50-pkg.conf", "net.ipv4.tcp_fin_timeout = 30\n%s\nnet.ipv4.conf.*.rp_filter = 2\n" % hostile)
    entries = conf.parse_conf(open(os.path.join(root, "usr/lib/sysctl.d/50-pkg.conf")).read(), "/usr/lib/sysctl.d/50-pkg.conf")
    assert [e["key"] for e in entries] == ["net.ipv4.tcp_fin_timeout", "net.ipv4.conf.*.rp_filter"]
    boot = conf.BootConfig(root)
    assert boot.effective("net.ipv4.conf.eth0.rp_filter")["value"] == "2"
    assert conf.config_warnings(root) == [
        "/usr/lib/sysctl.d/50-pkg.conf line 2 skipped: pattern 'net/ipv4/{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{'... is longer than "
        "1024 characters"]
