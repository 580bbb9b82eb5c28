"""Verify the default scenario from the containers' real state, not from the play's output."""
from __future__ import annotations

import pytest

DROP_IN = "/etc/sysctl.d/90-linuxnet-molecule.conf"
EXPECTED = {
    "net/ipv4/tcp_tw_reuse": "1",
    "net/ipv4/tcp_keepalive_time": "600",
    "net/ipv4/ip_local_port_range": "10240\t65535",
}


@pytest.mark.parametrize("key,value", sorted(EXPECTED.items()))
def test_live_value(host, key, value):
    assert host.file("/proc/sys/" + key).content_string.strip() == value


def test_syn_backlog_was_only_raised(host):
    assert int(host.file("/proc/sys/net/ipv4/tcp_max_syn_backlog").content_string) >= 4096


def test_drop_in_holds_the_profile(host):
    drop_in = host.file(DROP_IN)
    assert drop_in.is_file
    assert drop_in.user == "root" and drop_in.mode == 0o644
    lines = [line for line in drop_in.content_string.splitlines() if line and not line.startswith("#")]
    settings = dict(line.split("=", 1) for line in lines)
    settings = {key.strip().lstrip("-"): value.strip() for key, value in settings.items()}
    assert settings["net.ipv4.tcp_tw_reuse"] == "1"
    assert settings["net.ipv4.tcp_keepalive_time"] == "600"
    assert settings["net.ipv4.ip_local_port_range"].split() == ["10240", "65535"]


def test_drop_in_names_its_owner(host):
    assert "linuxnet.tcp" in host.file(DROP_IN).content_string.splitlines()[0]


def test_system_sysctl_conf_untouched(host):
    conf = host.file("/etc/sysctl.conf")
    assert not conf.exists or "linuxnet" not in conf.content_string
