# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
import errno
import json
import os

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import files
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import keys
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import profile
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.tree import ApplyError, SysctlTree

from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.sysctl_fixtures import (  # pylint: disable=wrong-import-order
    CONNTRACK, DROPIN, HOST, MODPROBE_FILE, MODULES_FILE, STATE, DiskFault, FakeKernel, FakeModprobe, conntrack_host, make_tree,
    put, raw, read, snapshot, with_listeners)


def test_plan_resolves_raise_only_rename_and_skips(tmp_path):
    tree = SysctlTree(make_tree(tmp_path, child=True))
    plan = profile.build_plan({
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
    plan = profile.build_plan({"net.ipv4.tcp_fin_timeout": 2}, tree, allow_unsafe=True)
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
        profile.build_plan(settings, SysctlTree(root), unsupported="fail")
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
    entry = profile.build_plan({"net.ipv4.ip_local_reserved_ports": requested}, tree)["entries"][0]
    assert entry["after"] == expected


def test_plan_reserves_listeners_inside_the_new_range(tmp_path):
    root = with_listeners(make_tree(tmp_path, dict(HOST, **{"net/ipv4/ip_local_reserved_ports": "12000"})), [22, 20080, 5432])
    tree = SysctlTree(root)
    settings = {"net.ipv4.ip_local_port_range": "10240 65535"}
    # Without the option the range over listener 20080 is refused (the safety rule).
    plain = profile.build_plan(settings, tree)
    assert [r["key"] for r in plain["refused"]] == ["net.ipv4.ip_local_port_range"] and plain["entries"] == []
    plan = profile.build_plan(settings, tree, reserve_listener_ports=True)
    entries = dict((e["key"], e) for e in plan["entries"])
    assert plan["refused"] == [] and plan["reserved_for_listeners"] == [20080]
    assert entries["net.ipv4.ip_local_reserved_ports"]["after"] == "12000,20080"  # ports reserved now are kept
    assert entries["net.ipv4.ip_local_reserved_ports"]["change"] is True
    # Asked-for ports and listeners add up.
    plan = profile.build_plan(dict(settings, **{"net.ipv4.ip_local_reserved_ports": ">= 30000-30001"}), tree,
                              reserve_listener_ports=True)
    assert dict((e["key"], e["after"]) for e in plan["entries"])["net.ipv4.ip_local_reserved_ports"] == "12000,20080,30000-30001"
    # A plain value replaces the running reservations (12000 goes) and still gets the listener.
    plan = profile.build_plan(dict(settings, **{"net.ipv4.ip_local_reserved_ports": "30000"}), tree, reserve_listener_ports=True)
    assert dict((e["key"], e["after"]) for e in plan["entries"])["net.ipv4.ip_local_reserved_ports"] == "20080,30000"


def test_plan_reserve_listeners_is_stable_and_quiet(tmp_path):
    root = with_listeners(make_tree(tmp_path, dict(HOST, **{"net/ipv4/ip_local_reserved_ports": "20080",
                                                            "net/ipv4/ip_local_port_range": "10240 65535"})), [20080])
    plan = profile.build_plan({"net.ipv4.ip_local_port_range": "10240 65535"}, SysctlTree(root), reserve_listener_ports=True)
    assert [e["change"] for e in plan["entries"]] == [False, False]
    # No listener inside the range and nothing reserved: the key is not managed at all.
    bare = with_listeners(make_tree(tmp_path / "bare"), [22])
    plan = profile.build_plan({"net.ipv4.ip_local_port_range": "10240 65535"}, SysctlTree(bare), reserve_listener_ports=True)
    assert [e["key"] for e in plan["entries"]] == ["net.ipv4.ip_local_port_range"] and plan["reserved_for_listeners"] == []


def test_plan_drops_listener_reservation_with_a_refused_range(tmp_path):
    root = with_listeners(make_tree(tmp_path), [2000])
    plan = profile.build_plan({"net.ipv4.ip_local_port_range": "1000 65535"}, SysctlTree(root), reserve_listener_ports=True)
    assert [r["key"] for r in plan["refused"]] == ["net.ipv4.ip_local_port_range"]
    assert plan["entries"] == [] and plan["reserved_for_listeners"] == []


@pytest.mark.parametrize("requested, expected", [("30000", "30000"), (">= 30000", "30000"), ("2000,30000", "2000,30000")])
def test_plan_refused_range_keeps_the_requested_reservations(tmp_path, requested, expected):
    """The range is refused (it starts below ip_unprivileged_port_start): the settings' own ip_local_reserved_ports
    is applied as asked, without the listener ports added for that range."""
    root = with_listeners(make_tree(tmp_path), [2000])
    settings = {"net.ipv4.ip_local_port_range": "1000 65535", "net.ipv4.ip_local_reserved_ports": requested}
    plan = profile.build_plan(settings, SysctlTree(root), reserve_listener_ports=True)
    assert [r["key"] for r in plan["refused"]] == ["net.ipv4.ip_local_port_range"] and plan["reserved_for_listeners"] == []
    assert [(e["key"], e["after"], e["change"]) for e in plan["entries"]] == [("net.ipv4.ip_local_reserved_ports", expected, True)]
    # Without reserve_listener_ports the plan is the same.
    plain = profile.build_plan(settings, SysctlTree(root))
    assert [(e["key"], e["after"], e["change"]) for e in plain["entries"]] == [("net.ipv4.ip_local_reserved_ports", expected, True)]


SETTINGS = {
    "net.core.somaxconn": ">= 8192",
    "net.ipv4.tcp_keepalive_time": 600,
    "net.ipv4.tcp_max_tw_buckets": ">= 262144",
    "net.ipv4.ip_conntrack_max": ">= 524288",
    "net.ipv4.tcp_tw_recycle": 1,
    "net.netfilter.nf_conntrack_tcp_timeout_established": 86400,
    "net.ipv4.vs.expire_nodest_conn": 1,
    "net.ipv4.tcp_fin_timeout": 2,
}


def test_present_applies_persists_and_is_idempotent(tmp_path):
    root = make_tree(tmp_path)
    check = profile.profile_present(root, "web", SETTINGS, check_mode=True)
    assert read(root, DROPIN) is None and raw(root, "net/core/somaxconn") == "4096\n"

    first = profile.profile_present(root, "web", SETTINGS)
    assert first == check
    assert first["changed"] is True
    assert first["applied"]["net.core.somaxconn"] == {"before": "4096", "after": "8192"}
    assert first["applied"]["net.netfilter.nf_conntrack_max"] == {"before": "262144", "after": "524288"}
    assert first["renamed"] == [{"key": "net.ipv4.ip_conntrack_max", "to": "net.netfilter.nf_conntrack_max"}]
    assert dict((s["key"], s["classification"]) for s in first["skipped_keys"]) == {
        "net.ipv4.tcp_tw_recycle": "removed", "net.ipv4.vs.expire_nodest_conn": "module_not_loaded"}
    assert [r["key"] for r in first["refused"]] == ["net.ipv4.tcp_fin_timeout"]
    assert raw(root, "net/core/somaxconn") == "8192\n" and raw(root, "net/ipv4/tcp_fin_timeout") == "60\n"

    text = read(root, DROPIN)
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert body == [
        "net.core.somaxconn = 8192",
        "net.ipv4.tcp_keepalive_time = 600",
        "net.ipv4.tcp_max_tw_buckets = 262144",
        "-net.netfilter.nf_conntrack_max = 524288",
        "-net.netfilter.nf_conntrack_tcp_timeout_established = 86400",
    ]
    for absent in ("tcp_tw_recycle", "ip_conntrack", "vs.expire", "tcp_fin_timeout"):
        assert absent not in text
    state = json.loads(read(root, STATE))
    assert state["originals"] == {"net.core.somaxconn": "4096", "net.ipv4.tcp_keepalive_time": "7200",
                                  "net.ipv4.tcp_max_tw_buckets": "131072", "net.netfilter.nf_conntrack_max": "262144",
                                  "net.netfilter.nf_conntrack_tcp_timeout_established": "432000"}
    assert [d["before_header"] for d in first["diff"]] == ["runtime (/proc/sys)", DROPIN]

    before = snapshot(root)
    again = profile.profile_present(root, "web", SETTINGS)
    assert again["changed"] is False and again["diff"] == []
    assert snapshot(root) == before
    assert profile.profile_present(root, "web", SETTINGS, check_mode=True)["changed"] is False


def test_present_reports_boot_overrides(tmp_path):
    root = make_tree(tmp_path)
    put(root, "/etc/sysctl.conf", "net.core.somaxconn = 1024\n")
    os.makedirs(os.path.join(root, "etc/sysctl.d"))
    os.symlink("../sysctl.conf", os.path.join(root, "etc/sysctl.d/99-sysctl.conf"))
    put(root, "/usr/lib/sysctl.d/90-linuxnet-web.conf", "net.ipv4.tcp_keepalive_time = 1\n")
    result = profile.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600})
    assert result["overridden_at_boot"] == [{"key": "net.core.somaxconn", "file": "/etc/sysctl.d/99-sysctl.conf", "value": "1024"}]


def test_present_reports_a_later_exclusion_as_an_override(tmp_path):
    """A later '-key' line replaces our assignment in systemd-sysctl's map: boot does not set the key at all."""
    root = make_tree(tmp_path)
    put(root, "/etc/sysctl.d/95-site.conf", "-net.core.somaxconn\n-net.ipv4.tcp_keepalive_*\n")
    put(root, "/etc/sysctl.d/10-early.conf", "-net/ipv4/tcp_fin_timeout\n")  # earlier: our assignment replaces it
    result = profile.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600,
                                                   "net.ipv4.tcp_fin_timeout": 30})
    assert result["overridden_at_boot"] == [{"key": "net.core.somaxconn", "file": "/etc/sysctl.d/95-site.conf", "value": None}]


def test_bad_input_changes_nothing(tmp_path):
    root = make_tree(tmp_path)
    before = snapshot(root)
    bad = [
        {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": "600\nkernel.core_pattern = |/bin/sh"},
        {"net.core.somaxconn": 8192, "net.ipv4.tcp_tw_reuse": 5},
        {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": True},
        {"net.core.somaxconn": 8192, "/etc/passwd": 1},
    ]
    for settings in bad:
        with pytest.raises(SysctlError):
            profile.profile_present(root, "web", settings)
    with pytest.raises(SysctlError):
        profile.profile_present(root, "../../tmp/x", {"net.core.somaxconn": 8192})
    with pytest.raises(SysctlError):
        profile.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_tw_recycle": 1}, unsupported="fail")
    assert snapshot(root) == before


def test_present_refuses_foreign_file(tmp_path):
    root = make_tree(tmp_path)
    put(root, DROPIN, "net.core.somaxconn = 1\n")
    before = snapshot(root)
    with pytest.raises(SysctlError) as err:
        profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    assert "not managed" in str(err.value)
    assert snapshot(root) == before


def test_failed_write_rolls_back_runtime_and_keeps_files(tmp_path):
    root = make_tree(tmp_path)
    before = snapshot(root)
    tree = FakeKernel(root, reject={"net.ipv4.tcp_keepalive_time": {"600": errno.EINVAL}})
    with pytest.raises(ApplyError) as err:
        profile.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600}, tree=tree)
    assert err.value.key == "net.ipv4.tcp_keepalive_time"
    after = snapshot(root)
    assert dict((k, v[0]) for k, v in after.items()) == dict((k, v[0]) for k, v in before.items())


def test_failed_file_write_rolls_back_runtime(tmp_path, monkeypatch):
    root = make_tree(tmp_path)
    os.makedirs(os.path.join(root, "etc/sysctl.d"))
    before, dirs = snapshot(root), _dirs(root)
    fault = DiskFault(monkeypatch, root, "/etc/sysctl.d", errno.ENOSPC)
    with pytest.raises(profile.CommitError) as err:
        profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    assert fault.hits
    assert str(err.value) == ("writing the profile's files failed: %s: ENOSPC (No space left on device); rolled back 1 runtime "
                              "value(s) and 0 file(s); the state file is as before" % DROPIN)
    assert (err.value.path, err.value.errno) == (DROPIN, "ENOSPC")
    assert raw(root, "net/core/somaxconn") == "4096\n" and read(root, STATE) is None
    # A failed first run leaves nothing: no temporary file, no lock file, no empty state directory.
    assert dict((k, v[0]) for k, v in snapshot(root).items()) == dict((k, v[0]) for k, v in before.items())
    assert _dirs(root) == dirs


def test_absent_restores_originals_unless_another_file_sets_them(tmp_path):
    root = make_tree(tmp_path)
    profile.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600})
    SysctlTree(root).write("net.ipv4.tcp_keepalive_time", "900")
    put(root, "/usr/lib/sysctl.d/60-vendor.conf", "net.core.somaxconn = 16384\n")

    check = profile.profile_absent(root, "web", check_mode=True)
    assert read(root, DROPIN) is not None
    result = profile.profile_absent(root, "web")
    assert result == check
    assert result["applied"] == {"net.ipv4.tcp_keepalive_time": {"before": "900", "after": "7200"}}
    assert result["not_restored"] == [{"key": "net.core.somaxconn", "file": "/usr/lib/sysctl.d/60-vendor.conf", "value": "16384"}]
    assert raw(root, "net/ipv4/tcp_keepalive_time") == "7200\n" and raw(root, "net/core/somaxconn") == "8192\n"
    assert read(root, DROPIN) is None and read(root, STATE) is None
    before = snapshot(root)
    assert profile.profile_absent(root, "web")["changed"] is False
    assert snapshot(root) == before


class _UnreadableKey(SysctlTree):
    """A tree where one key exists and is writable but read(2) fails."""

    def read(self, key):
        if key == "net.ipv4.tcp_keepalive_time":
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return super(_UnreadableKey, self).read(key)


def test_absent_with_apply_false_plans_no_restore(tmp_path):
    root = make_tree(tmp_path)
    profile.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600})
    # apply=false restores nothing, so it neither reads the saved keys nor fails on one that cannot be read.
    check = profile.profile_absent(root, "web", apply=False, check_mode=True, tree=_UnreadableKey(root))
    result = profile.profile_absent(root, "web", apply=False, tree=_UnreadableKey(root))
    assert result == check
    assert result["changed"] is True and result["restored"] == {} and result["skipped_keys"] == [] and result["not_restored"] == []
    assert read(root, DROPIN) is None and read(root, STATE) is not None  # the originals stay saved
    assert raw(root, "net/core/somaxconn") == "8192\n" and raw(root, "net/ipv4/tcp_keepalive_time") == "600\n"


def test_present_in_child_netns_skips_globals(tmp_path):
    root = make_tree(tmp_path, child=True)
    result = profile.profile_present(root, "web", {"net.core.rmem_max": ">= 8388608", "net.ipv4.tcp_max_orphans": ">= 262144",
                                                   "net.ipv4.ip_conntrack_max": 524288, "net.core.somaxconn": 8192})
    assert [(s["key"], s["classification"], s["reason"]) for s in result["skipped_keys"]] == [
        ("net.core.rmem_max", "global_in_child_netns", "global key: set this on the host"),
        ("net.ipv4.tcp_max_orphans", "global_in_child_netns", "global key: set this on the host"),
        ("net.netfilter.nf_conntrack_max", "global_in_child_netns", "global key: set this on the host"),
    ]
    assert list(result["applied"]) == ["net.core.somaxconn"]


def test_apply_false_persists_without_runtime_change(tmp_path):
    root = make_tree(tmp_path)
    result = profile.profile_present(root, "web", {"net.core.somaxconn": 8192}, apply=False)
    assert result["applied"] == {"net.core.somaxconn": {"before": "4096", "after": "4096"}}
    assert raw(root, "net/core/somaxconn") == "4096\n" and "net.core.somaxconn = 8192" in read(root, DROPIN)
    # The running value is kept, so that absent after the boot that applies the file gives it back (seen on real
    # reboots, tests/vm).
    assert json.loads(read(root, STATE))["originals"] == {"net.core.somaxconn": "4096"}
    again = profile.profile_present(root, "web", {"net.core.somaxconn": 8192}, apply=False)
    assert again["changed"] is False
    with open(os.path.join(root, "proc/sys/net/core/somaxconn"), "w") as handle:
        handle.write("8192\n")  # the next boot applied the drop-in
    gone = profile.profile_absent(root, "web")
    assert gone["restored"] == {"net.core.somaxconn": {"before": "8192", "after": "4096"}}
    assert raw(root, "net/core/somaxconn") == "4096\n" and read(root, STATE) is None and read(root, DROPIN) is None


def test_present_loads_modules_first_and_persists_boot_files(tmp_path):
    root, modprobe = conntrack_host(tmp_path)
    options = {"nf_conntrack": {"hashsize": 262144}}
    check = profile.profile_present(root, "web", CONNTRACK, modules=["nf_conntrack"], module_options=options,
                                    modprobe=modprobe, check_mode=True)
    assert modprobe.calls == [] and check["changed"] is True and check["modules_loaded"] == ["nf_conntrack"]
    assert "a real run loads it with modprobe first" in check["skipped_keys"][0]["reason"]

    result = profile.profile_present(root, "web", CONNTRACK, modules=["nf_conntrack"], module_options=options, modprobe=modprobe)
    assert modprobe.calls == [["nf_conntrack"]] and result["modules_loaded"] == ["nf_conntrack"]
    assert result["applied"] == {"net.netfilter.nf_conntrack_tcp_timeout_established": {"before": "432000", "after": "86400"}}
    assert result["skipped_keys"] == []
    assert read(root, MODULES_FILE).splitlines()[-1] == "nf_conntrack"
    assert read(root, MODPROBE_FILE).splitlines()[-1] == "options nf_conntrack hashsize=262144"
    assert "-net.netfilter.nf_conntrack_tcp_timeout_established = 86400" in read(root, DROPIN)
    assert result["modules_file"] == MODULES_FILE and result["modprobe_file"] == MODPROBE_FILE
    assert [d["after_header"] for d in result["diff"]] == ["runtime (/proc/sys)", DROPIN, MODULES_FILE, MODPROBE_FILE]

    before = snapshot(root)
    again = profile.profile_present(root, "web", CONNTRACK, modules=["nf_conntrack"], module_options=options, modprobe=modprobe)
    assert again["changed"] is False and again["modules_loaded"] == [] and len(modprobe.calls) == 1
    assert snapshot(root) == before

    # A later run without modules removes the boot files it owns; state=absent removes the rest.
    fewer = profile.profile_present(root, "web", CONNTRACK, modprobe=modprobe)
    assert fewer["changed"] is True and read(root, MODULES_FILE) is None and read(root, MODPROBE_FILE) is None
    profile.profile_present(root, "web", CONNTRACK, modules=["nf_conntrack"], modprobe=modprobe)
    gone = profile.profile_absent(root, "web")
    assert MODULES_FILE in [d["before_header"] for d in gone["diff"]]
    assert read(root, MODULES_FILE) is None and read(root, DROPIN) is None
    assert raw(root, "net/netfilter/nf_conntrack_tcp_timeout_established") == "432000\n"


def test_modules_are_never_loaded_in_a_container(tmp_path):
    files = dict((k, v) for k, v in HOST.items() if not k.startswith("net/netfilter/"))
    root = make_tree(tmp_path, files, modules=(), child=True)
    modprobe = FakeModprobe(root)
    result = profile.profile_present(root, "web", CONNTRACK, modules=["nf_conntrack"], modprobe=modprobe)
    assert modprobe.calls == [] and result["modules_loaded"] == []
    assert result["skipped_keys"][0]["classification"] == "module_not_loaded"
    assert result["kernel"]["initial_netns"] is False
    assert read(root, MODULES_FILE) is not None  # the boot configuration is still written


def test_failed_modprobe_is_reported_and_its_keys_skipped(tmp_path):
    root, _modprobe = conntrack_host(tmp_path)
    modprobe = FakeModprobe(root, broken=("nf_conntrack",))
    result = profile.profile_present(root, "web", dict(CONNTRACK, **{"net.core.somaxconn": 8192}), modules=["nf_conntrack"],
                                     modprobe=modprobe)
    assert result["modules_loaded"] == [] and "modprobe nf_conntrack failed (rc=1)" in result["warnings"][0]
    assert [s["classification"] for s in result["skipped_keys"]] == ["module_not_loaded"]
    assert raw(root, "net/core/somaxconn") == "8192\n"
    missing = profile.profile_present(root, "other", CONNTRACK, modules=["nf_conntrack"], modprobe=None)
    assert "modprobe is not installed" in missing["warnings"][0]


@pytest.mark.parametrize("modules, options, words", [
    (["nf_conntrack\nip_vs"], None, "not a kernel module name"),
    (["../x"], None, "not a kernel module name"),
    ("nf_conntrack", None, "must be a list"),
    ([], {"nf_conntrack": {"hashsize": "1 2"}}, "module_options.nf_conntrack.hashsize"),
    ([], {"nf_conntrack": {"hash size": 1}}, "not a module parameter name"),
    ([], {"nf_conntrack": {}}, "non-empty mapping"),
    ([], {"nf_conntrack": {"hashsize": True}}, "must be an integer or a token"),
    ([], {"nf conntrack": {"hashsize": 1}}, "module_options: 'nf conntrack' is not a kernel module name"),
])
def test_bad_module_input_changes_nothing(tmp_path, modules, options, words):
    root, modprobe = conntrack_host(tmp_path)
    before = snapshot(root)
    with pytest.raises(SysctlError) as err:
        profile.profile_present(root, "web", CONNTRACK, modules=modules, module_options=options, modprobe=modprobe)
    assert words in str(err.value)
    assert snapshot(root) == before and modprobe.calls == []


def test_bad_settings_fail_before_a_module_is_loaded(tmp_path):
    root, modprobe = conntrack_host(tmp_path)
    with pytest.raises(SysctlError):
        profile.profile_present(root, "web", {"net.ipv4.tcp_tw_reuse": 7}, modules=["nf_conntrack"], modprobe=modprobe)
    assert modprobe.calls == []


def test_foreign_boot_file_is_never_overwritten_or_removed(tmp_path):
    root, modprobe = conntrack_host(tmp_path)
    put(root, MODULES_FILE, "# mine\nnf_conntrack\n")
    with pytest.raises(SysctlError) as err:
        profile.profile_present(root, "web", CONNTRACK, modules=["nf_conntrack"], modprobe=modprobe)
    assert "not managed by linuxnet.tcp" in str(err.value) and modprobe.calls == []
    profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    profile.profile_absent(root, "web")
    assert read(root, MODULES_FILE) == "# mine\nnf_conntrack\n"


def test_read_only_proc_sys_writes_nothing(tmp_path, monkeypatch):
    root = make_tree(tmp_path)

    class Flags(object):
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda path: Flags())
    before = snapshot(root)
    result = profile.profile_present(root, "web", {"net.core.somaxconn": 8192}, modules=["nf_conntrack"])
    assert result["changed"] is False and result["persisted_file"] is None and result["kernel"]["proc_sys_writable"] is False
    assert [s["classification"] for s in result["skipped_keys"]] == ["proc_sys_read_only"]
    assert snapshot(root) == before


def test_failed_boot_file_restores_the_files_already_written(tmp_path, monkeypatch):
    root, modprobe = conntrack_host(tmp_path)
    profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    os.makedirs(os.path.join(root, "etc/modprobe.d"))
    before = snapshot(root)
    DiskFault(monkeypatch, root, "/etc/modprobe.d", errno.EROFS)
    with pytest.raises(profile.CommitError) as err:
        profile.profile_present(root, "web", {"net.core.somaxconn": 16384}, modules=["ip_vs"],
                                module_options={"ip_vs": {"conn_tab_bits": 12}}, modprobe=modprobe, load=False)
    assert str(err.value).startswith("writing the profile's files failed: %s: EROFS (Read-only file system); rolled back 1 "
                                     "runtime value(s) and 2 file(s); the state file is as before" % MODPROBE_FILE)
    assert dict((k, v[0]) for k, v in snapshot(root).items()) == dict((k, v[0]) for k, v in before.items())
    assert raw(root, "net/core/somaxconn") == "8192\n"


def test_present_reserves_listener_ports_and_persists_them(tmp_path):
    root = with_listeners(make_tree(tmp_path), [20080, 22])
    settings = {"net.ipv4.ip_local_port_range": "10240 65535", "net.ipv4.ip_local_reserved_ports": ">= 8080"}
    result = profile.profile_present(root, "web", settings, reserve_listener_ports=True)
    assert result["reserved_for_listeners"] == [20080]
    assert raw(root, "net/ipv4/ip_local_reserved_ports") == "8080,20080\n"
    assert "net.ipv4.ip_local_reserved_ports = 8080,20080" in read(root, DROPIN)
    before = snapshot(root)
    assert profile.profile_present(root, "web", settings, reserve_listener_ports=True)["changed"] is False
    assert snapshot(root) == before


def test_a_key_dropped_from_the_profile_gets_its_original_back(tmp_path):
    root = make_tree(tmp_path)
    profile.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600,
                                          "net.ipv4.tcp_syn_retries": 6})
    smaller = {"net.core.somaxconn": 8192}
    check = profile.profile_present(root, "web", smaller, check_mode=True)
    assert raw(root, "net/ipv4/tcp_keepalive_time") == "600\n"
    assert check["restored"] == {"net.ipv4.tcp_keepalive_time": {"before": "600", "after": "7200"}}
    assert "net.ipv4.tcp_keepalive_time = 600\n" in check["diff"][0]["before"]
    assert "net.ipv4.tcp_keepalive_time = 7200\n" in check["diff"][0]["after"]
    result = profile.profile_present(root, "web", smaller)
    assert result == check
    assert raw(root, "net/ipv4/tcp_keepalive_time") == "7200\n" and raw(root, "net/core/somaxconn") == "8192\n"
    assert "tcp_keepalive_time" not in read(root, DROPIN)
    assert json.loads(read(root, STATE))["originals"] == {"net.core.somaxconn": "4096"}
    before = snapshot(root)
    again = profile.profile_present(root, "web", smaller)
    assert again["changed"] is False and again["restored"] == {}
    assert snapshot(root) == before


def test_a_dropped_key_that_another_file_sets_is_left_alone(tmp_path):
    root = make_tree(tmp_path)
    profile.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600})
    put(root, "/usr/lib/sysctl.d/60-vendor.conf", "net.ipv4.tcp_keepalive_time = 900\n")
    result = profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    assert result["restored"] == {}
    assert result["not_restored"] == [{"key": "net.ipv4.tcp_keepalive_time", "file": "/usr/lib/sysctl.d/60-vendor.conf",
                                       "value": "900"}]
    assert raw(root, "net/ipv4/tcp_keepalive_time") == "600\n"
    assert json.loads(read(root, STATE))["originals"] == {"net.core.somaxconn": "4096"}


def test_revert_puts_back_exactly_what_one_run_changed(tmp_path):
    root = make_tree(tmp_path)
    profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    tuned = snapshot(root)
    second = profile.profile_present(root, "web", {"net.core.somaxconn": 16384, "net.ipv4.tcp_keepalive_time": 600},
                                     modules=["nf_conntrack"])
    assert second["revert"]["runtime"] == {"net.core.somaxconn": "8192", "net.ipv4.tcp_keepalive_time": "7200"}
    assert second["revert"]["files"][MODULES_FILE] is None
    check = profile.profile_reverted(root, "web", second["revert"], check_mode=True)
    assert check["changed"] is True and raw(root, "net/core/somaxconn") == "16384\n"
    assert check["restored"] == {"net.core.somaxconn": {"before": "16384", "after": "8192"},
                                 "net.ipv4.tcp_keepalive_time": {"before": "600", "after": "7200"}}
    result = profile.profile_reverted(root, "web", second["revert"])
    assert result == check
    assert dict((k, v[0]) for k, v in snapshot(root).items()) == dict((k, v[0]) for k, v in tuned.items())
    assert profile.profile_reverted(root, "web", second["revert"])["changed"] is False
    # Reverting the first run as well leaves the host as it was before the profile existed.
    first_again = profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    assert first_again["changed"] is False and first_again["revert"] is None


def _dirs(root):
    return sorted(os.path.relpath(base, root) for base, _dirs, _files in os.walk(root))


def test_revert_of_a_first_run_removes_the_profile(tmp_path):
    root = make_tree(tmp_path)
    os.makedirs(os.path.join(root, "var", "lib"))
    before, dirs = snapshot(root), _dirs(root)
    first = profile.profile_present(root, "web", {"net.core.somaxconn": 8192}, modules=["nf_conntrack"])
    assert first["revert"]["files"] == {DROPIN: None, MODULES_FILE: None} and first["revert"]["state"] == {"changed": True, "text": None}
    # The run made /etc/sysctl.d, /etc/modules-load.d, /etc and /var/lib/linuxnet-tcp, deepest first; /var/lib was there.
    assert first["revert"]["directories"] == ["/var/lib/linuxnet-tcp", "/etc/modules-load.d", "/etc/sysctl.d", "/etc"]
    put(root, "/etc/modules-load.d/other.conf", "sctp\n")  # someone else's file keeps its directory (and /etc)
    check = profile.profile_reverted(root, "web", first["revert"], check_mode=True)
    assert check == profile.profile_reverted(root, "web", first["revert"])
    after = snapshot(root)
    after.pop(os.path.join(root, "etc/modules-load.d/other.conf"))
    assert dict((k, v[0]) for k, v in after.items()) == dict((k, v[0]) for k, v in before.items())
    assert _dirs(root) == sorted(dirs + ["etc", "etc/modules-load.d"])


@pytest.mark.parametrize("revert, words", [
    ({"profile": "db"}, "of profile 'web'"),
    ("nope", "of profile 'web'"),
    ({"profile": "web", "files": {"/etc/passwd": None}}, "/etc/passwd is not a file of profile 'web'"),
    ({"profile": "web", "files": {DROPIN: "kernel.core_pattern = |/bin/sh\n"}}, "not one of this collection's files"),
    ({"profile": "web", "runtime": {"net.core.somaxconn": "1\nx"}}, "newline"),
    ({"profile": "web", "runtime": {"../x": "1"}}, "'..'"),
    ({"profile": "web", "state": {"changed": True, "text": "[]"}}, "not a state file"),
])
def test_revert_refuses_what_is_not_this_profiles(tmp_path, revert, words):
    root = make_tree(tmp_path)
    profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    before = snapshot(root)
    with pytest.raises(SysctlError) as err:
        profile.profile_reverted(root, "web", revert)
    assert words in str(err.value)
    assert snapshot(root) == before


def test_state_file_of_older_releases_reads_the_same(tmp_path):
    root = make_tree(tmp_path)
    put(root, DROPIN, "# Managed by linuxnet.tcp.sysctl_profile (profile \"web\").\nnet/ipv4/conf/eth0.100/forwarding = 1\n")
    put(root, STATE, json.dumps({"profile": "web", "file": DROPIN, "originals": {"net/ipv4/conf/eth0.100/forwarding": "0"}}))
    SysctlTree(root).write("net.ipv4.conf.eth0/100.forwarding", "1")
    result = profile.profile_absent(root, "web")
    assert result["restored"] == {"net.ipv4.conf.eth0/100.forwarding": {"before": "1", "after": "0"}}
    assert raw(root, "net/ipv4/conf/eth0.100/forwarding") == "0\n"


@pytest.mark.parametrize("key", ["net/../../../etc/victim", "net.//.//.//.etc.victim", "net.core.*", "net.core.some maxconn"])
def test_state_file_with_a_key_outside_proc_sys_is_refused(tmp_path, key):
    """A state file is data: its keys are validated like option keys, so a restore never writes outside /proc/sys."""
    root = make_tree(tmp_path)
    put(root, "/etc/victim", "1\n")
    put(root, DROPIN, "# Managed by linuxnet.tcp.sysctl_profile (profile \"web\").\nnet.core.somaxconn = 8192\n")
    put(root, STATE, json.dumps({"profile": "web", "file": DROPIN, "originals": {key: "0", "net.core.somaxconn": "4096"}}))
    before = snapshot(root)
    with pytest.raises(SysctlError) as err:
        profile.profile_absent(root, "web")
    assert "state file %s names an invalid key" % STATE in str(err.value) and "move it away" in str(err.value)
    with pytest.raises(SysctlError):
        profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    assert snapshot(root) == before and read(root, "/etc/victim") == "1\n"


def test_interface_keys_in_either_spelling_are_one_key(tmp_path):
    root = make_tree(tmp_path)
    with pytest.raises(SysctlError) as err:
        profile.profile_present(root, "web", {"net.ipv4.conf.eth0/100.forwarding": 1, "net/ipv4/conf/eth0.100/forwarding": 1})
    assert "net.ipv4.conf.eth0/100.forwarding is set twice" in str(err.value)
    result = profile.profile_present(root, "web", {"net/ipv4/conf/eth0.100/forwarding": 1})
    assert result["applied"] == {"net.ipv4.conf.eth0/100.forwarding": {"before": "0", "after": "1"}}
    assert "net.ipv4.conf.eth0/100.forwarding = 1" in read(root, DROPIN)
    assert json.loads(read(root, STATE))["originals"] == {"net.ipv4.conf.eth0/100.forwarding": "0"}


def test_pending_reboot_when_persisting_only(tmp_path):
    root = make_tree(tmp_path)
    result = profile.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_fin_timeout": 60}, apply=False)
    assert result["pending_reboot"] == [{"key": "net.core.somaxconn", "value": "8192",
                                         "reason": "apply=false: persisted only, the running value is 4096"}]


def test_keys_of_a_module_not_loaded_now_are_persisted_for_boot(tmp_path):
    root, modprobe = conntrack_host(tmp_path)
    settings = dict(CONNTRACK, **{"net.netfilter.nf_conntrack_max": ">= 262144"})
    check = profile.profile_present(root, "web", settings, modules=["nf_conntrack"], load=False, modprobe=modprobe, check_mode=True)
    result = profile.profile_present(root, "web", settings, modules=["nf_conntrack"], load=False, modprobe=modprobe)
    assert result == check and modprobe.calls == []
    assert result["pending_reboot"] == [{"key": "net.netfilter.nf_conntrack_tcp_timeout_established", "value": "86400",
                                         "reason": "nf_conntrack is not loaded now; the profile's modules-load.d file loads it at "
                                                   "the next boot, before systemd-sysctl applies this value"}]
    assert "-net.netfilter.nf_conntrack_tcp_timeout_established = 86400" in read(root, DROPIN)
    assert read(root, MODULES_FILE).splitlines()[-1] == "nf_conntrack"
    # '>= N' needs the running value: not persisted, and the reason says why.
    assert [s["key"] for s in result["skipped_keys"]] == ["net.netfilter.nf_conntrack_max"]
    assert "needs the running value" in result["skipped_keys"][0]["reason"]
    assert "nf_conntrack_max" not in read(root, DROPIN)
    assert profile.profile_present(root, "web", settings, modules=["nf_conntrack"], load=False, modprobe=modprobe)["changed"] is False


def test_lost_at_boot_and_module_reload(tmp_path):
    root = make_tree(tmp_path)
    put(root, "/sys/module/nf_conntrack/initstate", "live\n")  # loaded now by something else, not built in
    put(root, "/sys/module/nf_conntrack/parameters/hashsize", "65536\n")
    options = {"nf_conntrack": {"hashsize": 262144}}
    result = profile.profile_present(root, "web", CONNTRACK, module_options=options)
    assert result["applied"]["net.netfilter.nf_conntrack_tcp_timeout_established"]["after"] == "86400"
    assert [item["key"] for item in result["lost_at_boot"]] == ["net.netfilter.nf_conntrack_tcp_timeout_established"]
    assert "nothing loads before systemd-sysctl" in result["lost_at_boot"][0]["reason"]
    assert result["needs_module_reload"] == [{"module": "nf_conntrack", "param": "hashsize", "value": "262144", "live": "65536"}]
    # Listing the module puts it in modules-load.d: then boot does set the key.
    listed = profile.profile_present(root, "web", CONNTRACK, modules=["nf_conntrack"], module_options=options)
    assert listed["lost_at_boot"] == [] and listed["needs_module_reload"] == result["needs_module_reload"]


def test_a_key_another_agent_rewrites_is_skipped_unless_forced(tmp_path):
    """kube-proxy's recorded command line (tests/unit/fixtures/agents) sets the conntrack established timeout to 12 h."""
    import shutil  # pylint: disable=import-outside-toplevel
    root = make_tree(tmp_path)
    fixture = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "agents", "kube-proxy-flags-iptables", "proc", "911")
    shutil.copytree(fixture, os.path.join(root, "proc", "911"))
    settings = {"net.netfilter.nf_conntrack_tcp_timeout_established": 86400, "net.core.somaxconn": 8192}
    result = profile.profile_present(root, "web", settings)
    owned = [s for s in result["skipped_keys"] if s["classification"] == "owned_by_agent"]
    assert [s["key"] for s in owned] == ["net.netfilter.nf_conntrack_tcp_timeout_established"]
    assert owned[0]["reason"].startswith("kube-proxy sets it at start from --conntrack-tcp-timeout-established")
    assert ", to 43200. Set --conntrack-tcp-timeout-established" in owned[0]["reason"]
    assert owned[0]["reason"].endswith(". Skipped so the two do not take turns (force_owned_keys applies it anyway).")
    assert raw(root, "net/netfilter/nf_conntrack_tcp_timeout_established") == "432000\n"
    assert "nf_conntrack_tcp_timeout_established" not in read(root, DROPIN)
    # The same value as the agent's is no fight: applied.
    same = profile.profile_present(root, "web", {"net.netfilter.nf_conntrack_tcp_timeout_established": 43200})
    assert same["applied"]["net.netfilter.nf_conntrack_tcp_timeout_established"]["after"] == "43200"
    forced = profile.profile_present(root, "web", settings, force_owned_keys=["net/netfilter/nf_conntrack_tcp_timeout_established"])
    assert forced["applied"]["net.netfilter.nf_conntrack_tcp_timeout_established"]["after"] == "86400"
    assert any("force_owned_keys" in w and "kube-proxy" in w for w in forced["warnings"])
    assert forced["warnings"] == ["force_owned_keys: applying net.netfilter.nf_conntrack_tcp_timeout_established although "
                                  "kube-proxy also sets it; it writes its own value again when it restarts"]


def test_force_owned_keys_warns_only_for_keys_really_forced(tmp_path):
    """No warning for a listed key the agent sets to the same value, or one skipped or refused for another reason."""
    import shutil  # pylint: disable=import-outside-toplevel
    root = make_tree(tmp_path)
    fixture = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "agents", "kube-proxy-flags-iptables", "proc", "911")
    shutil.copytree(fixture, os.path.join(root, "proc", "911"))
    key = "net.netfilter.nf_conntrack_tcp_timeout_established"
    same = profile.profile_present(root, "web", {key: 43200}, force_owned_keys=[key])
    assert same["applied"][key]["after"] == "43200"
    assert not any("force_owned_keys" in w for w in same["warnings"])
    # Not applied at all: unknown to this kernel now (the module is gone), so nothing was forced.
    shutil.rmtree(os.path.join(root, "sys", "module", "nf_conntrack"))
    os.unlink(os.path.join(root, "proc", "sys", "net", "netfilter", "nf_conntrack_tcp_timeout_established"))
    gone = profile.profile_present(root, "web", {key: 86400, "net.core.somaxconn": 8192}, force_owned_keys=[key], persist=False)
    assert [s["key"] for s in gone["skipped_keys"]] == [key] and key not in gone["applied"]
    assert not any("force_owned_keys" in w for w in gone["warnings"])


# ---------------------------------------------------------------------------------------------
# Interrupted runs, full disks, concurrent runs. tests/integration/test_sysctl_crash.py does the same with the real
# module killed by SIGKILL (strace) in private namespaces; here every step of the library is cut in process.

class Killed(BaseException):
    """SIGKILL in process: not an Exception, so no handler of the code under test runs for it."""


class Killer(object):
    """Kill the run at its ``at``-th mutating system call under ``root``; every later one fails too (the process is
    gone), and its descriptors close, which releases its flock as the kernel would."""

    CALLS = ("write", "replace", "rename", "unlink", "mkdir", "rmdir", "fsync", "fchmod", "ftruncate")

    def __init__(self, monkeypatch, root, at):
        self.root, self.at, self.count, self.dead = os.path.realpath(root) + "/", at, 0, False
        for name in self.CALLS:
            monkeypatch.setattr(os, name, self._wrap(getattr(os, name)))

    def _mine(self, target):
        if isinstance(target, int):
            target = os.readlink("/proc/self/fd/%d" % target)
        return os.path.realpath(target).startswith(self.root)

    def _wrap(self, real):
        def call(target, *args, **kwargs):
            if self._mine(target):
                if self.dead:
                    raise Killed()
                self.count += 1
                if self.count == self.at:
                    self.dead = True
                    raise Killed()
            return real(target, *args, **kwargs)
        return call


class ProcTree(SysctlTree):
    """A fake tree whose write is one write(2) that a kill either prevents or lets through whole, as on /proc/sys
    (opening a proc file with O_TRUNC does not empty it; the handler takes the value from the one write)."""

    def write(self, key, value):
        data = (value + "\n").encode("utf-8")
        fd = os.open(self.path(key), os.O_WRONLY)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.truncate(self.path(key), len(data))


def _content(root):
    """What a run manages, for 'changed': the runtime and every file's text but the lock file's (it exists only while a
    run holds it, or after a killed one), by path under the root."""
    return dict((os.path.relpath(path, root), text) for path, (text, _mtime) in snapshot(root).items()
                if not path.endswith("/sysctl.lock"))


def _leftovers(root):
    """Evidence of an interrupted run on disk: a journal in the state file, or temporary files."""
    text = read(root, STATE)
    journal = bool(text) and "transaction" in json.loads(text)
    temps = [p for p in snapshot(root) if p.endswith(".lntcp-tmp")]
    return journal or bool(temps)


WEB1 = {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600, "net.ipv4.tcp_syn_retries": 5}
# Changes somaxconn, keeps keepalive, drops syn_retries (its original comes back), adds tcp_max_tw_buckets.
WEB2 = {"net.core.somaxconn": 16384, "net.ipv4.tcp_keepalive_time": 600, "net.ipv4.tcp_max_tw_buckets": 262144}
CRASH_KEYS = ("net/core/somaxconn", "net/ipv4/tcp_keepalive_time", "net/ipv4/tcp_syn_retries", "net/ipv4/tcp_max_tw_buckets")
SCENARIOS = {
    # name: (setup, the run that is killed; also the run that converges)
    "apply": (None, lambda root: profile.profile_present(root, "web", WEB1, modules=["nf_conntrack"], tree=ProcTree(root))),
    "update": (lambda root: profile.profile_present(root, "web", WEB1, modules=["nf_conntrack"]),
               lambda root: profile.profile_present(root, "web", WEB2, tree=ProcTree(root))),
    "absent": (lambda root: profile.profile_present(root, "web", WEB2, modules=["nf_conntrack"]),
               lambda root: profile.profile_absent(root, "web", tree=ProcTree(root))),
}


def _host(base, setup):
    root = make_tree(base)
    if setup:
        setup(root)
    return root


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_killed_at_every_step_loses_nothing_and_the_next_run_converges(tmp_path, monkeypatch, scenario):
    setup, run = SCENARIOS[scenario]
    # Durability is not what this test can see (no power is cut): fsync stays a step to cut, without the disk's wait.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    originals = dict((k, raw(make_tree(tmp_path / "pristine"), k)) for k in CRASH_KEYS)
    reference = _host(tmp_path / "reference", setup)
    start = dict((k, raw(reference, k)) for k in CRASH_KEYS)
    start_files = _content(reference)
    run(reference)
    target = dict((k, raw(reference, k)) for k in CRASH_KEYS)
    target_files = _content(reference)
    steps = 0
    while True:
        steps += 1
        root = _host(tmp_path / str(steps), setup)
        with monkeypatch.context() as patch:
            killer = Killer(patch, root, steps)
            try:
                run(root)
            except Killed:
                pass
        if not killer.dead:
            break  # the run finished before its steps-th mutating call: every step has been cut
        # Every key at its value before the run or at its target; every file whole (before or after, never torn).
        for key in CRASH_KEYS:
            assert raw(root, key) in (start[key], target[key]), (steps, key)
        state_text = read(root, STATE)
        saved = json.loads(state_text)["originals"] if state_text else {}
        for key in CRASH_KEYS:
            if raw(root, key) != originals[key]:
                # What undoes it is on disk.
                assert saved[keys.name(keys.parts_of(key))] == originals[key].strip(), (steps, key)
        for path, text in _content(root).items():
            if path.endswith(".lntcp-tmp") or path.startswith("proc/"):
                continue
            if path.endswith("/sysctl-web.json"):
                json.loads(text)
            else:
                assert text in (start_files.get(path), target_files.get(path)), (steps, path)
        # The next run converges, exactly as check mode predicts, with an exact 'changed' and 'recovered'.
        leftovers, before = _leftovers(root), _content(root)
        check = run_check(run, root)
        assert _content(root) == before
        again = run(root)
        assert again == check, steps
        assert again["changed"] is (_content(root) != before), steps
        assert (again["recovered"] is not None) is leftovers, steps
        assert dict((k, raw(root, k)) for k in CRASH_KEYS) == target, steps
        assert dict((p, t) for p, t in _content(root).items()) == target_files, steps
        # A second run changes nothing; absent puts every original back and leaves no file.
        settled = _content(root)
        second = run(root)
        assert second["changed"] is False and second["recovered"] is None and _content(root) == settled, steps
        profile.profile_absent(root, "web")
        assert dict((k, raw(root, k)) for k in CRASH_KEYS) == originals, steps
        assert not os.path.exists(os.path.join(root, "var/lib/linuxnet-tcp")) and not os.listdir(os.path.join(root, "etc/sysctl.d"))
    # Journal, runtime writes and files: a few dozen steps each; each one was cut.
    print("%s: %d mutating steps cut" % (scenario, steps - 1))
    assert steps > 15, steps


def run_check(run, root):
    """The same run in check mode (run() closes over its arguments, so call the library with check_mode through it)."""
    real = profile.profile_present, profile.profile_absent
    try:
        profile.profile_present = lambda *a, **k: real[0](*a, **dict(k, check_mode=True))
        profile.profile_absent = lambda *a, **k: real[1](*a, **dict(k, check_mode=True))
        return run(root)
    finally:
        profile.profile_present, profile.profile_absent = real


def test_recovered_says_what_the_interrupted_run_had_done(tmp_path, monkeypatch):
    root = make_tree(tmp_path)
    settings = {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600}
    # Cut the run right after its first runtime write: the journal is on disk, somaxconn written, keepalive not yet.
    writes = []
    with monkeypatch.context() as patch:
        real_write = SysctlTree.write

        def write(tree, key, value):
            if writes:
                raise Killed()
            writes.append(key)
            return real_write(tree, key, value)
        patch.setattr(SysctlTree, "write", write)
        with pytest.raises(Killed):
            profile.profile_present(root, "web", settings)
    assert writes == ["net.core.somaxconn"] and raw(root, "net/core/somaxconn") == "8192\n"
    put(root, "/etc/sysctl.d/.90-linuxnet-web.conf.abcd_123.lntcp-tmp", "# half a file")
    check = profile.profile_present(root, "web", settings, check_mode=True)
    assert read(root, "/etc/sysctl.d/.90-linuxnet-web.conf.abcd_123.lntcp-tmp") == "# half a file"
    result = profile.profile_present(root, "web", settings)
    assert result == check
    recovered = result["recovered"]
    assert recovered.pop("started").endswith("Z")
    assert recovered == {"action": "present", "pid": os.getpid(),
                         "runtime_written": {"net.core.somaxconn": {"before": "4096", "after": "8192"}},
                         "files_written": [], "temporary_files": ["/etc/sysctl.d/.90-linuxnet-web.conf.abcd_123.lntcp-tmp"]}
    assert result["changed"] is True and result["applied"]["net.ipv4.tcp_keepalive_time"] == {"before": "7200", "after": "600"}
    assert any("was interrupted after writing 1 runtime value(s) and 0 file(s)" in w for w in result["warnings"])
    assert os.listdir(os.path.join(root, "etc/sysctl.d")) == ["90-linuxnet-web.conf"]
    state = json.loads(read(root, STATE))
    assert "transaction" not in state and state["originals"] == {"net.core.somaxconn": "4096", "net.ipv4.tcp_keepalive_time": "7200"}
    again = profile.profile_present(root, "web", settings)
    assert again["changed"] is False and again["recovered"] is None


@pytest.mark.parametrize("scenario", ["apply", "update", "absent"])
@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_full_or_read_only_state_directory_fails_cleanly(tmp_path, monkeypatch, scenario, err):
    setup, run = SCENARIOS[scenario]
    root = _host(tmp_path, setup)
    os.makedirs(os.path.join(root, "var/lib"), exist_ok=True)
    before = _content(root)
    DiskFault(monkeypatch, root, "/var/lib", err)
    with pytest.raises(profile.CommitError) as exc:
        run(root)
    name = errno.errorcode[err]
    assert exc.value.errno == name and exc.value.path in (STATE, "/var/lib/linuxnet-tcp")
    assert str(exc.value).startswith("writing the journal to the state file failed: %s: %s (" % (exc.value.path, name))
    assert str(exc.value).endswith("; nothing was changed")
    assert _content(root) == before


def test_a_run_waits_for_the_lock_and_names_its_holder(tmp_path):
    root = make_tree(tmp_path)
    before = _content(root)
    with files.HostLock(root):
        with pytest.raises(files.LockTimeout) as err:
            profile.profile_present(root, "web", {"net.core.somaxconn": 8192}, lock_timeout=0.1)
        assert err.value.pid == os.getpid() and err.value.path == "/var/lib/linuxnet-tcp/sysctl.lock"
        with pytest.raises(files.LockTimeout):
            profile.profile_absent(root, "web", check_mode=True, lock_timeout=0)
    assert _content(root) == before
    with pytest.raises(SysctlError) as err:
        profile.profile_present(root, "web", {"net.core.somaxconn": 8192}, lock_timeout=-1)
    assert "lock_timeout must be a number of seconds" in str(err.value)


def test_a_fifo_at_the_drop_in_path_is_refused_never_opened(tmp_path):
    root = make_tree(tmp_path)
    os.makedirs(os.path.join(root, "etc/sysctl.d"))
    os.mkfifo(os.path.join(root, DROPIN.lstrip("/")))
    with pytest.raises(SysctlError) as err:
        profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    assert str(err.value) == "%s exists and is a FIFO, not a regular file; refusing to overwrite it" % DROPIN
    assert raw(root, "net/core/somaxconn") == "4096\n"
