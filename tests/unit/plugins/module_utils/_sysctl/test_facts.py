# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
import errno
import os

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import facts as sysctl_facts
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import tree as systree

from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.sysctl_fixtures import HOST, make_tree, put  # pylint: disable=wrong-import-order
from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.sysctl_fixtures import reference_layout  # pylint: disable=wrong-import-order


def test_facts(tmp_path):
    root = make_tree(tmp_path, child=True)
    reference_layout(root)
    put(root, "/etc/sysctl.d/70-x.conf", "net.core.somaxconn = 8192\n")
    facts = sysctl_facts.gather_facts(root, ["net.ipv4.tcp_*", "net.core.somaxconn", "net.ipv4.tcp_tw_recycle", "net.ipv4.vs.conntrack"])
    assert "net.ipv4.ip_local_port_range" not in facts["runtime"]  # not matched by the patterns
    assert facts["runtime"]["net.ipv4.tcp_rmem"] == "4096 131072 33554432"
    assert facts["runtime"]["net.core.somaxconn"] == "4096"
    assert facts["missing"]["net.ipv4.tcp_tw_recycle"]["classification"] == "removed"
    assert facts["missing"]["net.ipv4.vs.conntrack"]["classification"] == "module_not_loaded"
    assert facts["missing"]["net.ipv4.tcp_max_orphans"]["classification"] == "global_in_child_netns"
    assert facts["persisted"]["net.core.somaxconn"] == {"value": "8192", "file": "/etc/sysctl.d/70-x.conf"}
    assert facts["drift"]["net.ipv4.tcp_fin_timeout"] == {"runtime": "60", "persisted": "20", "file": "/etc/sysctl.d/50-a.conf"}
    assert facts["drift"]["net.core.somaxconn"]["runtime"] == "4096"
    assert facts["overrides"]["net.ipv4.tcp_keepalive_intvl"] == [
        {"file": "/etc/sysctl.d/99-z.conf", "value": "40"}, {"file": "/etc/sysctl.conf", "value": "30"}]
    assert "net.ipv4.tcp_fin_timeout" not in facts["overrides"]
    assert facts["kernel"] == {"release": "6.18.44-test", "initial_netns": False, "proc_sys_writable": True,
                               "proc_sys_net_writable": True}
    assert "net.core.rmem_max" not in facts["runtime"]
    quick = sysctl_facts.gather_facts(root, None, persisted=False)
    assert quick["persisted"] == {} and "net.ipv4.tcp_fin_timeout" in quick["runtime"]
    assert "net.core.netdev_max_backlog" in quick["missing"]
    assert set(quick["runtime"]) <= set(k.replace("/", ".") for k in HOST)


VLAN = dict(HOST, **{"net/ipv4/conf/eth0.100/send_redirects": "1", "net/ipv4/conf/eth0/send_redirects": "1",
                     "net/ipv4/conf/all/send_redirects": "1"})


def test_facts_of_an_interface_with_a_dot(tmp_path):
    """The layout of issue 11: two spellings of one key across /etc and /usr/lib, and a glob."""
    root = make_tree(tmp_path, VLAN)
    put(root, "/etc/sysctl.d/34-b.conf", "net.ipv4.conf.eth0/100.send_redirects = 1\n")
    put(root, "/usr/lib/sysctl.d/75-b.conf", "net/ipv4/conf/eth0.100/send_redirects = 0\n")
    put(root, "/usr/lib/sysctl.d/80-glob.conf", "net.ipv4.conf.*.send_redirects = 0\n")
    for pattern in ("net.ipv4.conf.*.*", "net/ipv4/conf/*/*", "net.ipv4.conf.eth0/100.send_redirects",
                    "net/ipv4/conf/eth0.100/send_redirects"):
        facts = sysctl_facts.gather_facts(root, [pattern])
        key = "net.ipv4.conf.eth0/100.send_redirects"
        assert facts["runtime"][key] == "1"
        # The explicit key (two spellings, one entry) beats the later glob; 75-b wins over 34-b by name.
        assert facts["persisted"][key] == {"value": "0", "file": "/usr/lib/sysctl.d/75-b.conf"}
        assert facts["drift"][key] == {"runtime": "1", "persisted": "0", "file": "/usr/lib/sysctl.d/75-b.conf"}
        assert facts["overrides"][key] == [{"file": "/etc/sysctl.d/34-b.conf", "value": "1"},
                                           {"file": "/usr/lib/sysctl.d/75-b.conf", "value": "0"}]
    facts = sysctl_facts.gather_facts(root, ["net.ipv4.conf.*.send_redirects"])
    assert facts["persisted"]["net.ipv4.conf.eth0.send_redirects"] == {"value": "0", "file": "/usr/lib/sysctl.d/80-glob.conf"}
    assert set(facts["drift"]) == {"net.ipv4.conf.all.send_redirects", "net.ipv4.conf.eth0.send_redirects",
                                   "net.ipv4.conf.eth0/100.send_redirects"}
    assert all("/" not in key.split(".")[0] for key in facts["runtime"])


def test_boot_report_says_which_keys_boot_cannot_set(tmp_path):
    files = dict(HOST, **{"net/netfilter/nf_conntrack_tcp_timeout_close_wait": "60"})
    root = make_tree(tmp_path, files, modules=("nf_conntrack",))
    put(root, "/sys/module/nf_conntrack/initstate", "live\n")  # loaded now (by iptables, say), not built in
    put(root, "/etc/sysctl.d/90-x.conf",
        "-net.netfilter.nf_conntrack_tcp_timeout_established = 86400\nnet.core.somaxconn = 8192\nnet.ipv4.tcp_no_such = 1\n")
    put(root, "/etc/modprobe.d/90-x.conf", "options nf_conntrack hashsize=262144\n")
    put(root, "/sys/module/nf_conntrack/parameters/hashsize", "65536\n")
    facts = sysctl_facts.gather_facts(root, ["net.netfilter.*", "net.core.somaxconn", "net.ipv4.tcp_no_such"])
    boot = facts["boot"]
    conntrack = boot["net.netfilter.nf_conntrack_tcp_timeout_established"]
    assert conntrack["applies"] is False and conntrack["module"] == "nf_conntrack" and "modules-load.d" in conntrack["reason"]
    assert boot["net.core.somaxconn"] == {"value": "8192", "file": "/etc/sysctl.d/90-x.conf", "applies": True,
                                          "module": None, "module_loaded_by": None, "reason": ""}
    assert boot["net.ipv4.tcp_no_such"]["applies"] is False
    assert facts["module_options"] == [{"module": "nf_conntrack", "param": "hashsize", "value": "262144",
                                        "file": "/etc/modprobe.d/90-x.conf", "live": "65536", "needs_module_reload": True}]
    put(root, "/etc/modules-load.d/nf.conf", "nf_conntrack\n")
    conntrack = sysctl_facts.gather_facts(root, ["net.netfilter.*"])["boot"]["net.netfilter.nf_conntrack_tcp_timeout_established"]
    assert conntrack["applies"] is True and conntrack["module_loaded_by"] == "modules-load.d: /etc/modules-load.d/nf.conf"
    assert sysctl_facts.gather_facts(root, ["net.core.somaxconn"], persisted=False)["boot"] == {}
    assert sysctl_facts.gather_facts(root, ["net.core.somaxconn"], persisted=False)["module_options"] == []


def test_a_glob_over_a_key_that_fails_to_read_reports_it_missing(tmp_path, monkeypatch):
    """net.ipv6.conf.*.stable_secret has mode 0600 but read(2) gives EIO until a secret is set."""
    files = dict(HOST, **{"net/ipv6/conf/all/stable_secret": "", "net/ipv6/conf/all/forwarding": "0"})
    root = make_tree(tmp_path, files)
    real_read = systree.SysctlTree.read

    def read(self, key):
        if key.endswith("stable_secret"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_read(self, key)

    monkeypatch.setattr(systree.SysctlTree, "read", read)
    facts = sysctl_facts.gather_facts(root, ["net.ipv6.conf.all.*"])
    assert facts["runtime"] == {"net.ipv6.conf.all.forwarding": "0"}
    assert facts["missing"]["net.ipv6.conf.all.stable_secret"] == {
        "classification": "read_only", "reason": "net.ipv6.conf.all.stable_secret is not readable"}
    # The same as the explicit key gives.
    explicit = sysctl_facts.gather_facts(root, ["net.ipv6.conf.all.stable_secret"])
    assert explicit["missing"] == facts["missing"] and explicit["runtime"] == {}


def test_boot_report_of_a_key_only_a_pattern_names(tmp_path):
    """A file's key that this kernel lacks, reached through a glob rather than named or in the catalogue."""
    root = make_tree(tmp_path, dict((k, v) for k, v in HOST.items() if not k.startswith("net/netfilter/")), modules=())
    put(root, "/etc/sysctl.d/90-x.conf", "net.ipv4.tcp_no_such = 1\nnet.ipv4.tcp_fin_timeout = 30\n"
                                         "-net.netfilter.nf_conntrack_tcp_timeout_established = 86400\n")
    put(root, "/etc/modules-load.d/nf.conf", "nf_conntrack\n")
    facts = sysctl_facts.gather_facts(root, ["net.ipv4.*", "net.netfilter.*"])
    assert "net.ipv4.tcp_no_such" not in facts["missing"] and "net.ipv4.tcp_no_such" in facts["persisted"]
    boot = facts["boot"]
    assert boot["net.ipv4.tcp_no_such"]["applies"] is False
    assert boot["net.ipv4.tcp_no_such"]["reason"] == "net.ipv4.tcp_no_such does not exist on this kernel, so boot cannot write it"
    assert boot["net.ipv4.tcp_fin_timeout"]["applies"] is True
    # A key of a module not loaded now exists once modules-load.d has loaded it at boot.
    conntrack = boot["net.netfilter.nf_conntrack_tcp_timeout_established"]
    assert conntrack["applies"] is True and conntrack["module_loaded_by"] == "modules-load.d: /etc/modules-load.d/nf.conf"


def test_facts_never_hang_on_a_fifo_in_sysctl_d(tmp_path):
    root = make_tree(tmp_path)
    os.makedirs(os.path.join(root, "etc", "sysctl.d"))
    os.mkfifo(os.path.join(root, "etc", "sysctl.d", "x.conf"))
    put(root, "/etc/sysctl.d/y.conf", "net.core.somaxconn = 8192\n" + "net.ipv4." + "{a,b}" * 1100 + "* = 1\n")
    facts = sysctl_facts.gather_facts(root, ["net.core.somaxconn"])
    assert facts["persisted"]["net.core.somaxconn"] == {"value": "8192", "file": "/etc/sysctl.d/y.conf"}
