# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import errno
import os

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils import _sysctl as sysctl
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import ApplyError, SysctlError

# A host (init netns) as seen on the 6.18 reference machine, trimmed.
HOST = {
    "kernel/osrelease": "6.18.44-test",
    "net/core/somaxconn": "4096", "net/core/netdev_max_backlog": "1000", "net/core/rmem_max": "4194304",
    "net/ipv4/tcp_fin_timeout": "60", "net/ipv4/tcp_tw_reuse": "2", "net/ipv4/tcp_timestamps": "1",
    "net/ipv4/tcp_max_tw_buckets": "131072", "net/ipv4/tcp_max_orphans": "131072", "net/ipv4/tcp_keepalive_time": "7200",
    "net/ipv4/tcp_syn_retries": "6", "net/ipv4/ip_local_port_range": "32768\t60999",
    "net/ipv4/ip_unprivileged_port_start": "1024", "net/ipv4/ip_local_reserved_ports": "",
    "net/ipv4/tcp_rmem": "4096\t131072\t33554432", "net/ipv4/tcp_available_congestion_control": "reno cubic",
    "net/ipv4/conf/eth0.100/forwarding": "0",
    "net/netfilter/nf_conntrack_max": "262144", "net/netfilter/nf_conntrack_tcp_timeout_established": "432000",
}
READ_ONLY_HOST = ("net/ipv4/tcp_available_congestion_control",)


def make_tree(base, files=None, read_only=READ_ONLY_HOST, modules=("nf_conntrack",), child=False):
    """Write a fake /proc/sys (and /sys/module) under ``base``; return the root path."""
    files = dict(HOST if files is None else files)
    read_only = tuple(read_only)
    if child:
        # Child netns on 6.18: init_net-only keys absent, globals visible read-only.
        for key in ("net/core/netdev_max_backlog", "net/ipv4/tcp_max_orphans"):
            files.pop(key, None)
        read_only += ("net/core/rmem_max", "net/netfilter/nf_conntrack_max")
    root = str(base)
    for key, value in files.items():
        path = os.path.join(root, "proc", "sys", key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(value + "\n")
        os.chmod(path, 0o444 if key in read_only else 0o644)
    for module in modules:
        os.makedirs(os.path.join(root, "sys", "module", module), exist_ok=True)
    return root


def raw(root, key):
    with open(os.path.join(root, "proc", "sys", key)) as handle:
        return handle.read()


class FakeKernel(sysctl.SysctlTree):
    """A tree whose writes behave like kernel handlers: errno for rejected values, optional clamping."""

    def __init__(self, root, reject=None, clamp=None):
        super(FakeKernel, self).__init__(root)
        self.reject = reject or {}
        self.clamp = clamp or {}
        self.writes = []

    def write(self, key, value):
        self.writes.append((key, value))
        if key in self.reject and value in self.reject[key]:
            raise OSError(self.reject[key][value], os.strerror(self.reject[key][value]))
        super(FakeKernel, self).write(key, self.clamp.get(key, {}).get(value, value))


@pytest.mark.parametrize("key, canonical", [
    ("net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_fin_timeout"),
    ("  net.ipv4.tcp_fin_timeout ", "net.ipv4.tcp_fin_timeout"),
    ("net/ipv4/tcp_fin_timeout", "net.ipv4.tcp_fin_timeout"),
    ("net/ipv4/conf/eth0.100/forwarding", "net/ipv4/conf/eth0.100/forwarding"),
    ("net.ipv4.conf.eth0/100.forwarding", "net/ipv4/conf/eth0.100/forwarding"),
    ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-iptables"),
])
def test_canonical_key(key, canonical):
    assert sysctl.canonical_key(key) == canonical


@pytest.mark.parametrize("key, words", [
    ("", "empty"),
    ("/proc/sys/net/ipv4/tcp_fin_timeout", "must not start with '/'"),
    ("-net.ipv4.tcp_fin_timeout", "must not start"),
    ("net/ipv4/../../kernel/x", "'..'"),
    ("net..ipv4", "empty"),
    ("net.ipv4.tcp_*", "glob"),
    ("net.ipv4.tcp fin", "characters"),
    ("net.ipv4.x=1", "characters"),
    ("net.ipv4.x\nkernel.core_pattern", "characters"),
    (5, "must be a string"),
    (True, "must be a string"),
])
def test_canonical_key_rejects(key, words):
    with pytest.raises(SysctlError) as err:
        sysctl.canonical_key(key)
    assert words in str(err.value)


def test_canonical_key_glob_allowed_when_asked():
    assert sysctl.canonical_key("net.ipv4.conf.*.forwarding", allow_glob=True) == "net.ipv4.conf.*.forwarding"


@pytest.mark.parametrize("value, normal", [
    (4096, "4096"),
    ("4096", "4096"),
    ("  32768\t60999 ", "32768 60999"),
    ("4096   131072\t 16777216", "4096 131072 16777216"),
    ("0x10", "16"),
    ("bbr", "bbr"),
    ("8080,9000-9010", "8080,9000-9010"),
])
def test_normalise_value(value, normal):
    assert sysctl.normalise_value(value) == normal


@pytest.mark.parametrize("value, words", [
    (True, "boolean"),
    (1.5, "float"),
    ([1, 2], "list"),
    ({"a": 1}, "dict"),
    (None, "NoneType"),
    ("1\nkernel.core_pattern = |/tmp/x", "newline"),
    ("1\rx", "carriage return"),
    ("1\x00", "NUL"),
    ("1 = 2", "'='"),
    ("1 # comment", "'#'"),
    ("1 ; comment", "';'"),
    ("010", "octal"),
])
def test_normalise_value_rejects(value, words):
    with pytest.raises(SysctlError) as err:
        sysctl.normalise_value(value, "net.ipv4.x")
    assert words in str(err.value) and "net.ipv4.x" in str(err.value)


@pytest.mark.parametrize("left, right, equal", [
    ("32768\t60999", "32768 60999", True),
    ("16", "0x10", True),
    ("1", "2", False),
    ("cubic", "cubic", True),
    ("reno  cubic", "reno cubic", True),
    (None, "1", False),
    ("8080,9100-9110", "9100-9110, 8080", True),
    ("8080,9100-9102", "8080,9100,9101,9102", True),
    ("8080", "8081", False),
])
def test_values_equal(left, right, equal):
    assert sysctl.values_equal(left, right) is equal


@pytest.mark.parametrize("key, raw, expected", [
    ("net.core.somaxconn", ">= 8192", (">=", "8192")),
    ("net.core.somaxconn", "<=1024", ("<=", "1024")),
    ("net.ipv4.tcp_rmem", ">= 4096 131072 16777216", (">=", "4096 131072 16777216")),
    ("net.ipv4.tcp_fin_timeout", 30, ("=", "30")),
    ("net.ipv4.ip_local_reserved_ports", "", ("=", "")),
    # Port lists are written in the kernel's folded, ascending format so they read back unchanged.
    ("net.ipv4.ip_local_reserved_ports", "9101-9110, 8080,9100", ("=", "8080,9100-9110")),
    ("net.ipv4.ip_local_reserved_ports", ">= 20080", (">=", "20080")),
    ("net.ipv4.ip_local_reserved_ports", ">=", (">=", "")),
])
def test_parse_setting(key, raw, expected):
    assert sysctl.parse_setting(key, raw) == expected


@pytest.mark.parametrize("key, raw, words", [
    ("net.core.somaxconn", ">= lots", "integer"),
    ("net.ipv4.tcp_fin_timeout", "", "empty value"),
    ("net.ipv4.tcp_tw_reuse", 7, "at most 2"),
    ("net.ipv4.ip_local_reserved_ports", ">= 9110-9100", "ascending"),
    ("net.ipv4.ip_local_reserved_ports", "70000", "0..65535"),
])
def test_parse_setting_rejects(key, raw, words):
    with pytest.raises(SysctlError) as err:
        sysctl.parse_setting(key, raw)
    assert words in str(err.value)


def test_tree_read_write_and_probes(tmp_path):
    root = make_tree(tmp_path)
    tree = sysctl.SysctlTree(root)
    assert tree.read("net.ipv4.ip_local_port_range") == "32768 60999"
    assert tree.read("net/ipv4/conf/eth0.100/forwarding") == "0"
    tree.write("net.ipv4.tcp_fin_timeout", "30")
    assert raw(root, "net/ipv4/tcp_fin_timeout") == "30\n"
    with pytest.raises(OSError) as err:
        tree.write("net.ipv4.tcp_tw_recycle", "0")
    assert err.value.errno == errno.ENOENT
    assert not os.path.exists(os.path.join(root, "proc/sys/net/ipv4/tcp_tw_recycle"))
    assert tree.kernel_release() == "6.18.44-test"
    assert tree.in_child_netns() is False
    assert sysctl.SysctlTree(make_tree(tmp_path / "child", child=True)).in_child_netns() is True
    assert tree.module_loaded("nf_conntrack") and not tree.module_loaded("ip_vs")


def test_listening_ports(tmp_path):
    root = make_tree(tmp_path)
    os.makedirs(os.path.join(root, "proc", "net"))
    # A fake root reads /proc/net/tcp{,6} (the fallback a real host uses when sock_diag is refused).
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    tail = " 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 100 0 0 10 0\n"
    with open(os.path.join(root, "proc", "net", "tcp"), "w") as handle:
        handle.write(header)
        handle.write("   0: 00000000:1538 00000000:0000 0A" + tail % 1)  # 5432 LISTEN
        handle.write("   1: 0100007F:9C40 0100007F:1538 01" + tail % 2)  # ESTABLISHED 40000 -> 5432
    with open(os.path.join(root, "proc", "net", "tcp6"), "w") as handle:
        handle.write(header)
        handle.write("   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A" + tail % 3)
    assert sysctl.SysctlTree(root).listening_ports() == {5432, 8080}


def test_listening_ports_without_proc_net(tmp_path):
    assert sysctl.SysctlTree(make_tree(tmp_path)).listening_ports() == set()


def test_expand_globs(tmp_path):
    tree = sysctl.SysctlTree(make_tree(tmp_path))
    assert tree.expand("net.ipv4.tcp_max_*") == ["net.ipv4.tcp_max_orphans", "net.ipv4.tcp_max_tw_buckets"]
    assert tree.expand("net/ipv4/conf/*/forwarding") == ["net/ipv4/conf/eth0.100/forwarding"]
    assert tree.expand("net.nothing.*") == []


@pytest.mark.parametrize("key, child, modules, expected", [
    ("net.ipv4.tcp_fin_timeout", False, ("nf_conntrack",), "ok"),
    ("net.ipv4.tcp_fin_timeout", True, ("nf_conntrack",), "ok"),
    ("net.ipv4.tcp_tw_recycle", False, ("nf_conntrack",), "removed"),
    ("net.ipv4.vs.expire_nodest_conn", False, ("nf_conntrack",), "module_not_loaded"),
    ("net.netfilter.nf_conntrack_udp_timeout", False, (), "module_not_loaded"),
    ("net.netfilter.nf_conntrack_udp_timeout", False, ("nf_conntrack",), "unknown_key"),
    ("net.core.rmem_max", True, ("nf_conntrack",), "global_in_child_netns"),
    ("net.netfilter.nf_conntrack_max", True, ("nf_conntrack",), "global_in_child_netns"),
    ("net.core.netdev_max_backlog", True, ("nf_conntrack",), "global_in_child_netns"),
    ("net.ipv4.tcp_max_orphans", True, ("nf_conntrack",), "global_in_child_netns"),
    ("net.core.netdev_max_backlog", False, ("nf_conntrack",), "ok"),
    ("net.ipv4.tcp_available_congestion_control", False, ("nf_conntrack",), "read_only"),
    ("net.ipv4.tcp_no_such_key", False, ("nf_conntrack",), "unknown_key"),
])
def test_classify(tmp_path, key, child, modules, expected):
    tree = sysctl.SysctlTree(make_tree(tmp_path, child=child, modules=modules))
    result = sysctl.classify(tree, key)
    assert result["classification"] == expected
    if expected == "global_in_child_netns":
        assert result["reason"] == "global key: set this on the host"
    if expected == "removed":
        assert "tcp_tw_reuse" in result["replacement"]
    if expected == "module_not_loaded":
        assert "modules-load.d" in result["reason"]


def test_classify_proc_sys_read_only(tmp_path, monkeypatch):
    tree = sysctl.SysctlTree(make_tree(tmp_path))

    class Flags(object):
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(sysctl.os, "statvfs", lambda path: Flags())
    assert sysctl.classify(tree, "net.ipv4.tcp_fin_timeout")["classification"] == "proc_sys_read_only"
    assert tree.proc_sys_read_only() is True
    plan = sysctl.build_plan({"net.ipv4.tcp_fin_timeout": 60, "net.core.somaxconn": ">= 8192"}, tree)
    reasons = dict((s["key"], s["reason"]) for s in plan["skipped"])
    assert reasons["net.ipv4.tcp_fin_timeout"].endswith("the running value 60 already matches")
    assert "already matches" not in reasons["net.core.somaxconn"]
    assert plan["entries"] == []


def test_plan_resolves_raise_only_rename_and_skips(tmp_path):
    tree = sysctl.SysctlTree(make_tree(tmp_path, child=True))
    plan = sysctl.build_plan({
        "net.ipv4.tcp_tw_recycle": 1,
        "net.ipv4.ip_conntrack_max": 524288,
        "net.core.somaxconn": ">= 1024",
        "net.ipv4.tcp_max_tw_buckets": ">= 262144",
        "net.ipv4.tcp_rmem": ">= 4096 262144 16777216",
        "net.core.rmem_max": ">= 8388608",
        "net.ipv4.tcp_fin_timeout": 2,
        "net.ipv4.tcp_keepalive_time": "600",
    }, tree)
    entries = dict((e["key"], e) for e in plan["entries"])
    assert entries["net.core.somaxconn"]["after"] == "4096" and not entries["net.core.somaxconn"]["change"]
    assert entries["net.ipv4.tcp_max_tw_buckets"]["after"] == "262144" and entries["net.ipv4.tcp_max_tw_buckets"]["change"]
    assert entries["net.ipv4.tcp_rmem"]["after"] == "4096 262144 33554432"
    assert entries["net.ipv4.tcp_keepalive_time"]["before"] == "7200"
    assert "net.ipv4.tcp_fin_timeout" not in entries
    assert plan["renamed"] == [{"key": "net.ipv4.ip_conntrack_max", "to": "net.netfilter.nf_conntrack_max"}]
    skipped = dict((s["key"], s["classification"]) for s in plan["skipped"])
    assert skipped == {"net.ipv4.tcp_tw_recycle": "removed", "net.netfilter.nf_conntrack_max": "global_in_child_netns",
                       "net.core.rmem_max": "global_in_child_netns"}
    assert [r["key"] for r in plan["refused"]] == ["net.ipv4.tcp_fin_timeout"]


def test_plan_allow_unsafe_keeps_refused_keys(tmp_path):
    tree = sysctl.SysctlTree(make_tree(tmp_path))
    plan = sysctl.build_plan({"net.ipv4.tcp_fin_timeout": 2}, tree, allow_unsafe=True)
    assert plan["refused"] == [] and [u["key"] for u in plan["unsafe_allowed"]] == ["net.ipv4.tcp_fin_timeout"]
    assert plan["entries"][0]["after"] == "2"


@pytest.mark.parametrize("settings, words", [
    ({}, "non-empty"),
    ([("net.core.somaxconn", 1)], "non-empty mapping"),
    ({"net.core.somaxconn": 4096, "net/core/somaxconn": 8192}, "set twice"),
    ({"net.ipv4.ip_conntrack_max": 1, "net.netfilter.nf_conntrack_max": 2}, "set twice"),
    ({"net.ipv4.tcp_tw_recycle": 1}, "unsupported keys"),
    ({"net.ipv4.tcp_fin_timeout": "30\nkernel.x = 1"}, "newline"),
    ({"../../etc/passwd": 1}, "'..'"),
    ({"net.ipv4.bad key": 1}, "characters"),
    ({"net/ipv4/conf/eth0.100/forwarding": ">= 1 2"}, "needs a running value with 2 integer(s)"),
])
def test_plan_rejects(tmp_path, settings, words):
    root = make_tree(tmp_path)
    before = dict((k, raw(root, k)) for k in HOST)
    with pytest.raises(SysctlError) as err:
        sysctl.build_plan(settings, sysctl.SysctlTree(root), unsupported="fail")
    assert words in str(err.value)
    assert before == dict((k, raw(root, k)) for k in HOST)


def test_apply_rolls_back_when_a_write_fails_mid_batch(tmp_path):
    root = make_tree(tmp_path)
    tree = FakeKernel(root, reject={"net.ipv4.tcp_keepalive_time": {"600": errno.EINVAL}})
    before = dict((k, raw(root, k)) for k in HOST)
    changes = [("net.ipv4.tcp_fin_timeout", "60", "30"), ("net.core.somaxconn", "4096", "8192"),
               ("net.ipv4.tcp_keepalive_time", "7200", "600"), ("net.ipv4.tcp_syn_retries", "6", "5")]
    with pytest.raises(ApplyError) as err:
        sysctl.apply_changes(tree, changes)
    assert err.value.key == "net.ipv4.tcp_keepalive_time" and err.value.classification == "invalid_value"
    assert "rolled back 3 key(s)" in str(err.value) and err.value.rollback_failures == []
    assert ("net.ipv4.tcp_syn_retries", "5") not in tree.writes
    assert before == dict((k, raw(root, k)) for k in HOST)


def test_apply_rolls_back_when_the_kernel_keeps_another_value(tmp_path):
    root = make_tree(tmp_path)
    tree = FakeKernel(root, clamp={"net.core.somaxconn": {"99999999": "65535"}})
    with pytest.raises(ApplyError) as err:
        sysctl.apply_changes(tree, [("net.ipv4.tcp_fin_timeout", "60", "30"), ("net.core.somaxconn", "4096", "99999999")])
    assert "kept '65535'" in str(err.value)
    assert raw(root, "net/ipv4/tcp_fin_timeout") == "60\n" and raw(root, "net/core/somaxconn") == "4096\n"


@pytest.mark.parametrize("code, classification", [
    (errno.EROFS, "proc_sys_read_only"), (errno.EACCES, "read_only"), (errno.EPERM, "read_only"),
    (errno.ENOENT, "invalid_value"), (errno.EINVAL, "invalid_value"),
])
def test_apply_error_classification(tmp_path, code, classification):
    root = make_tree(tmp_path)
    tree = FakeKernel(root, reject={"net.ipv4.tcp_fin_timeout": {"30": code}})
    with pytest.raises(ApplyError) as err:
        sysctl.apply_changes(tree, [("net.ipv4.tcp_fin_timeout", "60", "30")])
    assert err.value.classification == classification
    assert raw(root, "net/ipv4/tcp_fin_timeout") == "60\n"


def test_rollback_reports_keys_it_cannot_restore(tmp_path):
    root = make_tree(tmp_path)
    tree = FakeKernel(root, reject={"net.core.somaxconn": {"4096": errno.EIO}, "net.ipv4.tcp_fin_timeout": {"30": errno.EINVAL}})
    with pytest.raises(ApplyError) as err:
        sysctl.apply_changes(tree, [("net.core.somaxconn", "4096", "8192"), ("net.ipv4.tcp_fin_timeout", "60", "30")])
    assert err.value.rollback_failures == ["net.core.somaxconn"]
    assert "ROLLBACK INCOMPLETE" in str(err.value)


LISTEN_TAIL = " 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 100 0 0 10 0\n"


def with_listeners(root, ports):
    """Add /proc/net/tcp with LISTEN sockets on ``ports`` to a fake root."""
    os.makedirs(os.path.join(root, "proc", "net"), exist_ok=True)
    with open(os.path.join(root, "proc", "net", "tcp"), "w") as handle:
        handle.write("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
        for number, port in enumerate(ports):
            handle.write("%4d: 00000000:%04X 00000000:0000 0A" % (number, port) + LISTEN_TAIL % (number + 1))
    return root


@pytest.mark.parametrize("reserved_now, requested, expected", [
    ("", ">= 8080", "8080"),
    ("8080,9000-9001", ">= 9002,12000", "8080,9000-9002,12000"),
    ("8080,9000-9001", "<= 9000-9100", "9000-9001"),
    ("8080", "9100-9101", "9100-9101"),
])
def test_plan_port_list_operators(tmp_path, reserved_now, requested, expected):
    files = dict(HOST, **{"net/ipv4/ip_local_reserved_ports": reserved_now})
    tree = sysctl.SysctlTree(make_tree(tmp_path, files))
    entry = sysctl.build_plan({"net.ipv4.ip_local_reserved_ports": requested}, tree)["entries"][0]
    assert entry["after"] == expected


def test_plan_reserves_listeners_inside_the_new_range(tmp_path):
    root = with_listeners(make_tree(tmp_path, dict(HOST, **{"net/ipv4/ip_local_reserved_ports": "12000"})), [22, 20080, 5432])
    tree = sysctl.SysctlTree(root)
    settings = {"net.ipv4.ip_local_port_range": "10240 65535"}
    # Without the option the range over listener 20080 is refused (the safety rule).
    plain = sysctl.build_plan(settings, tree)
    assert [r["key"] for r in plain["refused"]] == ["net.ipv4.ip_local_port_range"] and plain["entries"] == []
    plan = sysctl.build_plan(settings, tree, reserve_listener_ports=True)
    entries = dict((e["key"], e) for e in plan["entries"])
    assert plan["refused"] == [] and plan["reserved_for_listeners"] == [20080]
    assert entries["net.ipv4.ip_local_reserved_ports"]["after"] == "12000,20080"  # ports reserved now are kept
    assert entries["net.ipv4.ip_local_reserved_ports"]["change"] is True
    # Asked-for ports and listeners add up.
    plan = sysctl.build_plan(dict(settings, **{"net.ipv4.ip_local_reserved_ports": ">= 30000-30001"}), tree,
                             reserve_listener_ports=True)
    assert dict((e["key"], e["after"]) for e in plan["entries"])["net.ipv4.ip_local_reserved_ports"] == "12000,20080,30000-30001"
    # A plain value replaces the running reservations (12000 goes) and still gets the listener.
    plan = sysctl.build_plan(dict(settings, **{"net.ipv4.ip_local_reserved_ports": "30000"}), tree, reserve_listener_ports=True)
    assert dict((e["key"], e["after"]) for e in plan["entries"])["net.ipv4.ip_local_reserved_ports"] == "20080,30000"


def test_plan_reserve_listeners_is_stable_and_quiet(tmp_path):
    root = with_listeners(make_tree(tmp_path, dict(HOST, **{"net/ipv4/ip_local_reserved_ports": "20080",
                                                            "net/ipv4/ip_local_port_range": "10240 65535"})), [20080])
    plan = sysctl.build_plan({"net.ipv4.ip_local_port_range": "10240 65535"}, sysctl.SysctlTree(root), reserve_listener_ports=True)
    assert [e["change"] for e in plan["entries"]] == [False, False]
    # No listener inside the range and nothing reserved: the key is not managed at all.
    bare = with_listeners(make_tree(tmp_path / "bare"), [22])
    plan = sysctl.build_plan({"net.ipv4.ip_local_port_range": "10240 65535"}, sysctl.SysctlTree(bare), reserve_listener_ports=True)
    assert [e["key"] for e in plan["entries"]] == ["net.ipv4.ip_local_port_range"] and plan["reserved_for_listeners"] == []


def test_plan_drops_listener_reservation_with_a_refused_range(tmp_path):
    root = with_listeners(make_tree(tmp_path), [2000])
    plan = sysctl.build_plan({"net.ipv4.ip_local_port_range": "1000 65535"}, sysctl.SysctlTree(root), reserve_listener_ports=True)
    assert [r["key"] for r in plan["refused"]] == ["net.ipv4.ip_local_port_range"]
    assert plan["entries"] == [] and plan["reserved_for_listeners"] == []
