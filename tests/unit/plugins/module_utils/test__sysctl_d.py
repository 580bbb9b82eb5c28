# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import errno
import json
import os

import pytest

from ansible_collections.linuxnet.tcp.plugins.module_utils import _sysctl_d as sysctl_d
from ansible_collections.linuxnet.tcp.plugins.module_utils._sysctl import ApplyError, SysctlError, SysctlTree

from test__sysctl import HOST, FakeKernel, make_tree, raw  # pylint: disable=wrong-import-order

DROPIN = "/etc/sysctl.d/90-linuxnet-web.conf"
STATE = "/var/lib/linuxnet-tcp/sysctl-web.json"


def put(root, path, text):
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as handle:
        handle.write(text)


def read(root, path):
    full = os.path.join(root, path.lstrip("/"))
    if not os.path.exists(full):
        return None
    with open(full) as handle:
        return handle.read()


def snapshot(root):
    """Every file under root with its content and mtime, to prove a run wrote nothing."""
    out = {}
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as handle:
                out[path] = (handle.read(), os.stat(path).st_mtime_ns)
    return out


@pytest.mark.parametrize("text, expected", [
    ("net.ipv4.tcp_fin_timeout = 30\n", [("net.ipv4.tcp_fin_timeout", "30", False, False, False)]),
    ("  net.ipv4.tcp_fin_timeout=30  \n", [("net.ipv4.tcp_fin_timeout", "30", False, False, False)]),
    ("# c\n; c\n\nnet.core.somaxconn = 4096\n", [("net.core.somaxconn", "4096", False, False, False)]),
    ("-net.netfilter.nf_conntrack_max = 262144\n", [("net.netfilter.nf_conntrack_max", "262144", True, False, False)]),
    ("net.ipv4.ip_local_port_range = 32768\t60999\n", [("net.ipv4.ip_local_port_range", "32768 60999", False, False, False)]),
    ("net.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.lo.rp_filter\n",
     [("net.ipv4.conf.*.rp_filter", "2", False, True, False), ("net.ipv4.conf.lo.rp_filter", None, True, False, True)]),
    ("net/ipv4/conf/eth0.100/forwarding = 1\n", [("net/ipv4/conf/eth0.100/forwarding", "1", False, False, False)]),
    ("garbage line\nbad key = 1\n", []),
])
def test_parse_conf(text, expected):
    got = [(e["key"], e["value"], e["ignore_failure"], e["glob"], e["exclude"]) for e in sysctl_d.parse_conf(text)]
    assert got == expected


def reference_layout(root):
    """The precedence scenario verified with systemd 252 and procps 4.0.2 (docs/sysctl.md)."""
    put(root, "/usr/lib/sysctl.d/50-a.conf", "net.ipv4.tcp_fin_timeout = 10\n")
    put(root, "/run/sysctl.d/50-a.conf", "net.ipv4.tcp_fin_timeout = 15\n")
    put(root, "/etc/sysctl.d/50-a.conf", "net.ipv4.tcp_fin_timeout = 20\n")
    put(root, "/etc/sysctl.d/10-c.conf", "net.ipv4.tcp_keepalive_time = 200\n")
    put(root, "/usr/lib/sysctl.d/60-b.conf", "net.ipv4.tcp_keepalive_time = 100\n")
    put(root, "/etc/sysctl.d/99-z.conf", "net.ipv4.tcp_keepalive_intvl = 40\n")
    put(root, "/etc/sysctl.conf", "net.ipv4.tcp_keepalive_intvl = 30\n")
    put(root, "/etc/sysctl.d/README.sysctl", "net.ipv4.tcp_keepalive_intvl = 1\n")


@pytest.mark.parametrize("tool, files, fin, keepalive, intvl", [
    ("systemd", ["/etc/sysctl.d/10-c.conf", "/etc/sysctl.d/50-a.conf", "/usr/lib/sysctl.d/60-b.conf", "/etc/sysctl.d/99-z.conf"],
     "20", "100", "40"),
    ("procps", ["/etc/sysctl.d/10-c.conf", "/etc/sysctl.d/50-a.conf", "/usr/lib/sysctl.d/60-b.conf", "/etc/sysctl.d/99-z.conf",
                "/etc/sysctl.conf"], "20", "100", "30"),
])
def test_precedence_matches_systemd_and_procps(tmp_path, tool, files, fin, keepalive, intvl):
    root = str(tmp_path)
    reference_layout(root)
    assert [f[0] for f in sysctl_d.config_files(root, tool)] == files
    explicit, globs = sysctl_d.resolve(root, tool)
    assert sysctl_d.effective("net.ipv4.tcp_fin_timeout", explicit, globs)["value"] == fin
    assert sysctl_d.effective("net.ipv4.tcp_keepalive_time", explicit, globs)["value"] == keepalive
    assert sysctl_d.effective("net.ipv4.tcp_keepalive_intvl", explicit, globs)["value"] == intvl


def test_masked_file_and_sysctl_conf_symlink(tmp_path):
    root = str(tmp_path)
    put(root, "/usr/lib/sysctl.d/50-vendor.conf", "net.core.somaxconn = 1024\n")
    put(root, "/etc/sysctl.conf", "net.ipv4.tcp_fin_timeout = 30\n")
    os.makedirs(os.path.join(root, "etc/sysctl.d"), exist_ok=True)
    os.symlink("/dev/null", os.path.join(root, "etc/sysctl.d/50-vendor.conf"))
    os.symlink("../sysctl.conf", os.path.join(root, "etc/sysctl.d/99-sysctl.conf"))
    for tool in ("systemd", "procps"):
        files = sysctl_d.config_files(root, tool)
        # The mask hides the vendor file; /etc/sysctl.conf is read once, as 99-sysctl.conf.
        assert [f[0] for f in files] == ["/etc/sysctl.d/50-vendor.conf", "/etc/sysctl.d/99-sysctl.conf"]
        explicit = sysctl_d.resolve(root, tool)[0]
        assert "net.core.somaxconn" not in explicit
        assert explicit["net.ipv4.tcp_fin_timeout"] == [{"file": "/etc/sysctl.d/99-sysctl.conf", "value": "30", "ignore_failure": False}]


def test_globs_and_exclusions(tmp_path):
    root = str(tmp_path)
    put(root, "/etc/sysctl.d/50-rp.conf", "net.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.lo.rp_filter\nnet.ipv4.conf.eth1.rp_filter = 0\n")
    explicit, globs = sysctl_d.resolve(root)
    assert sysctl_d.effective("net.ipv4.conf.eth0.rp_filter", explicit, globs)["value"] == "2"
    assert sysctl_d.effective("net.ipv4.conf.lo.rp_filter", explicit, globs) is None
    assert sysctl_d.effective("net.ipv4.conf.eth1.rp_filter", explicit, globs)["value"] == "0"


@pytest.mark.parametrize("name, file, expected", [
    ("web", None, DROPIN),
    ("db-primary.v2", None, "/etc/sysctl.d/90-linuxnet-db-primary.v2.conf"),
    ("web", "/run/sysctl.d/50-web.conf", "/run/sysctl.d/50-web.conf"),
])
def test_dropin_path(name, file, expected):
    assert sysctl_d.dropin_path(name, file) == expected


@pytest.mark.parametrize("name, file, words", [
    ("../../etc/passwd", None, "name"),
    ("a/b", None, "name"),
    ("a..b", None, "name"),
    (".hidden", None, "name"),
    ("", None, "name"),
    (5, None, "name"),
    ("web", "relative.conf", "absolute"),
    ("web", "/etc/sysctl.d/x.txt", ".conf"),
    ("web", "/etc/sysctl.d/../sysctl.d/x.conf", "normalised"),
    ("web", "/etc/sysctl.conf", "never edits /etc/sysctl.conf"),
    ("web", "/etc/sysctl.d/99-sysctl.conf", "never edits /etc/sysctl.conf"),
])
def test_dropin_path_rejects(name, file, words):
    with pytest.raises(SysctlError) as err:
        sysctl_d.dropin_path(name, file)
    assert words in str(err.value)


def test_render_is_stable_and_marks_module_keys():
    text = sysctl_d.render("web", [("net.netfilter.nf_conntrack_max", "262144", True), ("net.core.somaxconn", "8192", False)])
    assert text.startswith(sysctl_d.MARKER)
    lines = text.splitlines()
    assert lines[-2:] == ["net.core.somaxconn = 8192", "-net.netfilter.nf_conntrack_max = 262144"]
    assert text == sysctl_d.render("web", [("net.core.somaxconn", "8192", False), ("net.netfilter.nf_conntrack_max", "262144", True)])


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
    check = sysctl_d.profile_present(root, "web", SETTINGS, check_mode=True)
    assert read(root, DROPIN) is None and raw(root, "net/core/somaxconn") == "4096\n"

    first = sysctl_d.profile_present(root, "web", SETTINGS)
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
    again = sysctl_d.profile_present(root, "web", SETTINGS)
    assert again["changed"] is False and again["diff"] == []
    assert snapshot(root) == before
    assert sysctl_d.profile_present(root, "web", SETTINGS, check_mode=True)["changed"] is False


def test_present_reports_boot_overrides(tmp_path):
    root = make_tree(tmp_path)
    put(root, "/etc/sysctl.conf", "net.core.somaxconn = 1024\n")
    os.makedirs(os.path.join(root, "etc/sysctl.d"))
    os.symlink("../sysctl.conf", os.path.join(root, "etc/sysctl.d/99-sysctl.conf"))
    put(root, "/usr/lib/sysctl.d/90-linuxnet-web.conf", "net.ipv4.tcp_keepalive_time = 1\n")
    result = sysctl_d.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600})
    assert result["overridden_at_boot"] == [{"key": "net.core.somaxconn", "file": "/etc/sysctl.d/99-sysctl.conf", "value": "1024"}]


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
            sysctl_d.profile_present(root, "web", settings)
    with pytest.raises(SysctlError):
        sysctl_d.profile_present(root, "../../tmp/x", {"net.core.somaxconn": 8192})
    with pytest.raises(SysctlError):
        sysctl_d.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_tw_recycle": 1}, unsupported="fail")
    assert snapshot(root) == before


def test_present_refuses_foreign_file(tmp_path):
    root = make_tree(tmp_path)
    put(root, DROPIN, "net.core.somaxconn = 1\n")
    before = snapshot(root)
    with pytest.raises(SysctlError) as err:
        sysctl_d.profile_present(root, "web", {"net.core.somaxconn": 8192})
    assert "not managed" in str(err.value)
    assert snapshot(root) == before


def test_failed_write_rolls_back_runtime_and_keeps_files(tmp_path):
    root = make_tree(tmp_path)
    before = snapshot(root)
    tree = FakeKernel(root, reject={"net.ipv4.tcp_keepalive_time": {"600": errno.EINVAL}})
    with pytest.raises(ApplyError) as err:
        sysctl_d.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600}, tree=tree)
    assert err.value.key == "net.ipv4.tcp_keepalive_time"
    after = snapshot(root)
    assert dict((k, v[0]) for k, v in after.items()) == dict((k, v[0]) for k, v in before.items())


def test_failed_file_write_rolls_back_runtime(tmp_path):
    root = make_tree(tmp_path)
    os.makedirs(os.path.join(root, DROPIN.lstrip("/")))  # a directory where the file goes: rename fails
    with pytest.raises(ApplyError) as err:
        sysctl_d.profile_present(root, "web", {"net.core.somaxconn": 8192})
    assert "rolled back" in str(err.value)
    assert raw(root, "net/core/somaxconn") == "4096\n" and read(root, STATE) is None


def test_absent_restores_originals_unless_another_file_sets_them(tmp_path):
    root = make_tree(tmp_path)
    sysctl_d.profile_present(root, "web", {"net.core.somaxconn": 8192, "net.ipv4.tcp_keepalive_time": 600})
    SysctlTree(root).write("net.ipv4.tcp_keepalive_time", "900")
    put(root, "/usr/lib/sysctl.d/60-vendor.conf", "net.core.somaxconn = 16384\n")

    check = sysctl_d.profile_absent(root, "web", check_mode=True)
    assert read(root, DROPIN) is not None
    result = sysctl_d.profile_absent(root, "web")
    assert result == check
    assert result["applied"] == {"net.ipv4.tcp_keepalive_time": {"before": "900", "after": "7200"}}
    assert result["not_restored"] == [{"key": "net.core.somaxconn", "file": "/usr/lib/sysctl.d/60-vendor.conf", "value": "16384"}]
    assert raw(root, "net/ipv4/tcp_keepalive_time") == "7200\n" and raw(root, "net/core/somaxconn") == "8192\n"
    assert read(root, DROPIN) is None and read(root, STATE) is None
    before = snapshot(root)
    assert sysctl_d.profile_absent(root, "web")["changed"] is False
    assert snapshot(root) == before


def test_present_in_child_netns_skips_globals(tmp_path):
    root = make_tree(tmp_path, child=True)
    result = sysctl_d.profile_present(root, "web", {"net.core.rmem_max": ">= 8388608", "net.ipv4.tcp_max_orphans": ">= 262144",
                                                    "net.ipv4.ip_conntrack_max": 524288, "net.core.somaxconn": 8192})
    assert [(s["key"], s["classification"], s["reason"]) for s in result["skipped_keys"]] == [
        ("net.core.rmem_max", "global_in_child_netns", "global key: set this on the host"),
        ("net.ipv4.tcp_max_orphans", "global_in_child_netns", "global key: set this on the host"),
        ("net.netfilter.nf_conntrack_max", "global_in_child_netns", "global key: set this on the host"),
    ]
    assert list(result["applied"]) == ["net.core.somaxconn"]


def test_apply_false_persists_without_runtime_change(tmp_path):
    root = make_tree(tmp_path)
    result = sysctl_d.profile_present(root, "web", {"net.core.somaxconn": 8192}, apply=False)
    assert result["applied"] == {"net.core.somaxconn": {"before": "4096", "after": "4096"}}
    assert raw(root, "net/core/somaxconn") == "4096\n" and "net.core.somaxconn = 8192" in read(root, DROPIN)
    assert read(root, STATE) is None


def test_facts(tmp_path):
    root = make_tree(tmp_path, child=True)
    reference_layout(root)
    put(root, "/etc/sysctl.d/70-x.conf", "net.core.somaxconn = 8192\n")
    facts = sysctl_d.gather_facts(root, ["net.ipv4.tcp_*", "net.core.somaxconn", "net.ipv4.tcp_tw_recycle", "net.ipv4.vs.conntrack"])
    assert "net.ipv4.ip_local_port_range" not in facts["values"]  # not matched by the patterns
    assert facts["values"]["net.ipv4.tcp_rmem"] == "4096 131072 33554432"
    assert facts["values"]["net.core.somaxconn"] == "4096"
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
    assert "net.core.rmem_max" not in facts["values"]
    quick = sysctl_d.gather_facts(root, None, persisted=False)
    assert quick["persisted"] == {} and "net.ipv4.tcp_fin_timeout" in quick["values"]
    assert "net.core.netdev_max_backlog" in quick["missing"]
    assert set(quick["values"]) <= set(k.replace("/", ".") for k in HOST)


MODULES_FILE = "/etc/modules-load.d/90-linuxnet-web.conf"
MODPROBE_FILE = "/etc/modprobe.d/90-linuxnet-web.conf"
CONNTRACK = {"net.netfilter.nf_conntrack_tcp_timeout_established": 86400}


class FakeModprobe(object):
    """modprobe(argv) that 'loads' a module by creating /sys/module/NAME, or fails for the names in ``broken``."""

    def __init__(self, root, broken=(), keys=None):
        self.root, self.broken, self.keys, self.calls = root, broken, keys or {}, []

    def __call__(self, argv):
        self.calls.append(list(argv))
        name = argv[-1]
        if name in self.broken:
            return 1, "", "modprobe: FATAL: Module %s not found in directory /lib/modules/6.18.44-test\n" % name
        os.makedirs(os.path.join(self.root, "sys", "module", name))
        for key, value in self.keys.get(name, {}).items():
            put(self.root, "/proc/sys/" + key, value + "\n")
        return 0, "", ""


def conntrack_host(tmp_path):
    """A host where nf_conntrack is not loaded yet: its keys appear when the fake modprobe loads it."""
    files = dict((k, v) for k, v in HOST.items() if not k.startswith("net/netfilter/"))
    root = make_tree(tmp_path, files, modules=())
    return root, FakeModprobe(root, keys={"nf_conntrack": {"net/netfilter/nf_conntrack_tcp_timeout_established": "432000"}})


def test_present_loads_modules_first_and_persists_boot_files(tmp_path):
    root, modprobe = conntrack_host(tmp_path)
    options = {"nf_conntrack": {"hashsize": 262144}}
    check = sysctl_d.profile_present(root, "web", CONNTRACK, modules=["nf_conntrack"], module_options=options,
                                     modprobe=modprobe, check_mode=True)
    assert modprobe.calls == [] and check["changed"] is True and check["modules_loaded"] == ["nf_conntrack"]
    assert "a real run loads it with modprobe first" in check["skipped_keys"][0]["reason"]

    result = sysctl_d.profile_present(root, "web", CONNTRACK, modules=["nf_conntrack"], module_options=options, modprobe=modprobe)
    assert modprobe.calls == [["nf_conntrack"]] and result["modules_loaded"] == ["nf_conntrack"]
    assert result["applied"] == {"net.netfilter.nf_conntrack_tcp_timeout_established": {"before": "432000", "after": "86400"}}
    assert result["skipped_keys"] == []
    assert read(root, MODULES_FILE).splitlines()[-1] == "nf_conntrack"
    assert read(root, MODPROBE_FILE).splitlines()[-1] == "options nf_conntrack hashsize=262144"
    assert "-net.netfilter.nf_conntrack_tcp_timeout_established = 86400" in read(root, DROPIN)
    assert result["modules_file"] == MODULES_FILE and result["modprobe_file"] == MODPROBE_FILE
    assert [d["after_header"] for d in result["diff"]] == ["runtime (/proc/sys)", DROPIN, MODULES_FILE, MODPROBE_FILE]

    before = snapshot(root)
    again = sysctl_d.profile_present(root, "web", CONNTRACK, modules=["nf_conntrack"], module_options=options, modprobe=modprobe)
    assert again["changed"] is False and again["modules_loaded"] == [] and len(modprobe.calls) == 1
    assert snapshot(root) == before

    # A later run without modules removes the boot files it owns; state=absent removes the rest.
    fewer = sysctl_d.profile_present(root, "web", CONNTRACK, modprobe=modprobe)
    assert fewer["changed"] is True and read(root, MODULES_FILE) is None and read(root, MODPROBE_FILE) is None
    sysctl_d.profile_present(root, "web", CONNTRACK, modules=["nf_conntrack"], modprobe=modprobe)
    gone = sysctl_d.profile_absent(root, "web")
    assert MODULES_FILE in [d["before_header"] for d in gone["diff"]]
    assert read(root, MODULES_FILE) is None and read(root, DROPIN) is None
    assert raw(root, "net/netfilter/nf_conntrack_tcp_timeout_established") == "432000\n"


def test_modules_are_never_loaded_in_a_container(tmp_path):
    files = dict((k, v) for k, v in HOST.items() if not k.startswith("net/netfilter/"))
    root = make_tree(tmp_path, files, modules=(), child=True)
    modprobe = FakeModprobe(root)
    result = sysctl_d.profile_present(root, "web", CONNTRACK, modules=["nf_conntrack"], modprobe=modprobe)
    assert modprobe.calls == [] and result["modules_loaded"] == []
    assert result["skipped_keys"][0]["classification"] == "module_not_loaded"
    assert result["kernel"]["initial_netns"] is False
    assert read(root, MODULES_FILE) is not None  # the boot configuration is still written


def test_failed_modprobe_is_reported_and_its_keys_skipped(tmp_path):
    root, _modprobe = conntrack_host(tmp_path)
    modprobe = FakeModprobe(root, broken=("nf_conntrack",))
    result = sysctl_d.profile_present(root, "web", dict(CONNTRACK, **{"net.core.somaxconn": 8192}), modules=["nf_conntrack"],
                                      modprobe=modprobe)
    assert result["modules_loaded"] == [] and "modprobe nf_conntrack failed (rc=1)" in result["warnings"][0]
    assert [s["classification"] for s in result["skipped_keys"]] == ["module_not_loaded"]
    assert raw(root, "net/core/somaxconn") == "8192\n"
    missing = sysctl_d.profile_present(root, "other", CONNTRACK, modules=["nf_conntrack"], modprobe=None)
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
        sysctl_d.profile_present(root, "web", CONNTRACK, modules=modules, module_options=options, modprobe=modprobe)
    assert words in str(err.value)
    assert snapshot(root) == before and modprobe.calls == []


def test_bad_settings_fail_before_a_module_is_loaded(tmp_path):
    root, modprobe = conntrack_host(tmp_path)
    with pytest.raises(SysctlError):
        sysctl_d.profile_present(root, "web", {"net.ipv4.tcp_tw_reuse": 7}, modules=["nf_conntrack"], modprobe=modprobe)
    assert modprobe.calls == []


def test_foreign_boot_file_is_never_overwritten_or_removed(tmp_path):
    root, modprobe = conntrack_host(tmp_path)
    put(root, MODULES_FILE, "# mine\nnf_conntrack\n")
    with pytest.raises(SysctlError) as err:
        sysctl_d.profile_present(root, "web", CONNTRACK, modules=["nf_conntrack"], modprobe=modprobe)
    assert "not managed by linuxnet.tcp" in str(err.value) and modprobe.calls == []
    sysctl_d.profile_present(root, "web", {"net.core.somaxconn": 8192})
    sysctl_d.profile_absent(root, "web")
    assert read(root, MODULES_FILE) == "# mine\nnf_conntrack\n"


def test_read_only_proc_sys_writes_nothing(tmp_path, monkeypatch):
    root = make_tree(tmp_path)

    class Flags(object):
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda path: Flags())
    before = snapshot(root)
    result = sysctl_d.profile_present(root, "web", {"net.core.somaxconn": 8192}, modules=["nf_conntrack"])
    assert result["changed"] is False and result["persisted_file"] is None and result["kernel"]["proc_sys_writable"] is False
    assert [s["classification"] for s in result["skipped_keys"]] == ["proc_sys_read_only"]
    assert snapshot(root) == before


def test_failed_boot_file_restores_the_files_already_written(tmp_path):
    root, modprobe = conntrack_host(tmp_path)
    sysctl_d.profile_present(root, "web", {"net.core.somaxconn": 8192})
    dropin_before = read(root, DROPIN)
    os.makedirs(os.path.join(root, MODPROBE_FILE.lstrip("/")))  # a directory where the file goes: rename fails
    with pytest.raises(ApplyError) as err:
        sysctl_d.profile_present(root, "web", {"net.core.somaxconn": 16384}, modules=["ip_vs"],
                                 module_options={"ip_vs": {"conn_tab_bits": 12}}, modprobe=modprobe, load=False)
    assert "files restored" in str(err.value) and "rolled back" in str(err.value)
    assert read(root, DROPIN) == dropin_before and read(root, MODULES_FILE) is None
    assert raw(root, "net/core/somaxconn") == "8192\n"


def test_present_reserves_listener_ports_and_persists_them(tmp_path):
    from test__sysctl import with_listeners  # pylint: disable=import-outside-toplevel
    root = with_listeners(make_tree(tmp_path), [20080, 22])
    settings = {"net.ipv4.ip_local_port_range": "10240 65535", "net.ipv4.ip_local_reserved_ports": ">= 8080"}
    result = sysctl_d.profile_present(root, "web", settings, reserve_listener_ports=True)
    assert result["reserved_for_listeners"] == [20080]
    assert raw(root, "net/ipv4/ip_local_reserved_ports") == "8080,20080\n"
    assert "net.ipv4.ip_local_reserved_ports = 8080,20080" in read(root, DROPIN)
    before = snapshot(root)
    assert sysctl_d.profile_present(root, "web", settings, reserve_listener_ports=True)["changed"] is False
    assert snapshot(root) == before
