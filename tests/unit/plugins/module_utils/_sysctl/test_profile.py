# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The three runs of a profile end to end (_sysctl/profile.py) on fake trees, and the readings taken before a run
(agent writers, listening ports)."""
import errno
import json
import os
import shutil

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils._agents import writers as agents
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import profile
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.keys import SysctlError
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl.tree import SysctlTree

from ansible_collections.linuxnet.tcp.tests.unit.plugins.module_utils.sysctl_fixtures import (  # pylint: disable=wrong-import-order
    CONNTRACK, DROPIN, HOST, MODPROBE_FILE, MODULES_FILE, STATE, FakeModprobe, conntrack_host, dirs, make_tree,
    put, raw, read, snapshot, with_listeners)


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


def test_revert_of_a_first_run_removes_the_profile(tmp_path):
    root = make_tree(tmp_path)
    os.makedirs(os.path.join(root, "var", "lib"))
    before, before_dirs = snapshot(root), dirs(root)
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
    assert dirs(root) == sorted(before_dirs + ["etc", "etc/modules-load.d"])


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


def test_a_fifo_at_the_drop_in_path_is_refused_never_opened(tmp_path):
    root = make_tree(tmp_path)
    os.makedirs(os.path.join(root, "etc/sysctl.d"))
    os.mkfifo(os.path.join(root, DROPIN.lstrip("/")))
    with pytest.raises(SysctlError) as err:
        profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    assert str(err.value) == "%s exists and is a FIFO, not a regular file; refusing to overwrite it" % DROPIN
    assert raw(root, "net/core/somaxconn") == "4096\n"


# ---------------------------------------------------------------------------------------------
# Readings taken before the run, outside the transaction.

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
    assert profile.listening_ports(root) == {5432, 8080}


def test_listening_ports_without_proc_net(tmp_path):
    assert profile.listening_ports(make_tree(tmp_path)) == set()


def test_listeners_passed_in_are_the_ones_the_range_rule_uses(tmp_path):
    root = with_listeners(make_tree(tmp_path), [20080])
    settings = {"net.ipv4.ip_local_port_range": "10240 65535"}
    assert [r["key"] for r in profile.profile_present(root, "web", settings, check_mode=True)["refused"]] == [
        "net.ipv4.ip_local_port_range"]
    # The caller's reading wins over the tree's: with no listener the range is applied.
    assert profile.profile_present(root, "web", settings, check_mode=True, listeners=set())["refused"] == []


def _kube_proxy(root):
    fixture = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "agents", "kube-proxy-flags-iptables", "proc", "911")
    shutil.copytree(fixture, os.path.join(root, "proc", "911"))


def test_agents_are_detected_before_the_lock_and_the_journal(tmp_path, monkeypatch):
    """A detector that fails fails the run before the host lock is taken: nothing is written, not even the lock file."""
    root = make_tree(tmp_path)
    before, before_dirs = snapshot(root), dirs(root)

    def broken(_root="/"):
        raise ValueError("a parser bug")
    monkeypatch.setattr(agents, "detect", broken)
    with pytest.raises(ValueError):
        profile.profile_present(root, "web", {"net.core.somaxconn": 8192})
    assert snapshot(root) == before and dirs(root) == before_dirs
    # Given the writers (as the module passes them), the run does not detect again.
    result = profile.profile_present(root, "web", {"net.core.somaxconn": 8192}, writers={})
    assert result["applied"] == {"net.core.somaxconn": {"before": "4096", "after": "8192"}}


def test_agent_writers_are_what_the_run_detects(tmp_path):
    root = make_tree(tmp_path)
    _kube_proxy(root)
    key = "net.netfilter.nf_conntrack_tcp_timeout_established"
    writers = profile.agent_writers(root, {key: 86400, "net.core.somaxconn": 8192})
    assert [w["agent"] for w in writers[key]] == ["kube-proxy"] and "net.core.somaxconn" not in writers
    assert profile.agent_writers(root, "not a mapping") == {}
    detected = profile.profile_present(root, "web", {key: 86400}, check_mode=True)
    assert profile.profile_present(root, "web", {key: 86400}, check_mode=True, writers=writers) == detected
    assert [s["classification"] for s in detected["skipped_keys"]] == ["owned_by_agent"]
