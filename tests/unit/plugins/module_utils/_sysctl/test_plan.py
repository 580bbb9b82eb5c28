# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan of a profile run (_sysctl/plan.py): decided from the tree, the settings and the readings passed in
(writers, listeners); nothing here writes, and the tests check that the tree is untouched where it matters."""
import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import plan as planning
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.plan import build_plan
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.tree import SysctlTree

from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.sysctl_fixtures import (  # pylint: disable=wrong-import-order
    CONNTRACK, DROPIN, HOST, MODULES_FILE, conntrack_host, make_tree, put, raw, snapshot)


def test_plan_resolves_raise_only_rename_and_skips(tmp_path):
    tree = SysctlTree(make_tree(tmp_path, child=True))
    plan = build_plan({
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
    tree = SysctlTree(make_tree(tmp_path))
    plan = build_plan({"net.ipv4.tcp_fin_timeout": 2}, tree, allow_unsafe=True)
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
        build_plan(settings, SysctlTree(root), unsupported="fail")
    assert words in str(err.value)
    assert before == dict((k, raw(root, k)) for k in HOST)


@pytest.mark.parametrize("reserved_now, requested, expected", [
    ("", ">= 8080", "8080"),
    ("8080,9000-9001", ">= 9002,12000", "8080,9000-9002,12000"),
    ("8080,9000-9001", "<= 9000-9100", "9000-9001"),
    ("8080", "9100-9101", "9100-9101"),
])
def test_plan_port_list_operators(tmp_path, reserved_now, requested, expected):
    files = dict(HOST, **{"net/ipv4/ip_local_reserved_ports": reserved_now})
    tree = SysctlTree(make_tree(tmp_path, files))
    entry = build_plan({"net.ipv4.ip_local_reserved_ports": requested}, tree)["entries"][0]
    assert entry["after"] == expected


def test_plan_reserves_listeners_inside_the_new_range(tmp_path):
    tree = SysctlTree(make_tree(tmp_path, dict(HOST, **{"net/ipv4/ip_local_reserved_ports": "12000"})))
    listeners = {22, 20080, 5432}
    settings = {"net.ipv4.ip_local_port_range": "10240 65535"}
    # Without the option the range over listener 20080 is refused (the safety rule).
    plain = build_plan(settings, tree, listeners=listeners)
    assert [r["key"] for r in plain["refused"]] == ["net.ipv4.ip_local_port_range"] and plain["entries"] == []
    plan = build_plan(settings, tree, reserve_listener_ports=True, listeners=listeners)
    entries = dict((e["key"], e) for e in plan["entries"])
    assert plan["refused"] == [] and plan["reserved_for_listeners"] == [20080]
    assert entries["net.ipv4.ip_local_reserved_ports"]["after"] == "12000,20080"  # ports reserved now are kept
    assert entries["net.ipv4.ip_local_reserved_ports"]["change"] is True
    # Asked-for ports and listeners add up.
    plan = build_plan(dict(settings, **{"net.ipv4.ip_local_reserved_ports": ">= 30000-30001"}), tree,
                      reserve_listener_ports=True, listeners=listeners)
    assert dict((e["key"], e["after"]) for e in plan["entries"])["net.ipv4.ip_local_reserved_ports"] == "12000,20080,30000-30001"
    # A plain value replaces the running reservations (12000 goes) and still gets the listener.
    plan = build_plan(dict(settings, **{"net.ipv4.ip_local_reserved_ports": "30000"}), tree, reserve_listener_ports=True,
                      listeners=listeners)
    assert dict((e["key"], e["after"]) for e in plan["entries"])["net.ipv4.ip_local_reserved_ports"] == "20080,30000"


def test_plan_reserve_listeners_is_stable_and_quiet(tmp_path):
    root = make_tree(tmp_path, dict(HOST, **{"net/ipv4/ip_local_reserved_ports": "20080", "net/ipv4/ip_local_port_range": "10240 65535"}))
    plan = build_plan({"net.ipv4.ip_local_port_range": "10240 65535"}, SysctlTree(root), reserve_listener_ports=True, listeners={20080})
    assert [e["change"] for e in plan["entries"]] == [False, False]
    # No listener inside the range and nothing reserved: the key is not managed at all.
    bare = make_tree(tmp_path / "bare")
    plan = build_plan({"net.ipv4.ip_local_port_range": "10240 65535"}, SysctlTree(bare), reserve_listener_ports=True, listeners={22})
    assert [e["key"] for e in plan["entries"]] == ["net.ipv4.ip_local_port_range"] and plan["reserved_for_listeners"] == []


def test_plan_drops_listener_reservation_with_a_refused_range(tmp_path):
    root = make_tree(tmp_path)
    plan = build_plan({"net.ipv4.ip_local_port_range": "1000 65535"}, SysctlTree(root), reserve_listener_ports=True, listeners={2000})
    assert [r["key"] for r in plan["refused"]] == ["net.ipv4.ip_local_port_range"]
    assert plan["entries"] == [] and plan["reserved_for_listeners"] == []


@pytest.mark.parametrize("requested, expected", [("30000", "30000"), (">= 30000", "30000"), ("2000,30000", "2000,30000")])
def test_plan_refused_range_keeps_the_requested_reservations(tmp_path, requested, expected):
    """The range is refused (it starts below ip_unprivileged_port_start): the settings' own ip_local_reserved_ports
    is applied as asked, without the listener ports added for that range."""
    root = make_tree(tmp_path)
    settings = {"net.ipv4.ip_local_port_range": "1000 65535", "net.ipv4.ip_local_reserved_ports": requested}
    plan = build_plan(settings, SysctlTree(root), reserve_listener_ports=True, listeners={2000})
    assert [r["key"] for r in plan["refused"]] == ["net.ipv4.ip_local_port_range"] and plan["reserved_for_listeners"] == []
    assert [(e["key"], e["after"], e["change"]) for e in plan["entries"]] == [("net.ipv4.ip_local_reserved_ports", expected, True)]
    # Without reserve_listener_ports the plan is the same.
    plain = build_plan(settings, SysctlTree(root), listeners={2000})
    assert [(e["key"], e["after"], e["change"]) for e in plain["entries"]] == [("net.ipv4.ip_local_reserved_ports", expected, True)]


KUBE_PROXY = {"net.netfilter.nf_conntrack_tcp_timeout_established": [
    {"agent": "kube-proxy", "value": "43200", "op": "=", "source": "kube-proxy sets it at start", "advice": "Set its flag"}]}


def test_plan_skips_a_key_the_writers_passed_in_would_rewrite_unless_forced(tmp_path):
    """The writers are an input (detected before the run): the plan only compares them with its targets."""
    tree = SysctlTree(make_tree(tmp_path))
    settings = {"net.netfilter.nf_conntrack_tcp_timeout_established": 86400, "net.core.somaxconn": 8192}
    plan = build_plan(settings, tree, writers=KUBE_PROXY)
    assert [(s["key"], s["classification"]) for s in plan["skipped"]] == [("net.netfilter.nf_conntrack_tcp_timeout_established",
                                                                           "owned_by_agent")]
    assert plan["skipped"][0]["reason"] == ("kube-proxy sets it at start, to 43200. Set its flag. Skipped so the two do not take "
                                            "turns (force_owned_keys applies it anyway).")
    forced = build_plan(settings, tree, writers=KUBE_PROXY, force={"net.netfilter.nf_conntrack_tcp_timeout_established"})
    assert forced["forced"] == ["net.netfilter.nf_conntrack_tcp_timeout_established"] and forced["skipped"] == []
    same = build_plan({"net.netfilter.nf_conntrack_tcp_timeout_established": 43200}, tree, writers=KUBE_PROXY)
    assert same["skipped"] == [] and same["forced"] == []
    assert planning.other_writer("net.core.somaxconn", "8192", KUBE_PROXY) is None


def test_named_keys_has_both_spellings_of_a_renamed_key_and_leaves_bad_keys_to_the_plan():
    assert planning.named_keys({"net/ipv4/ip_conntrack_max": 1, "../x": 2, "net.core.somaxconn": 3}) == [
        "net.core.somaxconn", "net.ipv4.ip_conntrack_max", "net.netfilter.nf_conntrack_max"]
    assert planning.named_keys(["net.core.somaxconn"]) == []


def test_keys_of_a_listed_module_not_loaded_are_split_for_boot(tmp_path):
    root, _modprobe = conntrack_host(tmp_path)
    settings = dict(CONNTRACK, **{"net.netfilter.nf_conntrack_max": ">= 262144", "net.ipv4.tcp_tw_recycle": 1})
    plan = build_plan(settings, SysctlTree(root))
    noted = planning.note_check_mode_loads(plan["skipped"], ["nf_conntrack"])
    assert [s["reason"].endswith("a real run loads it with modprobe first (check mode cannot)") for s in noted] == [True, True, False]
    assert not any("modprobe first" in s["reason"] for s in plan["skipped"])  # a new list: the plan's items stay as they were
    still, boot_only = planning.split_boot_only(plan["skipped"], plan["requested"], ["nf-conntrack"])
    assert boot_only == [{"key": "net.netfilter.nf_conntrack_tcp_timeout_established", "after": "86400", "module": "nf_conntrack"}]
    assert [s["key"] for s in still] == ["net.netfilter.nf_conntrack_max", "net.ipv4.tcp_tw_recycle"]
    assert "needs the running value" in still[0]["reason"]
    assert planning.split_boot_only(plan["skipped"], plan["requested"], []) == (plan["skipped"], [])


def test_plan_present_decides_files_state_and_restores_without_writing(tmp_path):
    root = make_tree(tmp_path)
    tree = SysctlTree(root)
    before = snapshot(root)
    kernel = {"initial_netns": True, "proc_sys_writable": True}
    state = {"originals": {"net.ipv4.tcp_keepalive_time": "7200", "net.core.somaxconn": "1024"}}
    raw_settings = {"net.core.somaxconn": 8192}
    plan = build_plan(raw_settings, tree)
    boot = planning.boot_file_changes(root, "web", ["nf_conntrack"], {})
    decided = planning.plan_present(root, tree, state, None, plan, "web", DROPIN, True, True, True, kernel, ["nf_conntrack"],
                                    None, boot)
    txn = decided.transaction
    # somaxconn is written; keepalive (dropped from the profile, saved 7200, running 7200) is already back.
    assert txn.runtime == [planning.Change("net.core.somaxconn", "4096", "8192")]
    assert [c.path for c in txn.files] == [DROPIN, MODULES_FILE] and txn.files[0].old is None
    assert "net.core.somaxconn = 8192" in decided.dropin_text and decided.boot_files == {MODULES_FILE: txn.files[1].new}
    assert txn.state_change is True and txn.originals == {"net.core.somaxconn": "1024"}
    assert decided.restores == [] and decided.not_restored == []
    # Nothing persisted and apply=false: no file, no runtime write, and the running value kept as the original.
    quiet = planning.plan_present(root, tree, None, None, plan, "web", DROPIN, False, False, True, kernel, [], None, [])
    assert quiet.transaction.runtime == [] and quiet.transaction.files == [] and quiet.dropin_text is None
    assert quiet.transaction.state_change is False
    assert snapshot(root) == before


@pytest.mark.parametrize("revert, words", [
    ("nope", "of profile 'web'"),
    ({"profile": "web", "files": "/etc/sysctl.d/90-linuxnet-web.conf"}, "must be mappings"),
    ({"profile": "web", "directories": ["/etc/ssh"]}, "only directories that hold this profile's files"),
])
def test_check_revert_raises_a_profile_error(revert, words):
    with pytest.raises(planning.ProfileError) as err:
        planning.check_revert("web", None, revert)
    assert words in str(err.value)


def test_plan_touches_nothing_on_disk(tmp_path):
    root = make_tree(tmp_path)
    put(root, "/etc/sysctl.d/95-site.conf", "net.core.somaxconn = 1024\n")
    before = snapshot(root)
    tree = SysctlTree(root)
    build_plan({"net.core.somaxconn": 8192, "net.ipv4.tcp_fin_timeout": 2}, tree, allow_unsafe=True)
    planning.plan_absent(root, tree, {"initial_netns": True, "proc_sys_writable": True},
                         {"originals": {"net.core.somaxconn": "128"}}, "web", DROPIN, True, True)
    assert snapshot(root) == before and raw(root, "net/core/somaxconn") == "4096\n"
