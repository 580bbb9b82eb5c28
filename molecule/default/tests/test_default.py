"""Verify linuxnet.tcp.tuning from the containers' real state: live /proc/sys and the files on disk.

Nothing here reads the play's output. Each platform ran other profiles (see molecule.yml host_vars).
"""
from __future__ import annotations

import pytest

from ansible_collections.linuxnet.tcp.molecule.default.tests.snapshot import snapshot

DROP_IN = "/etc/sysctl.d/90-linuxnet-tuning.conf"
STATE = "/var/lib/linuxnet-tcp/sysctl-tuning.json"
MODULES = "/etc/modules-load.d/90-linuxnet-tuning.conf"
MODPROBE = "/etc/modprobe.d/90-linuxnet-tuning.conf"
UNIT = "/etc/systemd/system/linuxnet-tcp-ipvs-timeouts.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/linuxnet-tcp-ipvs-timeouts.service"
SYSCTL_CONF = "/etc/sysctl.conf"

# Exact values each host must show live and in the drop-in.
EXPECTED = {
    "lntcp-default-debian11": {  # baseline + web
        "net.ipv4.tcp_syncookies": "1",
        "net.ipv4.tcp_timestamps": "1",
        "net.ipv4.tcp_mtu_probing": "1",
        "net.ipv4.tcp_tw_reuse": "1",
        "net.ipv4.ip_local_port_range": "10240 65535",
        "net.ipv4.tcp_slow_start_after_idle": "0",
        "net.ipv4.tcp_notsent_lowat": "16384",
        "net.ipv4.ip_local_reserved_ports": "12000-12003,20080",
    },
    "lntcp-default-debian12": {  # proxy (= baseline + web + conntrack), LVS director
        "net.ipv4.tcp_tw_reuse": "1",
        "net.ipv4.ip_local_port_range": "10240 65535",
        "net.ipv4.tcp_keepalive_time": "300",
        "net.ipv4.tcp_keepalive_intvl": "30",
        "net.ipv4.tcp_keepalive_probes": "5",
        "net.netfilter.nf_conntrack_tcp_timeout_established": "86400",
        "net.netfilter.nf_conntrack_tcp_timeout_close_wait": "3600",
    },
    "lntcp-default-debian13": {  # database + tcp_tuning_settings override
        "net.ipv4.tcp_keepalive_time": "240",
        "net.ipv4.tcp_keepalive_intvl": "30",
        "net.ipv4.tcp_keepalive_probes": "5",
        "net.ipv4.ip_local_port_range": "9000 65499",
        "net.ipv4.tcp_mtu_probing": "1",
    },
}
# Floors (">= N" in the profiles): the live value must be at least this, element-wise.
FLOORS = {
    "lntcp-default-debian11": {"net.core.somaxconn": "16384", "net.ipv4.tcp_max_tw_buckets": "65536",
                               "net.ipv4.tcp_rmem": "4096 131072 16777216", "net.ipv4.tcp_wmem": "4096 16384 16777216"},
    "lntcp-default-debian12": {"net.core.somaxconn": "16384", "net.ipv4.tcp_wmem": "4096 16384 16777216"},
    "lntcp-default-debian13": {"net.core.somaxconn": "4096", "net.ipv4.tcp_retries2": "8"},
}
# Keys the profiles ask for that are global or read-only in a container netns, need a module this
# kernel lacks, or were dropped by an override: neither written nor persisted here.
NOT_IN_FILE = {
    "lntcp-default-debian11": ["net.ipv4.tcp_tw_recycle", "net.ipv4.tcp_max_orphans", "net.core.rmem_max", "net.core.wmem_max"],
    "lntcp-default-debian12": ["net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_buckets",
                               "net.ipv4.vs.expire_nodest_conn", "net.ipv4.vs.conntrack", "net.ipv4.tcp_max_orphans"],
    "lntcp-default-debian13": ["net.ipv4.tcp_slow_start_after_idle", "net.core.rmem_default", "net.core.wmem_max"],
}


@pytest.fixture(scope="module")
def state(host):
    name = host.backend.get_hostname()
    keys = list(EXPECTED[name]) + list(FLOORS[name]) + ["net.ipv4.tcp_slow_start_after_idle"]
    snap = snapshot(host, keys, [STATE, MODULES, MODPROBE, UNIT, WANTS, SYSCTL_CONF])
    snap["name"] = name
    return snap


def persisted_value(state, key):
    return state["persisted"].get(key, state["persisted"].get("-" + key))


def test_expected_values_live_and_persisted(state):
    for key, value in EXPECTED[state["name"]].items():
        assert state["proc"][key] == value, key
        assert persisted_value(state, key) == value, key


def test_floors_hold_live(state):
    for key, floor in FLOORS[state["name"]].items():
        live = [int(v) for v in state["proc"][key].split()]
        assert all(have >= want for have, want in zip(live, (int(v) for v in floor.split()))), (key, live)


def test_every_persisted_key_exists_and_matches_the_kernel(state):
    assert len(state["persisted"]) >= 5, state["persisted"]
    for key, value in state["persisted"].items():
        live = state["proc"][key.lstrip("-")]
        assert live is not None, "%s is in the drop-in but the kernel lacks it" % key
        assert live == value, key


def test_unsupported_and_dropped_keys_are_not_persisted(state):
    persisted = {k.lstrip("-") for k in state["persisted"]}
    for key in NOT_IN_FILE[state["name"]]:
        assert key not in persisted, key


def test_override_with_null_leaves_the_key_alone(state):
    """Every profile here sets tcp_slow_start_after_idle = 0; debian13's tcp_tuning_settings override it with null, so
    there the key keeps the kernel's default 1 (and is not persisted: NOT_IN_FILE), elsewhere the profile's 0 is live."""
    want = "1" if state["name"] == "lntcp-default-debian13" else "0"
    assert state["proc"]["net.ipv4.tcp_slow_start_after_idle"] == want, state["name"]


def test_module_keys_are_optional_at_boot(state):
    keys = [k for k in state["persisted"] if "nf_conntrack" in k]
    if state["name"] == "lntcp-default-debian12":
        assert keys and all(k.startswith("-net.netfilter.") for k in keys), keys
    else:
        assert not keys


def test_drop_in_owner_mode_and_header(state):
    f = state["files"]["/etc/sysctl.d/90-linuxnet-tuning.conf"]
    assert f["uid"] == 0 and f["mode"] == 0o644
    assert f["text"].startswith("# Managed by linuxnet.tcp")


def test_originals_saved_for_restore(state):
    f = state["files"][STATE]
    assert f and f["mode"] == 0o600 and '"originals"' in f["text"]


def test_reserved_listener_is_still_listening(state):
    """prepare.yml starts the listener on port 20080 on debian11 only (its reservation is checked in EXPECTED): it still
    listens there, and nothing listens on that port on the other hosts."""
    assert (20080 in state["listening"]) == (state["name"] == "lntcp-default-debian11"), (state["name"], state["listening"])


def test_boot_time_files_of_the_lvs_director(state):
    files = state["files"]
    if state["name"] != "lntcp-default-debian12":
        assert files[MODULES] is None and files[UNIT] is None and files[MODPROBE] is None
        return
    assert [line for line in files[MODULES]["text"].splitlines() if not line.startswith("#")] == ["nf_conntrack", "ip_vs"]
    assert "ExecStart=/usr/sbin/ipvsadm --set 3600 120 300" in files[UNIT]["text"].splitlines()
    assert files[WANTS]["link"] == UNIT
    hashsize = [line for line in files[MODPROBE]["text"].splitlines() if line.startswith("options nf_conntrack hashsize=")]
    assert len(hashsize) == 1 and int(hashsize[0].split("=")[1]) >= 131072


def test_system_sysctl_conf_untouched(state):
    conf = state["files"][SYSCTL_CONF]
    assert conf is None or "linuxnet" not in conf["text"]
