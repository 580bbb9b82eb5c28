# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
import errno
import os

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.plan import build_plan
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import tree as systree
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.tree import ApplyError

from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.sysctl_fixtures import (  # pylint: disable=wrong-import-order
    HOST, FakeKernel, make_tree, raw)


def test_tree_read_write_and_probes(tmp_path):
    root = make_tree(tmp_path)
    tree = systree.SysctlTree(root)
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
    assert systree.SysctlTree(make_tree(tmp_path / "child", child=True)).in_child_netns() is True
    assert tree.module_loaded("nf_conntrack") and not tree.module_loaded("ip_vs")


def test_expand_globs(tmp_path):
    tree = systree.SysctlTree(make_tree(tmp_path))
    assert tree.expand("net.ipv4.tcp_max_*") == ["net.ipv4.tcp_max_orphans", "net.ipv4.tcp_max_tw_buckets"]
    assert tree.expand("net/ipv4/conf/*/forwarding") == ["net.ipv4.conf.eth0/100.forwarding"]
    assert tree.expand("net.ipv4.conf.eth0/100.*") == ["net.ipv4.conf.eth0/100.forwarding"]
    assert tree.expand("net.ipv4.tcp_{max,fin}_*") == ["net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_max_orphans",
                                                       "net.ipv4.tcp_max_tw_buckets"]
    # Only keys with a write bit, as systemd-sysctl's globs can set.
    assert "net.ipv4.tcp_available_congestion_control" in tree.expand("net.ipv4.tcp_*")
    assert "net.ipv4.tcp_available_congestion_control" not in tree.expand("net.ipv4.tcp_*", writable=True)
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
    ("net.ipv4.conf.eth0.100.forwarding", False, ("nf_conntrack",), "unknown_key"),
])
def test_classify(tmp_path, key, child, modules, expected):
    tree = systree.SysctlTree(make_tree(tmp_path, child=child, modules=modules))
    result = systree.classify(tree, key)
    assert result["classification"] == expected
    if expected == "global_in_child_netns":
        assert result["reason"] == "global key: set this on the host"
    if expected == "removed":
        assert "tcp_tw_reuse" in result["replacement"]
    if expected == "module_not_loaded":
        assert "modules-load.d" in result["reason"]
    if key == "net.ipv4.conf.eth0.100.forwarding":
        # A dotted interface name split at its dot: say how to write it.
        assert "write net.ipv4.conf.eth0/100.forwarding" in result["reason"]


def test_classify_proc_sys_read_only(tmp_path, monkeypatch):
    tree = systree.SysctlTree(make_tree(tmp_path))

    class Flags(object):
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(systree.os, "statvfs", lambda path: Flags())
    assert systree.classify(tree, "net.ipv4.tcp_fin_timeout")["classification"] == "proc_sys_read_only"
    assert tree.proc_sys_read_only() is True
    plan = build_plan({"net.ipv4.tcp_fin_timeout": 60, "net.core.somaxconn": ">= 8192"}, tree)
    reasons = dict((s["key"], s["reason"]) for s in plan["skipped"])
    assert reasons["net.ipv4.tcp_fin_timeout"].endswith("the running value 60 already matches")
    assert "already matches" not in reasons["net.core.somaxconn"]
    assert plan["entries"] == []


def test_apply_rolls_back_when_a_write_fails_mid_batch(tmp_path):
    root = make_tree(tmp_path)
    tree = FakeKernel(root, reject={"net.ipv4.tcp_keepalive_time": {"600": errno.EINVAL}})
    before = dict((k, raw(root, k)) for k in HOST)
    changes = [("net.ipv4.tcp_fin_timeout", "60", "30"), ("net.core.somaxconn", "4096", "8192"),
               ("net.ipv4.tcp_keepalive_time", "7200", "600"), ("net.ipv4.tcp_syn_retries", "6", "5")]
    with pytest.raises(ApplyError) as err:
        systree.apply_changes(tree, changes)
    assert err.value.key == "net.ipv4.tcp_keepalive_time" and err.value.classification == "invalid_value"
    assert "rolled back 3 key(s)" in str(err.value) and err.value.rollback_failures == []
    assert ("net.ipv4.tcp_syn_retries", "5") not in tree.writes
    assert before == dict((k, raw(root, k)) for k in HOST)


def test_apply_rolls_back_when_the_kernel_keeps_another_value(tmp_path):
    root = make_tree(tmp_path)
    tree = FakeKernel(root, clamp={"net.core.somaxconn": {"99999999": "65535"}})
    with pytest.raises(ApplyError) as err:
        systree.apply_changes(tree, [("net.ipv4.tcp_fin_timeout", "60", "30"), ("net.core.somaxconn", "4096", "99999999")])
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
        systree.apply_changes(tree, [("net.ipv4.tcp_fin_timeout", "60", "30")])
    assert err.value.classification == classification
    assert raw(root, "net/ipv4/tcp_fin_timeout") == "60\n"


def test_rollback_reports_keys_it_cannot_restore(tmp_path):
    root = make_tree(tmp_path)
    tree = FakeKernel(root, reject={"net.core.somaxconn": {"4096": errno.EIO}, "net.ipv4.tcp_fin_timeout": {"30": errno.EINVAL}})
    with pytest.raises(ApplyError) as err:
        systree.apply_changes(tree, [("net.core.somaxconn", "4096", "8192"), ("net.ipv4.tcp_fin_timeout", "60", "30")])
    assert err.value.rollback_failures == ["net.core.somaxconn"]
    assert "ROLLBACK INCOMPLETE" in str(err.value)
