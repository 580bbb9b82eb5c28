# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import catalog


@pytest.mark.parametrize("key, value, error", [
    ("net.ipv4.tcp_tw_reuse", "2", None),
    ("net.ipv4.tcp_tw_reuse", "3", "at most 2"),
    ("net.ipv4.tcp_syn_retries", "0", "at least 1"),
    ("net.ipv4.tcp_syn_retries", "128", "at most 127"),
    ("net.ipv4.tcp_tw_reuse_delay", "100000", "at most 60000"),
    ("net.ipv4.tcp_fin_timeout", "abc", "not an integer"),
    ("net.ipv4.tcp_fin_timeout", "30 40", "one integer"),
    ("net.ipv4.tcp_fin_timeout", "030", "octal"),
    ("net.ipv4.tcp_fastopen", "0x403", None),
    ("net.ipv4.tcp_rmem", "4096 131072 16777216", None),
    ("net.ipv4.tcp_rmem", "4096 131072", "3 integers"),
    ("net.ipv4.tcp_rmem", "0 131072 16777216", "at least 1"),
    ("net.ipv4.ip_local_port_range", "10240 65535", None),
    ("net.ipv4.ip_local_port_range", "65000 4000", "must not exceed"),
    ("net.ipv4.ip_local_port_range", "0 100", "1..65535"),
    ("net.ipv4.ip_local_port_range", "10240", "two ports"),
    ("net.ipv4.ip_local_reserved_ports", "8080,9000-9010", None),
    ("net.ipv4.ip_local_reserved_ports", "", None),
    ("net.ipv4.ip_local_reserved_ports", "9010-9000", "ascending"),
    ("net.ipv4.ip_local_reserved_ports", "70000", "0..65535"),
    ("net.ipv4.tcp_congestion_control", "bbr", None),
    ("net.ipv4.not_in_catalogue", "whatever 1 2", None),
])
def test_validate_value(key, value, error):
    msg = catalog.validate_value(key, value)
    if error is None:
        assert msg is None
    else:
        assert error in msg and key in msg


@pytest.mark.parametrize("key, modern", [
    ("net.ipv4.ip_conntrack_max", "net.netfilter.nf_conntrack_max"),
    ("net.ipv4.netfilter.ip_conntrack_tcp_timeout_established", "net.netfilter.nf_conntrack_tcp_timeout_established"),
    ("net.ipv4.netfilter.ip_conntrack_", None),
    ("net.ipv4.tcp_tw_recycle", None),
    ("net.core.somaxconn", None),
])
def test_renamed_to(key, modern):
    assert catalog.renamed_to(key) == modern


@pytest.mark.parametrize("key, module, scope", [
    ("net.netfilter.nf_conntrack_max", "nf_conntrack", catalog.READONLY_IN_CHILD),
    ("net.netfilter.nf_conntrack_tcp_timeout_close_wait", "nf_conntrack", catalog.NETNS),
    ("net.netfilter.nf_conntrack_generic_timeout", "nf_conntrack", catalog.NETNS),
    ("net.nf_conntrack_max", "nf_conntrack", catalog.GLOBAL),
    ("net.ipv4.vs.expire_nodest_conn", "ip_vs", catalog.NETNS),
    ("net.bridge.bridge-nf-call-iptables", "br_netfilter", catalog.NETNS),
    ("net.core.rmem_max", None, catalog.READONLY_IN_CHILD),
    ("net.core.netdev_max_backlog", None, catalog.GLOBAL),
    ("net.core.dev_weight_tx_bias", None, catalog.GLOBAL),
    ("net.ipv4.route.gc_interval", None, catalog.GLOBAL),
    ("net.ipv4.route.min_pmtu", None, catalog.NETNS),
    ("net.ipv4.tcp_max_orphans", None, catalog.GLOBAL),
    ("net.ipv4.tcp_fin_timeout", None, catalog.NETNS),
])
def test_module_and_scope(key, module, scope):
    assert catalog.module_for(key) == module
    assert catalog.scope_of(key) == scope


def test_removed_record_has_reason_and_advice():
    rec = catalog.removed("net.ipv4.tcp_tw_recycle")
    assert "4.12" in rec["reason"] and "tcp_tw_reuse" in rec["advice"]
    assert catalog.removed("net.ipv4.tcp_tw_reuse") is None


def test_group_keys_are_catalogue_keys():
    tcp = catalog.group_keys(catalog.GROUP_TCP)
    assert "net.ipv4.tcp_fin_timeout" in tcp and "net.core.somaxconn" not in tcp
    assert tcp == sorted(tcp)
    assert "net.core.somaxconn" in catalog.group_keys(catalog.GROUP_CORE)


@pytest.mark.parametrize("value, ints", [
    ("4096 131072 16777216", [4096, 131072, 16777216]),
    ("0x10", [16]),
    ("-1", [-1]),
    ("010", None),
    ("bbr", None),
    ("", []),
])
def test_as_ints(value, ints):
    assert catalog.as_ints(value) == ints
